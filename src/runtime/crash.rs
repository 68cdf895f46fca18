//! Deterministic crash points for the tests of the write protocol (docs/runtime.md).
//!
//! Built only with the `failpoints` feature (the tests turn it on through the dev-dependency
//! on this crate): `COUPLER_CRASH_AT=<point>` aborts the process, as a SIGKILL would, the
//! `COUPLER_CRASH_AFTER`-th time (default: the first) the run reaches that point. Without the
//! feature, `point` is an empty function.

/// The named steps of a write, in the order a page of a pass reaches them.
pub const POINTS: [&str; 4] = [
    // Creates announced (pending creates stored), nothing sent yet.
    "after-announce",
    // The target write answered; nothing of it settled in the state store.
    "after-write",
    // Couplings, failures, patches and the watermark settled.
    "after-settle",
    // A deferred patch written to the target; its queue entry not yet cleared.
    "after-patch-write",
];

#[cfg(feature = "failpoints")]
pub fn point(name: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static REACHED: AtomicU64 = AtomicU64::new(0);
    if std::env::var("COUPLER_CRASH_AT").ok().as_deref() != Some(name) {
        return;
    }
    let after: u64 = std::env::var("COUPLER_CRASH_AFTER")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    if REACHED.fetch_add(1, Ordering::SeqCst) + 1 >= after {
        eprintln!("coupler: crash point `{name}` reached: aborting");
        std::process::abort();
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn point(_name: &str) {}
