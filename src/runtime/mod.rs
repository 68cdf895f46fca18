//! The synchronization runtime: connectors, the state store, and the engine that executes a plan.

pub mod company;
pub mod connector;
pub mod connectors;
pub mod crash;
pub mod embedded;
pub mod engine;
pub mod filter_eval;
pub mod sql;
pub mod state;
pub mod values;
