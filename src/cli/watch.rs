//! `coupler run --watch`: keeps running and executes each mapping on its schedule, as Business
//! Central's job queue does with its synchronization jobs.
//!
//! One process, one run lock, one loop: the mappings that are due run together in one engine run
//! over a plan restricted to them (so a mapping due together with what it depends on runs after
//! it), then each gets its next due time, and the loop sleeps until the earliest one. Runs never
//! overlap. SIGINT or SIGTERM stops the loop: a run in progress stops after the page in flight.

use super::args::{OutputFormat, RunArgs};
use super::progress::{Printer, Progress};
use super::setup::{self, Stop};
use crate::plan::{self, graph::DepGraph, select};
use crate::runtime::engine::{self, MappingReport, RunOptions, RunReport};
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch as channel;
use tokio::time::Instant;

/// A mapping without a `schedule` clause runs as Business Central's job queue entries do by
/// default: every 30 minutes.
const DEFAULT_EVERY: u64 = 30 * 60;

/// One scheduled mapping.
struct Job {
    name: String,
    /// Its index in the model (the selection `plan::compile` takes).
    node: usize,
    every: Duration,
    /// `idle`: after this long without a change, the mapping is on hold and checked only this often.
    idle: Option<Duration>,
    next: Instant,
    /// The end of the last run in which it changed something (or the start of the watch).
    last_active: Instant,
    on_hold: bool,
}

impl Job {
    /// Due now, or so soon that it runs with the mappings due now (a tenth of its interval, at
    /// most a second): schedules that meet do not split into runs a moment apart.
    fn due(&self, now: Instant) -> bool {
        let slack = (self.every / 10).min(Duration::from_secs(1));
        self.next <= now + slack
    }
}

pub fn run(args: RunArgs) -> i32 {
    match execute(args) {
        Ok(code) | Err(Stop(code)) => code,
    }
}

/// Seconds of a duration literal as the grammar writes it (digits, then s, m, h or d).
fn literal_seconds(raw: &str) -> Option<u64> {
    let unit = raw.chars().last()?;
    let factor = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        _ => return None,
    };
    raw[..raw.len() - 1]
        .parse::<u64>()
        .ok()?
        .checked_mul(factor)
}

/// One job per enabled mapping of the plan, due now, at its schedule scaled by `scale`.
fn jobs_of(full_plan: &plan::Plan, graph: &DepGraph, scale: f64) -> Vec<Job> {
    let scaled = |seconds: u64| {
        Duration::try_from_secs_f64(seconds as f64 * scale)
            .unwrap_or(MAX_STEP)
            .clamp(MIN_STEP, MAX_STEP)
    };
    let start = Instant::now();
    full_plan
        .mappings
        .iter()
        .filter(|m| m.enabled)
        .map(|m| {
            let every = m
                .schedule
                .as_ref()
                .map_or(DEFAULT_EVERY, |s| s.every_seconds);
            let idle = m
                .schedule
                .as_ref()
                .and_then(|s| s.idle.as_deref())
                .and_then(literal_seconds);
            Job {
                name: m.name.clone(),
                node: graph.index[&m.name].index(),
                every: scaled(every),
                idle: idle.map(scaled),
                next: start,
                last_active: start,
                on_hold: false,
            }
        })
        .collect()
}

fn execute(args: RunArgs) -> Result<i32, Stop> {
    let scale = match args.tick {
        Some(t) if !(t.is_finite() && t > 0.0) => {
            return Err(setup::fail("--tick must be a positive number of seconds"))
        }
        Some(t) => t / 60.0,
        None => 1.0,
    };
    let (session, state) = setup::open_locked(&args.profile)?;
    let graph = DepGraph::build(&session.model);
    let selection = match &args.select {
        Some(spec) => Some(select::select(&graph, spec).map_err(setup::fail)?),
        None => None,
    };
    let full_plan = plan::compile(&session.model, selection.as_ref());
    let mut jobs = jobs_of(&full_plan, &graph, scale);
    if jobs.is_empty() {
        return Err(setup::fail(
            "nothing to watch: no mapping is selected and enabled",
        ));
    }
    // Turned on by the first signal: the run in progress stops after its page in flight.
    let stopping = Arc::new(AtomicBool::new(false));
    let opts = RunOptions {
        full: false,
        dry_run: false,
        retry_only: false,
        page_size: args.page_size.max(1),
        stop: Some(stopping.clone()),
    };
    let json = args.profile.format == OutputFormat::Json;
    let bars = !json && std::io::stderr().is_terminal();
    let max_runs = args.max_runs;
    setup::block_on(async {
        let stop = stop_on_signals();
        {
            let mut stop = stop.clone();
            tokio::spawn(async move {
                if stop.wait_for(|s| *s).await.is_ok() {
                    stopping.store(true, Ordering::SeqCst);
                }
            });
        }
        let mut runs = 0u64;
        loop {
            if *stop.borrow() {
                eprintln!("stopped after {runs} run{}", plural(runs));
                return Ok(0);
            }
            if max_runs.is_some_and(|n| runs >= n) {
                eprintln!("stopped after {runs} run{} (--max-runs)", plural(runs));
                return Ok(0);
            }
            let now = Instant::now();
            let due: BTreeSet<usize> = jobs.iter().filter(|j| j.due(now)).map(|j| j.node).collect();
            if due.is_empty() {
                let next = jobs.iter().map(|j| j.next).min().unwrap_or(now);
                let mut stop = stop.clone();
                tokio::select! {
                    _ = tokio::time::sleep_until(next) => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
                continue;
            }
            let plan = plan::compile(&session.model, Some(&due));
            let observer = Printer::new(false, bars);
            // Not raced against the signals: a signal stops the run between pages, through
            // `opts.stop`, so what was read is written and recorded (see `stop_on_signals`).
            let report = engine::run(
                &session.model,
                &plan,
                &session.systems,
                &state,
                &opts,
                &observer,
            )
            .await
            .map_err(|e| setup::fail(format!("run stopped: {e}")))?;
            observer.clear();
            runs += 1;
            let end = Instant::now();
            for job in jobs.iter_mut().filter(|j| due.contains(&j.node)) {
                if active(&report, &job.name) {
                    job.last_active = end;
                }
                job.on_hold = job.idle.is_some_and(|idle| end - job.last_active >= idle);
                job.next = end
                    + match (job.on_hold, job.idle) {
                        (true, Some(idle)) => idle,
                        _ => job.every,
                    };
            }
            print_run(&report, &jobs, json);
        }
    })?
}

/// The shortest interval between two runs of a mapping: `--tick` may scale a schedule down to
/// nothing.
const MIN_STEP: Duration = Duration::from_millis(50);
/// The longest: a year (the grammar allows `100000d`, which no timer needs to reach).
const MAX_STEP: Duration = Duration::from_secs(365 * 86400);

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Whether a row of a report did anything: wrote, coupled, failed, met a conflict or could not
/// run. Rows that only found records unchanged or skipped them are quiet.
fn did_something(m: &MappingReport) -> bool {
    let c = &m.counts;
    m.error.is_some()
        || c.inserted + c.modified + c.deleted + c.coupled + c.failed + c.conflicts > 0
}

/// Whether a mapping did anything in a run (any of its directions, deferred patches included).
fn active(report: &RunReport, mapping: &str) -> bool {
    report
        .mappings
        .iter()
        .any(|m| m.mapping == mapping && did_something(m))
}

/// A flag that turns true on the first SIGINT or SIGTERM. A second signal ends the process at
/// once (exit 130): a run is crash-safe, the next one resumes it.
fn stop_on_signals() -> channel::Receiver<bool> {
    let (tx, rx) = channel::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let mut first = true;
        loop {
            #[cfg(unix)]
            let name = tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                Some(_) = async {
                    match term.as_mut() {
                        Some(t) => t.recv().await,
                        None => std::future::pending().await,
                    }
                } => "SIGTERM",
            };
            #[cfg(not(unix))]
            let name = {
                let _ = tokio::signal::ctrl_c().await;
                "Ctrl-C"
            };
            if !first {
                eprintln!("{name} again: stopping now; the next run resumes what was in flight");
                std::process::exit(130);
            }
            first = false;
            eprintln!(
                "{name}: stopping once the records in flight are done (again to stop at once)"
            );
            let _ = tx.send(true);
        }
    });
    rx
}

fn clock() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

/// When a job is due next, as a wall-clock time.
fn wall(at: Instant) -> chrono::DateTime<chrono::Local> {
    let ahead = at.saturating_duration_since(Instant::now());
    chrono::Local::now() + chrono::Duration::from_std(ahead).unwrap_or_default()
}

/// One line per run (and the report table when something happened); `--format json`: one JSON
/// object per line, with every mapping's next due time.
fn print_run(report: &RunReport, jobs: &[Job], json: bool) {
    if json {
        let next: Vec<_> = jobs
            .iter()
            .map(|j| {
                serde_json::json!({
                    "mapping": j.name,
                    "due": wall(j.next).to_rfc3339_opts(chrono::SecondsFormat::Millis, false),
                    "on_hold": j.on_hold,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "time": crate::runtime::values::now_stamp(),
            "report": report,
            "next": next,
        });
        crate::outln!("{}", serde_json::to_string(&doc).unwrap_or_default());
        return;
    }
    let mut names: Vec<&str> = Vec::new();
    for m in &report.mappings {
        if !names.contains(&m.mapping.as_str()) {
            names.push(&m.mapping);
        }
    }
    let changed = report.mappings.iter().any(did_something);
    let what = if names.len() <= 4 {
        names.join(", ")
    } else {
        format!("{} mappings", names.len())
    };
    let next = jobs.iter().map(|j| j.next).min().map(wall);
    let held: Vec<&str> = jobs
        .iter()
        .filter(|j| j.on_hold)
        .map(|j| j.name.as_str())
        .collect();
    let mut line = format!(
        "{} run #{} ({what}): {}",
        clock(),
        report.run_id,
        if changed {
            "changes below"
        } else {
            "nothing changed"
        }
    );
    if let Some(n) = next {
        line.push_str(&format!("; next at {}", n.format("%H:%M:%S")));
    }
    if !held.is_empty() {
        line.push_str(&format!("; on hold (idle): {}", held.join(", ")));
    }
    crate::outln!("{line}");
    if changed {
        // Only the rows that did something: a quiet mapping is the rule, not the news.
        let mut rows = report.clone();
        rows.mappings.retain(did_something);
        crate::out!("{}", Progress::table(&rows));
    }
}

#[cfg(test)]
mod tests {
    use super::literal_seconds;

    #[test]
    fn duration_literals() {
        assert_eq!(literal_seconds("30m"), Some(1800));
        assert_eq!(literal_seconds("12h"), Some(43200));
        assert_eq!(literal_seconds("1d"), Some(86400));
        assert_eq!(literal_seconds("5s"), Some(5));
        assert_eq!(literal_seconds("5x"), None);
        assert_eq!(literal_seconds(""), None);
    }
}
