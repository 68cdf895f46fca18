//! `coupler status`

use super::args::{OutputFormat, ProfileArgs};
use super::setup::{self, Stop};
use crate::plan;
use crate::runtime::state::SideName;
use serde::Serialize;
use std::fmt::Write;

#[derive(Serialize)]
struct MappingStatus {
    mapping: String,
    direction: String,
    enabled: bool,
    watermark_left: Option<String>,
    watermark_right: Option<String>,
    couplings: u64,
    skipped: u64,
    failures: usize,
    /// Records waiting for their parent (`[parent]`).
    waiting: u64,
    left_records: Option<u64>,
    right_records: Option<u64>,
    recommendation: String,
}

pub fn run(args: ProfileArgs) -> i32 {
    match execute(args) {
        Ok(code) | Err(Stop(code)) => code,
    }
}

fn execute(args: ProfileArgs) -> Result<i32, Stop> {
    let session = setup::open(&args)?;
    let state = setup::state(&session.profile, false)?;
    let plan = plan::compile(&session.model, None);
    let failures = state.failures(None).map_err(setup::fail)?;
    let last = state.last_run().map_err(setup::fail)?;
    // Mappings a --full run did not finish: the next run resumes them as full (engine::run).
    let unfinished_full = state.full_pending().map_err(setup::fail)?;
    let mut rows = Vec::new();
    for m in &plan.mappings {
        let (couplings, skipped) = state.count_couplings(&m.name).map_err(setup::fail)?;
        let wm = |side| {
            state
                .watermark(&m.name, side)
                .ok()
                .flatten()
                .map(|c| c.modified_on)
        };
        // Count what each side's filter lets through, to recommend how to start.
        let dirs = &m.directions;
        let mut counts = (None, None);
        for d in dirs {
            let sys = &session.systems[&d.source_side.system];
            let n =
                setup::block_on(sys.count(&d.source_side.table, d.source_filter.as_ref()))?.ok();
            match d.source {
                SideName::Left => counts.0 = n,
                SideName::Right => counts.1 = n,
            }
            if dirs.len() == 1 {
                let tsys = &session.systems[&d.target_side.system];
                let t =
                    setup::block_on(tsys.count(&d.target_side.table, d.target_filter.as_ref()))?
                        .ok();
                match d.source {
                    SideName::Left => counts.1 = t,
                    SideName::Right => counts.0 = t,
                }
            }
        }
        let waiting = state.count_held(&m.name).map_err(setup::fail)?;
        let unfinished = unfinished_full.get(&m.name).copied();
        let recommendation = recommend(m, waiting, couplings, counts, unfinished);
        rows.push(MappingStatus {
            mapping: m.name.clone(),
            direction: m.direction.to_string(),
            enabled: m.enabled,
            watermark_left: wm(SideName::Left),
            watermark_right: wm(SideName::Right),
            couplings,
            skipped,
            failures: failures.iter().filter(|f| f.mapping == m.name).count(),
            waiting,
            left_records: counts.0,
            right_records: counts.1,
            recommendation,
        });
    }
    if args.format == OutputFormat::Json {
        let doc = serde_json::json!({ "last_run": last, "mappings": rows });
        crate::outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(0);
    }
    let mut out = String::new();
    match &last {
        Some(r) => {
            let _ = writeln!(
                out,
                "last run #{}: {} (started {}, finished {}){}",
                r.id,
                r.status,
                r.started,
                r.finished.as_deref().unwrap_or("never: interrupted"),
                if r.full { ", full" } else { "" }
            );
        }
        None => out.push_str("no run yet\n"),
    }
    let width = rows
        .iter()
        .map(|r| r.mapping.chars().count())
        .max()
        .unwrap_or(7);
    let _ = writeln!(
        out,
        "\n{:<width$}  {:<3}  {:>9} {:>8}  {:<24} {:<24}  recommendation",
        "mapping", "dir", "couplings", "failures", "watermark left", "watermark right"
    );
    for r in &rows {
        let _ = writeln!(
            out,
            "{:<width$}  {:<3}  {:>9} {:>8}  {:<24} {:<24}  {}",
            r.mapping,
            r.direction,
            r.couplings,
            r.failures,
            r.watermark_left.as_deref().unwrap_or("-"),
            r.watermark_right.as_deref().unwrap_or("-"),
            r.recommendation
        );
    }
    if !failures.is_empty() {
        let _ = writeln!(
            out,
            "\n{} failed records: `coupler errors --profile {}` lists them",
            failures.len(),
            session.profile.name
        );
    }
    crate::out!("{out}");
    Ok(0)
}

/// How to go on with a mapping, from its couplings, its waiting records and what each side holds.
fn recommend(
    m: &plan::MappingPlan,
    waiting: u64,
    couplings: u64,
    counts: (Option<u64>, Option<u64>),
    unfinished_full: Option<i64>,
) -> String {
    if !m.enabled {
        return format!(
            "off (setting `{}` is false)",
            m.when.clone().unwrap_or_default()
        );
    }
    if let Some(owner) = &m.couple_via {
        return format!("updates the records `{owner}` coupled");
    }
    if let Some(run) = unfinished_full {
        return format!(
            "full synchronization: run #{run} (--full) did not finish this mapping (killed, stopped or failed — or it is still running); the next `coupler run` resumes it as full"
        );
    }
    if waiting > 0 {
        return format!("incremental: {waiting} record(s) wait for their parent to be coupled");
    }
    if couplings > 0 {
        return "incremental: couplings exist".to_string();
    }
    match counts {
        (Some(0), Some(0)) => "nothing to do: both sides are empty".into(),
        (Some(a), Some(b)) if a > 0 && b > 0 => {
            "couple records: both sides have records (match them with `couple by`, or `coupler couple`)".into()
        }
        (Some(_), Some(_)) => {
            "full synchronization: one side is empty (`coupler run --full`)".into()
        }
        _ => "full synchronization".into(),
    }
}
