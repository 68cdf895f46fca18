//! One pass of a table mapping: source side -> target side. Reads changes in pages, decides per
//! record (create, update, couple, unchanged, skip, fail, conflict), writes in batches, and
//! records couplings, failures and the watermark in the state store.
//!
//! Crash safety: a create is first recorded as pending, with the key coupler chose for the new
//! record; then the record is written; then it is coupled and the pending entry removed, in one
//! transaction. A run that stopped in between finds the pending entry, looks for the record and
//! couples it if it exists, so nothing is created twice.
//! The watermark moves only past records that were handled (written, or recorded as failed).

mod apply;
mod decide;
mod deletions;
pub(super) mod split;

use super::compile::{ConflictWinner, Direction, OwnChanges};
use super::compile::{DeletePolicy, MissingPolicy};
use super::error::EngineError;
use super::evaluate::{changed_fields, evaluate, reference, EvalError};
use super::report::{Action, ActionKind, Change, Leg};
use super::Ctx;
use crate::analysis::Arrow;
use crate::runtime::connector::{ChangeQuery, Connector, Cursor, Record, WriteOp};
use crate::runtime::crash;
use crate::runtime::filter_eval;
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
        let full = ctx.full(&dir.mapping);
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
        ctx.lookups
            .set_throughs(super::through::load(dir, ctx.systems).await);
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
        // Loop prevention as Business Central does it: incremental reads of a bidirectional
        // mapping whose source fields all flow back (`Direction::own_changes`); never a full run.
        let exclude = if self.full || dir.read_all || dir.own_changes != OwnChanges::LeftOut {
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
            let last = page
                .position
                .clone()
                .or_else(|| page.records.last().map(Record::cursor));
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
}
