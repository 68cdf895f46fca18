//! `coupler run`

use super::args::{OutputFormat, RunArgs};
use super::progress::{Printer, Progress};
use super::setup::{self, Stop};
use crate::plan::{self, graph::DepGraph, select};
use crate::runtime::engine::{self, RunOptions};
use std::io::IsTerminal;

pub fn run(args: RunArgs) -> i32 {
    match execute(args) {
        Ok(code) | Err(Stop(code)) => code,
    }
}

fn execute(args: RunArgs) -> Result<i32, Stop> {
    if args.watch {
        return Ok(super::watch::run(args));
    }
    let (session, state) = setup::open_locked(&args.profile)?;
    let selection = match &args.select {
        Some(spec) => {
            Some(select::select(&DepGraph::build(&session.model), spec).map_err(setup::fail)?)
        }
        None => None,
    };
    let plan = plan::compile(&session.model, selection.as_ref());
    let opts = RunOptions {
        full: args.full,
        dry_run: args.dry_run,
        retry_only: false,
        page_size: args.page_size.max(1),
        stop: None,
    };
    let json = args.profile.format == OutputFormat::Json;
    let observer = Printer::new(
        args.dry_run && !json,
        !json && std::io::stderr().is_terminal(),
    );
    let report = setup::block_on(engine::run(
        &session.model,
        &plan,
        &session.systems,
        &state,
        &opts,
        &observer,
    ))?
    .map_err(|e| setup::fail(format!("run stopped: {e}")))?;
    observer.clear();
    if json {
        let actions = observer.take_actions();
        let doc = serde_json::json!({ "report": report, "actions": actions });
        crate::outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        crate::out!("{}", Progress::table(&report));
    }
    Ok(if report.failed() { 1 } else { 0 })
}
