//! coupler: Business Central <-> Dynamics 365 Sales integration configuration as checked code.
//!
//! The pipeline reads in module order: [`source`] -> [`syntax`] -> [`schema`] -> [`analysis`]
//! -> (plan, runtime), with [`diagnostic`] shared by all.

// Every function fits on a screen: the threshold (120 lines) is in clippy.toml.
#![warn(clippy::too_many_lines)]

pub mod analysis;
pub mod cli;
pub mod config;
pub mod diagnostic;
pub mod plan;
pub mod runtime;
pub mod schema;
pub mod source;
pub mod syntax;
pub mod transform;
