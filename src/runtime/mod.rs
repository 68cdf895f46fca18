//! The synchronization runtime: connectors, the state store, and the engine that executes a plan.

// Functions of the runtime fit on a screen (the threshold is in clippy.toml); the rest of the
// crate has four longer ones left (analysis/fields, cli/status, cli/watch, plan/render).
#![warn(clippy::too_many_lines)]

pub mod connector;
pub mod connectors;
pub mod crash;
pub mod embedded;
pub mod engine;
pub mod filter_eval;
pub mod sql;
pub mod state;
pub mod values;
