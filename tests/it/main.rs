//! The integration tests: one binary (`cargo test --test it`), one module per area. The support
//! code (`support/`) is compiled once, for all of them. Add a module in alphabetical order.

mod check;
mod cli;
mod companies;
mod contact_company;
mod crash_points;
mod defaults;
mod demo;
mod docs;
mod examples;
mod first_use;
mod fmt;
mod http;
mod layering;
mod local_currency;
mod plan;
mod plan_is_run;
mod plan_properties;
mod robustness;
mod sales_orders;
mod schema_pull;
mod schema_pull_real;
mod support;
mod sync;
mod truth;
mod watch;
