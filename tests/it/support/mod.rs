//! Code the test modules share, compiled once.
// Each area uses a different subset of these helpers.
#![allow(dead_code)]

pub mod common;
pub mod coupler;
pub mod http;
pub mod sync;
