//! One pass of a table mapping: source side -> target side. Reads changes in pages, decides per
//! record (create, update, couple, unchanged, skip, fail, conflict), writes in batches, and
//! records couplings, failures and the watermark in the state store.
//!
//! Crash safety: a create is first recorded as pending, with the key coupler chose for the new
//! record; then the record is written; then it is coupled and the pending entry removed, in one
//! transaction. A run that stopped in between finds the pending entry, looks for the record and
//! couples it if it exists, so nothing is created twice.
//! The watermark moves only past records that were handled (written, or recorded as failed).

use super::compile::{ConflictWinner, Direction};
use super::compile::{DeletePolicy, MissingPolicy};
use super::error::EngineError;
use super::evaluate::{changed_fields, evaluate, reference, EvalError};
use super::filter_eval;
use super::report::{Action, Change};
use super::Ctx;
use crate::runtime::connector::{ChangeQuery, Connector, ConnectorError, Cursor, Record, WriteOp};
use crate::runtime::state::{tx, Counts, Coupling, Failed, FailureKind, SideName, StateError};
use crate::runtime::values::{new_guid, normalize};
use crate::schema::Table;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

enum Decision {
    Create {
        fields: Map<String, Value>,
        replaces: Option<Coupling>,
    },
    Update {
        coupling: Coupling,
        target: Record,
        changes: Map<String, Value>,
    },
    Couple {
        target: Record,
        changes: Map<String, Value>,
    },
    Unchanged {
        coupling: Coupling,
        target: Record,
        /// The source changed since the last synchronization (its values did not).
        fresh: bool,
    },
    Skip(String),
    /// Both sides changed and the target wins: nothing is written, the conflict is counted.
    Outvoted(String),
    /// A `[parent]` lookup found nothing: held until the parent is coupled.
    Wait {
        via: String,
        reference: String,
        message: String,
    },
    Uncouple {
        coupling: Coupling,
        reason: String,
    },
    Fail {
        kind: FailureKind,
        message: String,
        target: Option<String>,
    },
    Conflict {
        message: String,
        target: String,
    },
}

impl Decision {
    fn failed(e: &EngineError, target: Option<String>) -> Decision {
        Decision::Fail {
            kind: e.failure_kind(),
            message: e.to_string(),
            target,
        }
    }
}

pub(crate) struct Pass<'c, 'a> {
    pub ctx: &'c Ctx<'a>,
    pub dir: &'c Direction,
    pub reverse: Option<&'c Direction>,
    source: Arc<dyn Connector>,
    pub(super) target: Arc<dyn Connector>,
    source_table: Table,
    pub(super) target_table: Table,
    /// Creating uncoupled records is allowed (policy, --full, or the first run).
    create: bool,
    full: bool,
    pub counts: Counts,
    /// Records with a recorded failure: only those need clearing when they succeed.
    failed: std::collections::HashSet<String>,
    /// Records waiting for their parent: released when handled otherwise.
    held: std::collections::HashSet<String>,
    /// Records retried in this pass: the change stream does not take them twice.
    retried: std::collections::HashSet<String>,
    /// A failed record is retried as it was attempted: created when it is not coupled.
    pub(super) retrying: bool,
}

/// The target after an update: what it was, with the written values and the new stamp.
fn merged(before: &Record, written: Record) -> Record {
    let mut r = before.clone();
    r.modified_on = written.modified_on;
    r.modified_by = written.modified_by;
    for (k, v) in written.fields {
        r.fields.insert(k, v);
    }
    r
}

/// Every target field a pass may write: its field lines, create values and split.
fn written_fields(dir: &Direction) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |f: &str| {
        if !out.iter().any(|x| x == f) {
            out.push(f.to_string());
        }
    };
    dir.steps.iter().for_each(|s| add(&s.target));
    dir.create_values.iter().for_each(|(f, _)| add(f));
    if let Some(sp) = &dir.split {
        add(&sp.into);
        sp.numbered.iter().for_each(|n| add(n));
        sp.steps.iter().for_each(|s| add(&s.target));
    }
    out
}

fn side_ids(dir: &Direction, source_id: &str, target_id: &str) -> (String, String) {
    match dir.source {
        SideName::Left => (source_id.to_string(), target_id.to_string()),
        SideName::Right => (target_id.to_string(), source_id.to_string()),
    }
}

impl<'c, 'a> Pass<'c, 'a> {
    pub fn new(
        ctx: &'c Ctx<'a>,
        dir: &'c Direction,
        reverse: Option<&'c Direction>,
    ) -> Result<Pass<'c, 'a>, EngineError> {
        let source = ctx.system(&dir.source_side.system)?;
        let target = ctx.system(&dir.target_side.system)?;
        let source_table = ctx.table(&dir.source_side)?;
        let target_table = ctx.table(&dir.target_side)?;
        let full = ctx.opts.full;
        Ok(Pass {
            ctx,
            dir,
            reverse,
            source,
            target,
            source_table,
            target_table,
            create: dir.missing == MissingPolicy::Create || full,
            full,
            counts: Counts::default(),
            failed: Default::default(),
            held: Default::default(),
            retried: Default::default(),
            retrying: false,
        })
    }

    fn coupling(
        &self,
        left: String,
        right: String,
        source: &Record,
        target: &Record,
        pending: bool,
    ) -> Coupling {
        let (s_ref, t_ref) = (
            reference(self.dir.source_kind, &self.source_table, source),
            reference(self.dir.target_kind, &self.target_table, target),
        );
        let (left_ref, right_ref, left_stamp, right_stamp) = match self.dir.source {
            SideName::Left => (
                s_ref,
                t_ref,
                Some(source.modified_on.clone()),
                Some(target.modified_on.clone()),
            ),
            SideName::Right => (
                t_ref,
                s_ref,
                Some(target.modified_on.clone()),
                Some(source.modified_on.clone()),
            ),
        };
        Coupling {
            mapping: self.dir.mapping.clone(),
            left_id: left,
            right_id: right,
            left_ref,
            right_ref,
            left_stamp,
            right_stamp,
            skipped: false,
            pending,
        }
    }

    /// Runs the pass: retries of failed records and of records whose parent is now coupled,
    /// then the change stream, then deletions.
    pub async fn execute(&mut self) -> Result<(), EngineError> {
        let ctx = self.ctx;
        let dir = self.dir;
        self.target
            .writable(&dir.target_side.table, &written_fields(dir))?;
        // Records that failed last time come first, whether or not they changed since; so do
        // split records whose extra records a stopped run left unconfirmed.
        let mut failed = ctx.state.failed_ids(&dir.mapping, dir.arrow)?;
        self.failed = failed.iter().cloned().collect();
        if dir.split.is_some() {
            for id in ctx.state.pending_part_sources(&dir.mapping)? {
                if !self.failed.contains(&id) {
                    failed.push(id);
                }
            }
        }
        self.revisit(&failed).await?;
        if ctx.opts.stopping() {
            return Ok(());
        }
        // Records waiting for their parent: those whose parent is coupled now.
        let held = ctx.state.held(&dir.mapping, dir.arrow)?;
        self.held = held.iter().map(|h| h.source_id.clone()).collect();
        let mut ready = Vec::new();
        for h in &held {
            // A parent mapping that no longer exists (renamed, removed): the record is handled
            // again under the current mapping set.
            let parent = ctx
                .lookups
                .resolve(&h.via, &dir.source_side.system, &h.parent_ref);
            if !matches!(parent, Ok(None)) && !self.retried.contains(&h.source_id) {
                ready.push(h.source_id.clone());
            }
        }
        self.revisit(&ready).await?;
        if ctx.opts.stopping() {
            return Ok(());
        }
        if ctx.opts.retry_only {
            return Ok(());
        }
        let since = if self.full || dir.read_all {
            None
        } else {
            ctx.state.watermark(&dir.mapping, dir.source)?
        };
        let exclude = if self.full || dir.read_all {
            None
        } else {
            Some(self.source.integration_user().to_string())
        };
        let query = ChangeQuery {
            table: &dir.source_side.table,
            filter: dir.source_filter.as_ref(),
            since: since.as_ref(),
            exclude_modified_by: exclude.as_deref(),
            page_size: ctx.opts.page_size,
            fields: Some(&dir.source_fields),
        };
        let mut after: Option<Cursor> = None;
        let mut seen = 0u64;
        loop {
            let page = self.source.read_changes(&query, after.as_ref()).await?;
            let last = page.records.last().map(Record::cursor);
            let fresh: Vec<Record> = if self.retried.is_empty() {
                page.records
            } else {
                page.records
                    .into_iter()
                    .filter(|r| !self.retried.contains(&r.id))
                    .collect()
            };
            let mark = last.as_ref().filter(|_| !dir.read_all);
            self.process(&fresh, mark).await?;
            seen += fresh.len() as u64;
            ctx.observer.progress(&dir.mapping, dir.arrow, seen);
            // A stop request ends the pass between pages: what was read is written and recorded,
            // the watermark stands after it, and the next run goes on from there.
            if ctx.opts.stopping() {
                return Ok(());
            }
            match page.next {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        if dir.borrowed.is_some() {
            // Deletions are the business of the mapping that owns the couplings.
            return Ok(());
        }
        self.deletions().await
    }

    /// Reads records by id and handles them again (retries, released records). Records deleted
    /// or filtered out since have nothing left to do.
    async fn revisit(&mut self, ids: &[String]) -> Result<(), EngineError> {
        let ctx = self.ctx;
        let dir = self.dir;
        for chunk in ids.chunks(ctx.opts.page_size.max(1)) {
            let records = self
                .source
                .read_by_ids(&dir.source_side.table, chunk)
                .await?;
            let (keep, gone): (Vec<Record>, Vec<Record>) = records.into_iter().partition(|r| {
                dir.source_filter
                    .as_ref()
                    .is_none_or(|f| filter_eval::matches(f, r))
            });
            if !ctx.opts.dry_run {
                let present: Vec<&str> = keep
                    .iter()
                    .chain(gone.iter())
                    .map(|r| r.id.as_str())
                    .collect();
                ctx.state.transaction(|conn| {
                    for id in chunk.iter().filter(|id| {
                        !present.contains(&id.as_str()) || gone.iter().any(|g| &g.id == *id)
                    }) {
                        tx::clear_failure(conn, &dir.mapping, dir.arrow, id)?;
                        tx::release(conn, &dir.mapping, dir.arrow, id)?;
                        if dir.split.is_some() {
                            tx::settle_parts(conn, &dir.mapping, id)?;
                        }
                    }
                    Ok(())
                })?;
            }
            self.retried.extend(keep.iter().map(|r| r.id.clone()));
            self.retrying = true;
            let r = self.process(&keep, None).await;
            self.retrying = false;
            r?;
            if ctx.opts.stopping() {
                break;
            }
        }
        Ok(())
    }

    /// Decides and applies one batch. `watermark`: where the change stream stands after it.
    async fn process(
        &mut self,
        records: &[Record],
        watermark: Option<&Cursor>,
    ) -> Result<(), EngineError> {
        let ctx = self.ctx;
        let dir = self.dir;
        let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        let (owner, side) = dir.couplings();
        let mut found = ctx.state.couplings_by(owner, side, &ids)?;
        let couplings: Vec<Option<Coupling>> =
            records.iter().map(|r| found.remove(&r.id)).collect();
        let target_ids: Vec<String> = couplings
            .iter()
            .flatten()
            .map(|c| c.id(side.other()).to_string())
            .collect();
        let targets: HashMap<String, Record> = if target_ids.is_empty() {
            HashMap::new()
        } else {
            self.target
                .read_by_ids(&dir.target_side.table, &target_ids)
                .await?
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect()
        };
        let mut decisions = Vec::with_capacity(records.len());
        // Targets matched in this batch cannot be matched twice.
        let mut claimed: Vec<String> = Vec::new();
        for (record, coupling) in records.iter().zip(couplings) {
            let d = self
                .decide(record, coupling, &targets, &mut claimed)
                .await?;
            decisions.push(d);
        }
        self.apply(records, decisions, watermark).await
    }

    async fn decide(
        &self,
        record: &Record,
        coupling: Option<Coupling>,
        targets: &HashMap<String, Record>,
        claimed: &mut Vec<String>,
    ) -> Result<Decision, EngineError> {
        let dir = self.dir;
        // The sides of the coupling: a borrowed mapping may pair the tables the other way.
        let (owner, source_side) = dir.couplings();
        let target_side = source_side.other();
        if let Some(c) = &coupling {
            if c.skipped {
                return Ok(Decision::Skip("the coupling is marked skipped".into()));
            }
        }
        // Values are computed only for records that will be written or compared: a record
        // that is skipped anyway must not fail on a lookup.
        let evaluate_for = |target: Option<String>| -> Result<Map<String, Value>, Box<Decision>> {
            evaluate(dir, record, &self.ctx.lookups, &self.target_table, false).map_err(|e| {
                Box::new(match e {
                    EvalError::Fail(e) => Decision::failed(&e, target),
                    EvalError::Wait {
                        via,
                        field,
                        reference,
                    } => Decision::Wait {
                        message: EngineError::AwaitsParent {
                            field,
                            reference: reference.clone(),
                            via: via.clone(),
                        }
                        .to_string(),
                        via,
                        reference,
                    },
                })
            })
        };
        let Some(c) = coupling else {
            if dir.borrowed.is_some() {
                return Ok(Decision::Skip(format!(
                    "not coupled in `{owner}` (`couple via {owner}` updates coupled records only)"
                )));
            }
            return self.decide_uncoupled(record, claimed, &evaluate_for).await;
        };
        let Some(target) = targets.get(c.id(target_side)) else {
            if dir.borrowed.is_some() {
                return Ok(Decision::Skip(format!(
                    "the record coupled in `{owner}` was deleted in `{}`",
                    dir.target_side.system
                )));
            }
            // The coupled target is gone: the deletion policy says what to do.
            return Ok(match dir.delete {
                DeletePolicy::Restore => match evaluate_for(None) {
                    Ok(wanted) => Decision::Create {
                        fields: self.with_create_values(wanted),
                        replaces: Some(c),
                    },
                    Err(fail) => *fail,
                },
                DeletePolicy::Uncouple => Decision::Uncouple {
                    coupling: c,
                    reason: "the coupled record was deleted; coupling removed".into(),
                },
                DeletePolicy::Ignore => Decision::Skip(format!(
                    "the coupled record `{}` was deleted in `{}` (`on delete: ignore`)",
                    c.id(target_side),
                    dir.target_side.system
                )),
            });
        };
        let source_changed = c.stamp(source_side) != Some(record.modified_on.as_str());
        let target_changed = c.stamp(target_side) != Some(target.modified_on.as_str());
        let target_edited =
            target_changed && target.modified_by.as_deref() != Some(self.target.integration_user());
        // A borrowed coupling: a user's edit of the target since its owner last synchronized it
        // is the owner's to carry over first, when the owner reads that side; writing now would
        // hide it from the owner (whose reads leave out what the integration wrote). An endpoint
        // that does not say who changed a record (the Business Central API) tells no edit apart.
        let user_edited = target_changed
            && target
                .modified_by
                .as_deref()
                .is_some_and(|u| u != self.target.integration_user());
        if dir.owner_reads_target && user_edited {
            return Ok(Decision::Skip(format!(
                "changed in `{}` since `{owner}` synchronized it: left for `{owner}` to carry over first",
                dir.target_side.system
            )));
        }
        // The source did not change since the pair was last synchronized (a record read again,
        // a full run): it has nothing to send. Changes on the target side travel in the other
        // direction, and sending here could undo them or a transform's cut. A mapping that
        // reads everything (values that change without a stamp) and a retry always compare.
        let never_synced = c.stamp(source_side).is_none() && c.stamp(target_side).is_none();
        let compare = dir.read_all || dir.borrowed.is_some() || self.retrying;
        if !source_changed && !never_synced && !compare {
            return Ok(Decision::Unchanged {
                coupling: c,
                target: target.clone(),
                fresh: false,
            });
        }
        let wanted = match evaluate_for(Some(target.id.clone())) {
            Ok(w) => w,
            Err(fail) => return Ok(*fail),
        };
        let changes = changed_fields(&wanted, target);
        if changes.is_empty() {
            return Ok(Decision::Unchanged {
                coupling: c,
                target: target.clone(),
                fresh: source_changed || never_synced || self.retrying,
            });
        }
        // A coupling made by hand has no stamps: the first pass brings the pair in line.
        if dir.bidirectional && !never_synced && source_changed && target_edited {
            match dir.conflict.unwrap_or(ConflictWinner::Nobody) {
                ConflictWinner::Source => {}
                ConflictWinner::Target => {
                    return Ok(Decision::Outvoted(format!(
                        "update conflict: both sides changed; `{}` wins",
                        dir.target_side.system
                    )))
                }
                ConflictWinner::Nobody => {
                    // One conflict, one report: the first pass (`->`) records it; the way back
                    // only says where to look.
                    if dir.source == SideName::Right {
                        let reported =
                            self.ctx
                                .state
                                .failure_kind(&dir.mapping, "->", &c.left_id)?
                                == Some(FailureKind::UpdateConflict);
                        if reported {
                            return Ok(Decision::Skip(
                                "both sides changed: the conflict is reported by the `->` pass (`coupler errors`)".into(),
                            ));
                        }
                    }
                    return Ok(Decision::Conflict {
                        message: "update conflict: both sides changed since the last synchronization; `on conflict: log` changes neither (make both sides agree, or say who wins)".into(),
                        target: target.id.clone(),
                    });
                }
            }
        }
        Ok(Decision::Update {
            coupling: c,
            target: target.clone(),
            changes,
        })
    }

    /// A record with no coupling: matched by `couple by` groups in order, else created (when
    /// allowed), else skipped.
    async fn decide_uncoupled(
        &self,
        record: &Record,
        claimed: &mut Vec<String>,
        evaluate_for: &dyn Fn(Option<String>) -> Result<Map<String, Value>, Box<Decision>>,
    ) -> Result<Decision, EngineError> {
        let dir = self.dir;
        for (pairs, ignore_case) in &dir.couple_by {
            let mut equals = Vec::new();
            for (s, t) in pairs {
                let field = &self.target_table.fields[t];
                match normalize(t, field, record.get(s)) {
                    Ok(v) if !v.is_null() => equals.push((t.clone(), v)),
                    _ => break,
                }
            }
            if equals.len() != pairs.len() {
                continue;
            }
            let found = self
                .target
                .find(
                    &dir.target_side.table,
                    &equals,
                    *ignore_case,
                    dir.target_filter.as_ref(),
                )
                .await?;
            let mut free = Vec::new();
            for f in found {
                let taken = claimed.contains(&f.id)
                    || self
                        .ctx
                        .state
                        .coupling_by(&dir.mapping, dir.target(), &f.id)?
                        .is_some();
                if !taken {
                    free.push(f);
                }
            }
            match free.len() {
                0 => continue,
                1 => {
                    let target = free.remove(0);
                    let wanted = match evaluate_for(Some(target.id.clone())) {
                        Ok(w) => w,
                        Err(fail) => return Ok(*fail),
                    };
                    claimed.push(target.id.clone());
                    let changes = changed_fields(&wanted, &target);
                    return Ok(Decision::Couple { target, changes });
                }
                count => {
                    let by = pairs
                        .iter()
                        .map(|(s, t)| format!("{s} == {t}"))
                        .collect::<Vec<_>>()
                        .join(" and ");
                    let table = dir.target_side.table.clone();
                    return Ok(Decision::failed(
                        &EngineError::Ambiguous { count, table, by },
                        None,
                    ));
                }
            }
        }
        if self.create || self.retrying {
            Ok(match evaluate_for(None) {
                Ok(wanted) => Decision::Create {
                    fields: self.with_create_values(wanted),
                    replaces: None,
                },
                Err(fail) => *fail,
            })
        } else {
            Ok(Decision::Skip(
                "not coupled, and `on missing: skip`: couple it (`coupler couple`) or run with --full to create it".into(),
            ))
        }
    }

    fn with_create_values(&self, mut fields: Map<String, Value>) -> Map<String, Value> {
        for (name, value) in &self.dir.create_values {
            let current = fields.get(name);
            if current.is_none_or(Value::is_null) {
                let normalized = self
                    .target_table
                    .fields
                    .get(name)
                    .and_then(|f| normalize(name, f, value).ok())
                    .unwrap_or_else(|| value.clone());
                fields.insert(name.clone(), normalized);
            }
        }
        fields
    }

    pub(super) fn action(
        &self,
        kind: &'static str,
        source: &Record,
        target: Option<String>,
        changes: Vec<Change>,
        reason: Option<String>,
    ) -> Action {
        Action {
            mapping: self.dir.mapping.clone(),
            direction: self.dir.arrow.to_string(),
            kind,
            source_id: source.id.clone(),
            target_id: target,
            changes,
            reason,
        }
    }

    async fn apply(
        &mut self,
        records: &[Record],
        decisions: Vec<Decision>,
        watermark: Option<&Cursor>,
    ) -> Result<(), EngineError> {
        let ctx = self.ctx;
        let dir = self.dir;
        let dry = ctx.opts.dry_run;
        // 1. Report every decision; collect writes.
        let mut ops: Vec<WriteOp> = Vec::new();
        let mut op_index: Vec<usize> = Vec::new();
        let mut new_ids: HashMap<usize, String> = HashMap::new();
        for (i, (record, d)) in records.iter().zip(&decisions).enumerate() {
            let action = match d {
                Decision::Create { fields, replaces } => {
                    let id = new_guid();
                    new_ids.insert(i, id.clone());
                    ops.push(WriteOp::Create {
                        id: id.clone(),
                        fields: fields.clone(),
                    });
                    op_index.push(i);
                    let kind = if replaces.is_some() {
                        "restore"
                    } else {
                        "create"
                    };
                    self.action(kind, record, Some(id), Change::list(fields, None), None)
                }
                Decision::Update {
                    target, changes, ..
                } => {
                    ops.push(WriteOp::Update {
                        id: target.id.clone(),
                        fields: changes.clone(),
                    });
                    op_index.push(i);
                    self.action(
                        "update",
                        record,
                        Some(target.id.clone()),
                        Change::list(changes, Some(target)),
                        None,
                    )
                }
                Decision::Couple { target, changes } => {
                    if !changes.is_empty() {
                        ops.push(WriteOp::Update {
                            id: target.id.clone(),
                            fields: changes.clone(),
                        });
                        op_index.push(i);
                    }
                    let reason = Some(format!(
                        "matched an existing record of `{}`",
                        dir.target_side.table
                    ));
                    self.action(
                        "couple",
                        record,
                        Some(target.id.clone()),
                        Change::list(changes, Some(target)),
                        reason,
                    )
                }
                Decision::Unchanged { target, .. } => self.action(
                    "unchanged",
                    record,
                    Some(target.id.clone()),
                    Vec::new(),
                    None,
                ),
                Decision::Skip(reason)
                | Decision::Outvoted(reason)
                | Decision::Wait {
                    message: reason, ..
                } => self.action("skip", record, None, Vec::new(), Some(reason.clone())),
                Decision::Uncouple { coupling, reason } => self.action(
                    "uncouple",
                    record,
                    Some(coupling.id(dir.target()).to_string()),
                    Vec::new(),
                    Some(reason.clone()),
                ),
                Decision::Fail {
                    message, target, ..
                } => self.action(
                    "fail",
                    record,
                    target.clone(),
                    Vec::new(),
                    Some(message.clone()),
                ),
                Decision::Conflict { message, target } => self.action(
                    "conflict",
                    record,
                    Some(target.clone()),
                    Vec::new(),
                    Some(message.clone()),
                ),
            };
            ctx.observer.action(&action);
        }
        if dry {
            // What the run would couple, so that the records after it look it up as it would.
            for (i, (record, d)) in records.iter().zip(&decisions).enumerate() {
                let target = match d {
                    Decision::Create { fields, .. } => Some(Record {
                        id: new_ids[&i].clone(),
                        modified_on: String::new(),
                        modified_by: None,
                        fields: fields.clone(),
                    }),
                    Decision::Couple { target, .. } => Some(target.clone()),
                    _ => None,
                };
                let Some(target) = target else { continue };
                let s_ref = reference(dir.source_kind, &self.source_table, record);
                let t_ref = reference(dir.target_kind, &self.target_table, &target)
                    .unwrap_or_else(|| "(new record)".to_string());
                if let Some(s_ref) = s_ref {
                    ctx.lookups
                        .plan_coupling(&dir.mapping, dir.source, &s_ref, &t_ref);
                }
            }
            for d in &decisions {
                self.count(d, true);
            }
            let all = vec![true; decisions.len()];
            return self.parts_after(records, &decisions, &all).await;
        }
        // 2. Replaced couplings (restores) go first: their records are gone.
        let restores: Vec<&Coupling> = decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Create {
                    replaces: Some(old),
                    ..
                } => Some(old),
                _ => None,
            })
            .collect();
        // Creates are announced before the records exist, with the keys coupler chose: a run
        // that stops before it couples them finds them again (see `resolve_pending`).
        let mut pending: Option<i64> = None;
        if !restores.is_empty() || !new_ids.is_empty() {
            pending = ctx.state.transaction(|conn| {
                for old in &restores {
                    tx::delete_coupling(conn, &dir.mapping, &old.left_id)?;
                }
                if new_ids.is_empty() {
                    return Ok(None);
                }
                let pairs: Vec<(String, String)> = new_ids
                    .iter()
                    .map(|(i, id)| (records[*i].id.clone(), id.clone()))
                    .collect();
                tx::add_pending_creates(conn, &dir.mapping, dir.arrow, &pairs).map(Some)
            })?;
        }
        // 3. The writes, one result per record.
        let results = if ops.is_empty() {
            Vec::new()
        } else {
            self.target.write(&dir.target_side.table, ops).await?
        };
        let mut result_of: HashMap<usize, Result<Record, ConnectorError>> = HashMap::new();
        for (i, r) in op_index.into_iter().zip(results) {
            result_of.insert(i, r);
        }
        // 4. Couplings, failures, patches and the watermark, in one transaction.
        let has_deferred = dir.has_deferred();
        let mut outcome: Vec<bool> = Vec::with_capacity(decisions.len());
        ctx.state.transaction(|conn| {
            if let Some(batch) = pending {
                tx::clear_pending_creates(conn, batch)?;
            }
            for (i, (record, d)) in records.iter().zip(&decisions).enumerate() {
                let source = &record.id;
                let ok = match d {
                    Decision::Create { .. } => match result_of.remove(&i) {
                        Some(Ok(written)) => {
                            let (l, r) = side_ids(dir, source, &written.id);
                            tx::put_coupling(conn, &self.coupling(l, r, record, &written, false))?;
                            true
                        }
                        other => {
                            let error = other
                                .and_then(Result::err)
                                .map_or(EngineError::NoResult, EngineError::from);
                            self.record(conn, source, None, &error)?;
                            false
                        }
                    },
                    Decision::Unchanged { coupling, .. } => {
                        // The source's state is now handled; the target's is not ours to
                        // declare synchronized (it may carry an edit for the other direction).
                        // Borrowed couplings keep their owner's stamps.
                        if dir.borrowed.is_none()
                            && coupling.stamp(dir.source) != Some(record.modified_on.as_str())
                        {
                            let mut c = coupling.clone();
                            match dir.source {
                                SideName::Left => c.left_stamp = Some(record.modified_on.clone()),
                                SideName::Right => c.right_stamp = Some(record.modified_on.clone()),
                            }
                            tx::put_coupling(conn, &c)?;
                        }
                        true
                    }
                    Decision::Update {
                        coupling, target, ..
                    } => {
                        let written =
                            self.after_write(conn, result_of.remove(&i), source, target)?;
                        match written {
                            Some(_) if dir.borrowed.is_some() => true,
                            Some(w) => {
                                let mut c = self.coupling(
                                    coupling.left_id.clone(),
                                    coupling.right_id.clone(),
                                    record,
                                    &w,
                                    false,
                                );
                                c.skipped = coupling.skipped;
                                tx::put_coupling(conn, &c)?;
                                true
                            }
                            None => false,
                        }
                    }
                    Decision::Couple { target, .. } => {
                        let written =
                            self.after_write(conn, result_of.remove(&i), source, target)?;
                        // Coupled even if the follow-up update failed: the match itself held.
                        let w = written.as_ref().unwrap_or(target);
                        let (l, r) = side_ids(dir, source, &target.id);
                        tx::put_coupling(conn, &self.coupling(l, r, record, w, false))?;
                        written.is_some()
                    }
                    Decision::Uncouple { coupling, .. } => {
                        tx::delete_coupling(conn, &dir.mapping, &coupling.left_id)?;
                        true
                    }
                    Decision::Skip(_) | Decision::Outvoted(_) => {
                        if self.failed.contains(source) {
                            tx::clear_failure(conn, &dir.mapping, dir.arrow, source)?;
                        }
                        true
                    }
                    Decision::Wait { via, reference, .. } => {
                        if self.failed.contains(source) {
                            tx::clear_failure(conn, &dir.mapping, dir.arrow, source)?;
                        }
                        tx::hold(conn, &dir.mapping, dir.arrow, source, via, reference)?;
                        true
                    }
                    Decision::Fail {
                        kind,
                        message,
                        target,
                    } => {
                        let failed = Failed {
                            source,
                            target: target.as_deref(),
                            kind: *kind,
                            message,
                        };
                        tx::record_failure(conn, &dir.mapping, dir.arrow, ctx.run_id, &failed)?;
                        false
                    }
                    Decision::Conflict { message, target } => {
                        let failed = Failed {
                            source,
                            target: Some(target),
                            kind: FailureKind::UpdateConflict,
                            message,
                        };
                        tx::record_failure(conn, &dir.mapping, dir.arrow, ctx.run_id, &failed)?;
                        false
                    }
                };
                if ok && self.parts_due(d) {
                    tx::mark_parts_due(conn, &dir.mapping, source)?;
                } else if dir.split.is_some() && self.retrying {
                    // A record handled again for a mark a stopped run left: nothing is due now.
                    tx::parts_done(conn, &dir.mapping, source)?;
                }
                if self.held.contains(source) && !matches!(d, Decision::Wait { .. }) {
                    tx::release(conn, &dir.mapping, dir.arrow, source)?;
                }
                if ok
                    && !matches!(
                        d,
                        Decision::Skip(_) | Decision::Outvoted(_) | Decision::Wait { .. }
                    )
                {
                    if self.failed.contains(source) {
                        tx::clear_failure(conn, &dir.mapping, dir.arrow, source)?;
                    }
                    // Deferred lookups follow records that were written; an unchanged record
                    // keeps what it has.
                    let written = matches!(
                        d,
                        Decision::Create { .. } | Decision::Update { .. } | Decision::Couple { .. }
                    );
                    if has_deferred && written {
                        tx::add_patch(conn, &dir.mapping, dir.arrow, source)?;
                    }
                }
                outcome.push(ok);
            }
            if let Some(w) = watermark {
                tx::set_watermark(conn, &dir.mapping, dir.source, w)?;
            }
            Ok(())
        })?;
        ctx.lookups.invalidate(&dir.mapping);
        for (d, ok) in decisions.iter().zip(&outcome) {
            self.count(d, *ok);
        }
        self.parts_after(records, &decisions, &outcome).await
    }

    /// Whether a record's extra records (`split`) are brought in line after this decision: its
    /// main record was written or coupled, its source changed, or the run is full.
    fn parts_due(&self, d: &Decision) -> bool {
        self.dir.split.is_some()
            && match d {
                Decision::Create { .. } | Decision::Update { .. } | Decision::Couple { .. } => true,
                Decision::Unchanged { fresh, .. } => *fresh || self.full,
                _ => false,
            }
    }

    /// The extra records of a split, for the records whose main record was written, or whose
    /// source changed: the main record's values may be equal while the rest of the text is not.
    async fn parts_after(
        &mut self,
        records: &[Record],
        decisions: &[Decision],
        ok: &[bool],
    ) -> Result<(), EngineError> {
        if self.dir.split.is_none() {
            return Ok(());
        }
        let mut due: Vec<(&Record, Option<&Record>)> = Vec::new();
        for ((record, d), ok) in records.iter().zip(decisions).zip(ok) {
            if !ok || !self.parts_due(d) {
                continue;
            }
            match d {
                Decision::Update { target, .. }
                | Decision::Couple { target, .. }
                | Decision::Unchanged { target, .. } => due.push((record, Some(target))),
                _ => due.push((record, None)),
            }
        }
        if due.is_empty() {
            return Ok(());
        }
        super::split::sync_parts(self, &due).await
    }

    /// The target after its write (what changed, merged into what was read), or None when the
    /// write failed, which is recorded. No write: the target as read.
    fn after_write(
        &self,
        conn: &rusqlite::Connection,
        result: Option<Result<Record, ConnectorError>>,
        source: &str,
        target: &Record,
    ) -> Result<Option<Record>, StateError> {
        match result {
            Some(Ok(w)) => Ok(Some(merged(target, w))),
            Some(Err(e)) => {
                self.record(conn, source, Some(&target.id), &EngineError::from(e))?;
                Ok(None)
            }
            None => Ok(Some(target.clone())),
        }
    }

    /// Records the failure of `source` (with its target, when it has one) in this pass.
    pub(super) fn record(
        &self,
        conn: &rusqlite::Connection,
        source: &str,
        target: Option<&str>,
        error: &EngineError,
    ) -> Result<(), StateError> {
        let message = error.to_string();
        let failed = Failed {
            source,
            target,
            kind: error.failure_kind(),
            message: &message,
        };
        tx::record_failure(
            conn,
            &self.dir.mapping,
            self.dir.arrow,
            self.ctx.run_id,
            &failed,
        )
    }

    fn count(&mut self, d: &Decision, ok: bool) {
        let c = &mut self.counts;
        match d {
            _ if !ok => match d {
                Decision::Conflict { .. } => {
                    c.conflicts += 1;
                    c.failed += 1;
                }
                _ => c.failed += 1,
            },
            Decision::Create { .. } => c.inserted += 1,
            Decision::Update { .. } => c.modified += 1,
            Decision::Couple { .. } => c.coupled += 1,
            Decision::Unchanged { .. } => c.unchanged += 1,
            Decision::Wait { .. } => c.skipped += 1,
            Decision::Skip(_) => c.skipped += 1,
            Decision::Outvoted(_) => {
                c.skipped += 1;
                c.conflicts += 1;
            }
            Decision::Uncouple { .. } => c.deleted += 1,
            Decision::Fail { .. } => c.failed += 1,
            Decision::Conflict { .. } => {
                c.conflicts += 1;
                c.failed += 1;
            }
        }
    }

    /// Records deleted on the source side: the deletion policy applies to their couplings.
    async fn deletions(&mut self) -> Result<(), EngineError> {
        let ctx = self.ctx;
        let dir = self.dir;
        let since = ctx.state.deleted_since(&dir.mapping, dir.source)?;
        let tombstones = self
            .source
            .read_deleted(&dir.source_side.table, since.as_deref())
            .await?;
        let mut latest = since.unwrap_or_default();
        // A deleted record waits for nothing any more.
        if !self.held.is_empty() && !ctx.opts.dry_run {
            let gone: Vec<String> = tombstones
                .iter()
                .filter(|t| self.held.contains(&t.id))
                .map(|t| t.id.clone())
                .collect();
            if !gone.is_empty() {
                ctx.state
                    .transaction(|conn| tx::release_all(conn, &dir.mapping, dir.arrow, &gone))?;
            }
        }
        for t in tombstones {
            latest = latest.max(t.deleted_on.clone());
            let Some(c) = ctx.state.coupling_by(&dir.mapping, dir.source, &t.id)? else {
                continue;
            };
            let record = Record {
                id: t.id.clone(),
                modified_on: t.deleted_on.clone(),
                modified_by: t.deleted_by.clone(),
                fields: Map::new(),
            };
            match dir.delete {
                DeletePolicy::Ignore => {}
                DeletePolicy::Uncouple => {
                    let action = self.action(
                        "uncouple",
                        &record,
                        Some(c.id(dir.target()).to_string()),
                        Vec::new(),
                        Some(format!(
                            "deleted in `{}`; coupling removed",
                            dir.source_side.system
                        )),
                    );
                    ctx.observer.action(&action);
                    if !ctx.opts.dry_run {
                        ctx.state.transaction(|conn| {
                            tx::delete_coupling(conn, &dir.mapping, &c.left_id)
                        })?;
                    }
                    self.counts.deleted += 1;
                }
                DeletePolicy::Restore => self.restore(&c, &record).await?,
            }
        }
        if let Some(position) = self.source.deletion_position(&dir.source_side.table) {
            latest = position;
        }
        if !ctx.opts.dry_run && !latest.is_empty() {
            ctx.state.transaction(|conn| {
                tx::set_deleted_since(conn, &dir.mapping, dir.source, &latest)
            })?;
        }
        Ok(())
    }

    /// Re-creates a deleted source record from its coupled target, through the reverse direction.
    async fn restore(&mut self, c: &Coupling, deleted: &Record) -> Result<(), EngineError> {
        let ctx = self.ctx;
        let dir = self.dir;
        let Some(reverse) = self.reverse else {
            let action = self.action(
                "skip",
                deleted,
                None,
                Vec::new(),
                Some("cannot restore: the mapping does not flow back".into()),
            );
            ctx.observer.action(&action);
            self.counts.skipped += 1;
            return Ok(());
        };
        let targets = self
            .target
            .read_by_ids(&dir.target_side.table, &[c.id(dir.target()).to_string()])
            .await?;
        let Some(target) = targets.into_iter().next() else {
            return Ok(());
        };
        let fields = match evaluate(reverse, &target, &ctx.lookups, &self.source_table, false) {
            Ok(f) => f,
            Err(e) => {
                let error = e.into_error();
                self.counts.failed += 1;
                if !ctx.opts.dry_run {
                    ctx.state.transaction(|conn| {
                        self.record(conn, &deleted.id, Some(&target.id), &error)
                    })?;
                }
                return Ok(());
            }
        };
        let action = self.action(
            "restore",
            deleted,
            Some(target.id.clone()),
            Change::list(&fields, None),
            None,
        );
        ctx.observer.action(&action);
        if ctx.opts.dry_run {
            self.counts.inserted += 1;
            return Ok(());
        }
        let id = deleted.id.clone();
        let results = self
            .source
            .write(
                &dir.source_side.table,
                vec![WriteOp::Create {
                    id: id.clone(),
                    fields,
                }],
            )
            .await?;
        match results.into_iter().next() {
            Some(Ok(written)) => {
                let mut nc = c.clone();
                match dir.source {
                    SideName::Left => nc.left_stamp = Some(written.modified_on),
                    SideName::Right => nc.right_stamp = Some(written.modified_on),
                }
                ctx.state.transaction(|conn| tx::put_coupling(conn, &nc))?;
                self.counts.inserted += 1;
            }
            Some(Err(e)) => {
                self.counts.failed += 1;
                let error = EngineError::from(e);
                ctx.state
                    .transaction(|conn| self.record(conn, &id, Some(&target.id), &error))?;
            }
            None => {}
        }
        Ok(())
    }
}
