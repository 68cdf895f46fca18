//! The engine: executes a plan stage by stage (the mappings of a stage concurrently), each table
//! mapping as one pass per direction (left to right first), option mappings by label, and
//! deferred lookups as patches once their stage finished.

mod blank;
pub mod compile;
mod error;
mod evaluate;
mod option_values;
mod options;
mod pass;
mod pending;
pub mod report;
mod text;
mod through;

pub use error::EngineError;
pub use evaluate::reference;
pub use report::{Action, ActionKind, Change, Leg, MappingReport, Observer, Quiet, RunReport};

use crate::analysis::{Model, Side};
use crate::plan::{MappingPlan, Plan};
use crate::runtime::connector::Connector;
use crate::runtime::state::{tx, Counts, Failed, RunStatus, SideName, StateStore};
use crate::schema::Table;
use compile::Direction;
use evaluate::{changed_fields, evaluate, Lookups};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Ignore watermarks and the loop-prevention filter; create what is missing.
    pub full: bool,
    /// Compute every action, write nothing.
    pub dry_run: bool,
    /// Only retry the records that failed before.
    pub retry_only: bool,
    pub page_size: usize,
    /// Set from outside (a signal): the run stops after the page in flight, and records what it
    /// did; the next run goes on from there.
    pub stop: Option<Arc<AtomicBool>>,
}

impl RunOptions {
    pub fn stopping(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst))
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            full: false,
            dry_run: false,
            retry_only: false,
            page_size: 1000,
            stop: None,
        }
    }
}

/// Option values beyond the catalog by (system, table, field): (label, value).
pub(crate) type AddedOptions = HashMap<(String, String, String), Vec<(String, i64)>>;

/// What every pass shares.
pub(crate) struct Ctx<'a> {
    pub model: &'a Model,
    pub state: &'a StateStore,
    pub systems: &'a HashMap<String, Arc<dyn Connector>>,
    pub lookups: Lookups<'a>,
    pub opts: &'a RunOptions,
    pub run_id: i64,
    pub observer: &'a dyn Observer,
    /// Sources whose earlier create may have been made, by (mapping, pass arrow, source id),
    /// with why it is not known: they fail instead of being created again.
    pub in_doubt: std::sync::Mutex<HashMap<(String, String, String), String>>,
    /// Mappings a `--full` run did not finish: this run synchronizes them as full.
    pub resumed: std::collections::HashSet<String>,
    /// Option values the endpoints have beyond the catalog (created by option mappings), by
    /// (system, table, field): the tables passes see include them.
    pub added_options: std::sync::Mutex<AddedOptions>,
}

impl Ctx<'_> {
    /// Whether `mapping` is synchronized as full in this run (`--full`, or resumed).
    pub fn full(&self, mapping: &str) -> bool {
        self.opts.full || self.resumed.contains(mapping)
    }

    pub fn system(&self, name: &str) -> Result<Arc<dyn Connector>, EngineError> {
        self.systems
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::UnboundSystem(name.to_string()))
    }

    pub fn table(&self, side: &Side) -> Result<Table, EngineError> {
        let mut table = self
            .model
            .systems
            .get(&side.system)
            .and_then(|s| s.table(&side.table))
            .cloned()
            .ok_or_else(|| EngineError::UnknownTable(side.to_string()))?;
        let added = self.added_options.lock().unwrap_or_else(|p| p.into_inner());
        for ((system, t, f), values) in added.iter() {
            if *system != side.system || *t != side.table {
                continue;
            }
            if let Some(field) = table.fields.get_mut(f) {
                let options = field.options.get_or_insert_with(Default::default);
                for (label, value) in values {
                    options.insert(label.clone(), *value);
                }
            }
        }
        Ok(table)
    }

    /// Records option values an endpoint has beyond the catalog.
    pub fn add_options(&self, side: &Side, field: &str, values: &[(String, i64)]) {
        let mut added = self.added_options.lock().unwrap_or_else(|p| p.into_inner());
        let key = (side.system.clone(), side.table.clone(), field.to_string());
        let known = added.entry(key).or_default();
        for v in values {
            if !known.contains(v) {
                known.push(v.clone());
            }
        }
    }
}

/// Runs a plan against the endpoints. Record failures do not stop the run; they are counted,
/// recorded and retried next time. An endpoint failure stops that mapping only.
pub async fn run(
    model: &Model,
    plan: &Plan,
    systems: &HashMap<String, Arc<dyn Connector>>,
    state: &StateStore,
    opts: &RunOptions,
    observer: &dyn Observer,
) -> Result<RunReport, EngineError> {
    let (enabled, resumed, resumed_full) = resume(plan, state, opts)?;
    let run_id = state.start_run(opts.full, opts.dry_run)?;
    if opts.full && !opts.dry_run {
        state.mark_full(run_id, &enabled)?;
    }
    let ctx = Ctx {
        model,
        state,
        systems,
        lookups: Lookups::new(state, &plan.lookups)
            .with_blanks(blank::load(&plan.lookups, systems).await),
        opts,
        run_id,
        observer,
        in_doubt: std::sync::Mutex::new(HashMap::new()),
        resumed,
        added_options: std::sync::Mutex::new(HashMap::new()),
    };
    let mut reports = Vec::new();
    observer.plan(plan);
    let directions: HashMap<String, Vec<Arc<Direction>>> = plan
        .mappings
        .iter()
        .map(|m| (m.name.clone(), m.directions.clone()))
        .collect();
    for (i, stage) in plan.stages.iter().enumerate() {
        if opts.stopping() {
            break;
        }
        let runnable: Vec<&MappingPlan> = stage
            .iter()
            .filter_map(|name| plan.mapping(name).filter(|m| m.enabled))
            .collect();
        let futures = runnable
            .iter()
            .map(|m| execute_mapping(&ctx, m, &directions[&m.name]));
        for (m, r) in runnable
            .iter()
            .zip(futures::future::join_all(futures).await)
        {
            // A full synchronization of the mapping that ran to its end is done.
            let finished = !opts.stopping() && r.iter().all(|m| m.error.is_none());
            if ctx.full(&m.name) && !opts.dry_run && finished {
                state.clear_full(&m.name)?;
            }
            reports.extend(r);
        }
        for patch in plan.patches.iter().filter(|p| p.after_stage == i + 1) {
            let enabled = plan
                .mappings
                .iter()
                .any(|m| m.name == patch.mapping && m.enabled);
            if !enabled {
                continue;
            }
            for dir in directions[&patch.mapping]
                .iter()
                .filter(|d| d.has_deferred())
            {
                let mut report = MappingReport {
                    mapping: dir.mapping.clone(),
                    direction: Leg::Deferred(dir.arrow),
                    counts: Counts::default(),
                    error: None,
                    note: None,
                };
                match execute_patches(&ctx, dir, &mut report.counts).await {
                    Ok(()) => {}
                    Err(e) => report.error = Some(e.to_string()),
                }
                if report.counts != Counts::default() || report.error.is_some() {
                    if !opts.dry_run {
                        state.save_counts(
                            run_id,
                            &report.mapping,
                            report.direction,
                            &report.counts,
                        )?;
                    }
                    observer.finished(&report);
                    reports.push(report);
                }
            }
        }
    }
    let report = RunReport {
        run_id,
        resumed_full,
        dry_run: opts.dry_run,
        mappings: reports,
    };
    let status = if opts.dry_run {
        RunStatus::DryRun
    } else if opts.stopping() {
        RunStatus::Stopped
    } else if report.mappings.iter().any(|m| m.error.is_some()) {
        RunStatus::Error
    } else if report.failed() {
        RunStatus::Failures
    } else {
        RunStatus::Ok
    };
    state.finish_run(run_id, status)?;
    Ok(report)
}

/// The plan's enabled mappings, those of them a `--full` run did not finish (killed, stopped,
/// or failed), which this run synchronizes as full, and the earliest such run. Only those: an
/// incremental run would never create the records the full run did not get to, and the other
/// mappings were not part of it. A dry run and `errors --retry` leave them for the next run.
#[allow(clippy::type_complexity)]
fn resume(
    plan: &Plan,
    state: &StateStore,
    opts: &RunOptions,
) -> Result<(Vec<String>, std::collections::HashSet<String>, Option<i64>), EngineError> {
    let enabled: Vec<String> = plan
        .mappings
        .iter()
        .filter(|m| m.enabled)
        .map(|m| m.name.clone())
        .collect();
    let pending_full = if opts.full || opts.dry_run || opts.retry_only {
        HashMap::new()
    } else {
        state.full_pending()?
    };
    let resumed: std::collections::HashSet<String> = enabled
        .iter()
        .filter(|m| pending_full.contains_key(*m))
        .cloned()
        .collect();
    let first = resumed
        .iter()
        .filter_map(|m| pending_full.get(m))
        .min()
        .copied();
    Ok((enabled, resumed, first))
}

async fn execute_mapping(
    ctx: &Ctx<'_>,
    mapping: &MappingPlan,
    dirs: &[Arc<Direction>],
) -> Vec<MappingReport> {
    let name = mapping.name.as_str();
    if let Some(o) = &mapping.options {
        let arrow = mapping.direction;
        ctx.observer.started(name, arrow);
        let mut report = MappingReport {
            mapping: name.to_string(),
            direction: Leg::Pass(arrow),
            counts: Counts::default(),
            error: None,
            note: None,
        };
        if let Err(e) = options::execute(ctx, mapping, o, &mut report.counts).await {
            report.error = Some(e.to_string());
        }
        finish(ctx, &mut report);
        return vec![report];
    }
    let mut out = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        // Before each pass: a create of the pass before whose answer was lost is coupled
        // before this pass could read its record as a new one.
        if !ctx.opts.dry_run {
            if let Err(e) = pending::resolve(ctx, name, dirs).await {
                let mut report = MappingReport {
                    mapping: name.to_string(),
                    direction: Leg::Pass(dir.arrow),
                    counts: Counts::default(),
                    error: Some(e.to_string()),
                    note: None,
                };
                finish(ctx, &mut report);
                out.push(report);
                continue;
            }
        }
        let reverse = dirs
            .get(1 - i.min(1))
            .filter(|_| dirs.len() == 2)
            .map(Arc::as_ref);
        ctx.observer.started(name, dir.arrow);
        let mut report = MappingReport {
            mapping: name.to_string(),
            direction: Leg::Pass(dir.arrow),
            counts: Counts::default(),
            error: None,
            note: None,
        };
        match pass::Pass::new(ctx, dir, reverse) {
            Ok(mut p) => {
                if ctx.full(name) {
                    report.note = Some("full synchronization".into());
                }
                let r = p.execute().await;
                report.counts = p.counts;
                if let Err(e) = r {
                    report.error = Some(e.to_string());
                }
            }
            Err(e) => report.error = Some(e.to_string()),
        }
        finish(ctx, &mut report);
        out.push(report);
    }
    out
}

/// Saves a mapping's counts and reports it. Counts that cannot be saved make the mapping's
/// error (or join it), so `status` never shows less than happened without saying so.
fn finish(ctx: &Ctx<'_>, report: &mut MappingReport) {
    if !ctx.opts.dry_run {
        if let Err(e) = ctx.state.save_counts(
            ctx.run_id,
            &report.mapping,
            report.direction,
            &report.counts,
        ) {
            let unsaved = format!("its counts were not saved: {e}");
            report.error = Some(match report.error.take() {
                Some(first) => format!("{first}; {unsaved}"),
                None => unsaved,
            });
        }
    }
    ctx.observer.finished(report);
}

/// Deferred lookups: for the records this mapping handled since, patch the deferred fields.
async fn execute_patches(
    ctx: &Ctx<'_>,
    dir: &Direction,
    counts: &mut Counts,
) -> Result<(), EngineError> {
    let ids = ctx.state.patch_ids(&dir.mapping, dir.arrow)?;
    if ids.is_empty() {
        return Ok(());
    }
    let source = ctx.system(&dir.source_side.system)?;
    let target = ctx.system(&dir.target_side.system)?;
    let target_table = ctx.table(&dir.target_side)?;
    for chunk in ids.chunks(ctx.opts.page_size.max(1)) {
        let records = source.read_by_ids(&dir.source_side.table, chunk).await?;
        let mut ops = Vec::new();
        let mut done: Vec<String> = chunk
            .iter()
            .filter(|id| !records.iter().any(|r| &r.id == *id))
            .cloned()
            .collect();
        let mut failures: Vec<(String, EngineError)> = Vec::new();
        let mut owners: Vec<(String, crate::runtime::state::Coupling)> = Vec::new();
        let mut restamped: Vec<crate::runtime::state::Coupling> = Vec::new();
        for record in &records {
            let Some(c) = ctx
                .state
                .coupling_by(&dir.mapping, dir.source, &record.id)?
            else {
                done.push(record.id.clone());
                continue;
            };
            let current = target
                .read_by_ids(&dir.target_side.table, &[c.id(dir.target()).to_string()])
                .await?;
            let Some(current) = current.into_iter().next() else {
                done.push(record.id.clone());
                continue;
            };
            match evaluate(dir, record, &ctx.lookups, &target_table, true) {
                Ok(wanted) => {
                    let changes = changed_fields(&wanted, &current);
                    if changes.is_empty() {
                        done.push(record.id.clone());
                        counts.unchanged += 1;
                    } else {
                        ctx.observer.action(&Action {
                            mapping: dir.mapping.clone(),
                            direction: Leg::Deferred(dir.arrow),
                            kind: ActionKind::Update,
                            source_id: record.id.clone(),
                            target_id: Some(current.id.clone()),
                            changes: Change::list(&changes, Some(&current)),
                            reason: None,
                        });
                        ops.push(crate::runtime::connector::WriteOp::Update {
                            id: current.id.clone(),
                            fields: changes,
                        });
                        owners.push((record.id.clone(), c.clone()));
                    }
                }
                Err(e) => failures.push((record.id.clone(), e.into_error())),
            }
        }
        if ctx.opts.dry_run {
            counts.modified += ops.len() as u64;
            counts.failed += failures.len() as u64;
            continue;
        }
        let results = if ops.is_empty() {
            Vec::new()
        } else {
            target.write(&dir.target_side.table, ops).await?
        };
        crate::runtime::crash::point("after-patch-write");
        // An owner without a result (a short batch answer) fails: its patch stays due.
        let mut results = results.into_iter();
        for (owner, coupling) in &owners {
            match results
                .next()
                .map_or(Err(EngineError::NoResult), |r| r.map_err(EngineError::from))
            {
                Ok(written) => {
                    counts.modified += 1;
                    done.push(owner.clone());
                    // The patch is the integration's own write: the coupling keeps up with it.
                    let mut c = coupling.clone();
                    match dir.target() {
                        SideName::Left => c.left_stamp = Some(written.modified_on),
                        SideName::Right => c.right_stamp = Some(written.modified_on),
                    }
                    restamped.push(c);
                }
                Err(e) => failures.push((owner.clone(), e)),
            }
        }
        counts.failed += failures.len() as u64;
        ctx.state.transaction(|conn| {
            for c in &restamped {
                tx::put_coupling(conn, c)?;
            }
            for id in &done {
                tx::clear_patch(conn, &dir.mapping, dir.arrow, id)?;
            }
            for (id, e) in failures {
                let message = format!("deferred lookup: {e}");
                let failed = Failed {
                    source: &id,
                    target: None,
                    kind: e.failure_kind(),
                    message: &message,
                };
                tx::record_failure(conn, &dir.mapping, dir.arrow, ctx.run_id, &failed)?;
            }
            Ok(())
        })?;
    }
    Ok(())
}
