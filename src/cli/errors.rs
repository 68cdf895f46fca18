//! `coupler errors [--retry]`

use super::args::{ErrorsArgs, OutputFormat};
use super::progress::{Printer, Progress};
use super::setup::{self, Stop};
use crate::plan::{self, graph::DepGraph, select};
use crate::runtime::engine::{self, RunOptions};
use std::fmt::Write;

pub fn run(args: ErrorsArgs) -> i32 {
    match execute(args) {
        Ok(code) | Err(Stop(code)) => code,
    }
}

fn execute(args: ErrorsArgs) -> Result<i32, Stop> {
    if args.retry {
        let (session, state) = setup::open_locked(&args.profile)?;
        let failures = state
            .failures(args.mapping.as_deref())
            .map_err(setup::fail)?;
        if failures.is_empty() {
            eprintln!("no failed records to retry");
            return Ok(0);
        }
        let mut names: Vec<String> = failures.iter().map(|f| f.mapping.clone()).collect();
        names.dedup();
        let selection = select::select(&DepGraph::build(&session.model), &names.join(","))
            .map_err(setup::fail)?;
        let plan = plan::compile(&session.model, Some(&selection));
        let opts = RunOptions {
            retry_only: true,
            ..RunOptions::default()
        };
        let observer = Printer::new(false, false);
        let report = setup::block_on(engine::run(
            &session.model,
            &plan,
            &session.systems,
            &state,
            &opts,
            &observer,
        ))?
        .map_err(setup::fail)?;
        crate::out!("{}", Progress::table(&report));
        return Ok(if report.failed() { 1 } else { 0 });
    }
    let profile = setup::profile(&args.profile.profile, args.profile.config.as_deref())?;
    let state = setup::state(&profile, false)?;
    let failures = state
        .failures(args.mapping.as_deref())
        .map_err(setup::fail)?;
    if args.profile.format == OutputFormat::Json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&failures).unwrap_or_default()
        );
        return Ok(0);
    }
    if failures.is_empty() {
        crate::outln!("no failed records");
        return Ok(0);
    }
    let mut out = String::new();
    for f in &failures {
        let _ = writeln!(
            out,
            "{} {}  source {}{}\n    {}\n    first {}, last {}, {} attempt{}",
            f.mapping,
            f.direction,
            f.source_id,
            f.target_id
                .as_deref()
                .map(|t| format!("  target {t}"))
                .unwrap_or_default(),
            f.message,
            f.first_seen,
            f.last_seen,
            f.attempts,
            if f.attempts == 1 { "" } else { "s" }
        );
    }
    let _ = writeln!(
        out,
        "{} failed records; `coupler errors --retry` runs them again",
        failures.len()
    );
    crate::out!("{out}");
    Ok(0)
}
