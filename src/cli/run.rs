//! `coupler run`

use super::args::{OutputFormat, RunArgs};
use super::progress::{Printer, Progress};
use super::setup::{self, Stop};
use crate::plan::Plan;
use crate::plan::{self, graph::DepGraph, select};
use crate::runtime::engine::{self, Action, MappingReport, Observer, RunOptions};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;

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
    let dump = PlanDump {
        inner: &observer,
        path: args.dump_plan.as_deref(),
        failed: Mutex::new(None),
    };
    let report = setup::block_on(engine::run(
        &session.model,
        &plan,
        &session.systems,
        &state,
        &opts,
        &dump,
    ))?
    .map_err(|e| setup::fail(format!("run stopped: {e}")))?;
    if let Some(e) = dump.failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(setup::fail(e));
    }
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

/// `--dump-plan FILE`: writes the plan as the engine received it, then passes every event on.
struct PlanDump<'a> {
    inner: &'a dyn Observer,
    path: Option<&'a Path>,
    failed: Mutex<Option<String>>,
}

impl Observer for PlanDump<'_> {
    fn plan(&self, plan: &Plan) {
        let Some(path) = self.path else {
            return;
        };
        let written = serde_json::to_string_pretty(plan)
            .map_err(|e| e.to_string())
            .and_then(|s| std::fs::write(path, s + "\n").map_err(|e| e.to_string()));
        if let Err(e) = written {
            let message = format!("cannot write the plan to `{}`: {e}", path.display());
            *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
        }
    }

    fn started(&self, mapping: &str, direction: crate::analysis::Arrow) {
        self.inner.started(mapping, direction);
    }

    fn progress(&self, mapping: &str, direction: crate::analysis::Arrow, records: u64) {
        self.inner.progress(mapping, direction, records);
    }

    fn action(&self, action: &Action) {
        self.inner.action(action);
    }

    fn finished(&self, report: &MappingReport) {
        self.inner.finished(report);
    }
}
