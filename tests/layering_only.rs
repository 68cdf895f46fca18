//! Throwaway runner for tests/it/layering.rs until the single test binary (tests/it/main.rs)
//! exists; deleted at merge.

#[path = "it/layering.rs"]
mod layering;
