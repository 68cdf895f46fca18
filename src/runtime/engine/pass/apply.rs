//! Writing a page's decisions: report them, announce creates, write, then settle couplings,
//! failures and the watermark in one transaction.

use super::*;
use crate::runtime::engine::pending;
use crate::runtime::state::PendingCreate;

/// The writes of one page: the ops, the decision each belongs to, and the ids of new records.
#[derive(Default)]
struct Writes {
    ops: Vec<WriteOp>,
    op_index: Vec<usize>,
    new_ids: HashMap<usize, String>,
}

impl Pass<'_, '_> {
    pub(super) fn action(
        &self,
        kind: ActionKind,
        source: &Record,
        target: Option<String>,
        changes: Vec<Change>,
        reason: Option<String>,
    ) -> Action {
        Action {
            mapping: self.dir.mapping.clone(),
            direction: Leg::Pass(self.dir.arrow),
            kind,
            source_id: source.id.clone(),
            target_id: target,
            changes,
            reason,
        }
    }

    /// Writes one page's decisions: reports each, announces the creates, writes, then settles
    /// couplings, failures and the watermark in one transaction.
    pub(super) async fn apply(
        &mut self,
        records: &[Record],
        decisions: Vec<Decision>,
        watermark: Option<&Cursor>,
    ) -> Result<(), EngineError> {
        let writes = self.report(records, &decisions);
        if self.ctx.opts.dry_run {
            return self.apply_dry(records, &decisions, &writes.new_ids).await;
        }
        let pending = self.announce(records, &decisions, &writes.new_ids)?;
        crash::point("after-announce");
        let mut results = self.write(writes).await?;
        crash::point("after-write");
        let outcome = self.settle(records, &decisions, &mut results, pending, watermark)?;
        crash::point("after-settle");
        self.ctx.lookups.invalidate(&self.dir.mapping);
        for (d, ok) in decisions.iter().zip(&outcome) {
            self.count(d, *ok);
        }
        self.claim_sources(records, &decisions, &outcome).await?;
        self.parts_after(records, &decisions, &outcome).await
    }

    /// The source records a target was created from, for the source endpoint to claim (a
    /// company-scoped Dataverse stamps those of no company with its own).
    async fn claim_sources(
        &self,
        records: &[Record],
        decisions: &[Decision],
        ok: &[bool],
    ) -> Result<(), EngineError> {
        let created: Vec<&Record> = records
            .iter()
            .zip(decisions)
            .zip(ok)
            .filter(|((_, d), ok)| **ok && matches!(d, Decision::Create { .. }))
            .map(|((r, _), _)| r)
            .collect();
        if created.is_empty() {
            return Ok(());
        }
        self.source
            .claim(&self.dir.source_side.table, &created)
            .await?;
        Ok(())
    }

    /// Reports every decision to the observer and collects the writes they need.
    fn report(&self, records: &[Record], decisions: &[Decision]) -> Writes {
        let mut writes = Writes::default();
        for (i, (record, d)) in records.iter().zip(decisions).enumerate() {
            let action = self.action_of(i, record, d, &mut writes);
            self.ctx.observer.action(&action);
        }
        writes
    }

    /// The action a decision reports; its write, if it needs one, joins `writes`.
    fn action_of(&self, i: usize, record: &Record, d: &Decision, writes: &mut Writes) -> Action {
        let dir = self.dir;
        let Writes {
            ops,
            op_index,
            new_ids,
        } = writes;
        match d {
            Decision::Create { fields, replaces } => {
                let id = new_guid();
                new_ids.insert(i, id.clone());
                ops.push(WriteOp::Create {
                    id: id.clone(),
                    fields: fields.clone(),
                });
                op_index.push(i);
                let kind = if replaces.is_some() {
                    ActionKind::Restore
                } else {
                    ActionKind::Create
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
                    ActionKind::Update,
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
                    ActionKind::Couple,
                    record,
                    Some(target.id.clone()),
                    Change::list(changes, Some(target)),
                    reason,
                )
            }
            Decision::Unchanged { target, .. } => self.action(
                ActionKind::Unchanged,
                record,
                Some(target.id.clone()),
                Vec::new(),
                None,
            ),
            Decision::Skip(reason)
            | Decision::Outvoted(reason)
            | Decision::Wait {
                message: reason, ..
            } => self.action(
                ActionKind::Skip,
                record,
                None,
                Vec::new(),
                Some(reason.clone()),
            ),
            Decision::Uncouple { coupling, reason } => self.action(
                ActionKind::Uncouple,
                record,
                Some(coupling.id(dir.target()).to_string()),
                Vec::new(),
                Some(reason.clone()),
            ),
            Decision::Fail {
                message, target, ..
            } => self.action(
                ActionKind::Fail,
                record,
                target.clone(),
                Vec::new(),
                Some(message.clone()),
            ),
            Decision::Conflict { message, target } => self.action(
                ActionKind::Conflict,
                record,
                Some(target.clone()),
                Vec::new(),
                Some(message.clone()),
            ),
        }
    }

    /// A dry run: what the run would couple, so that the records after it look it up as it
    /// would; everything counts as done.
    async fn apply_dry(
        &mut self,
        records: &[Record],
        decisions: &[Decision],
        new_ids: &HashMap<usize, String>,
    ) -> Result<(), EngineError> {
        let ctx = self.ctx;
        let dir = self.dir;
        // What the run would couple, so that the records after it look it up as it would.
        for (i, (record, d)) in records.iter().zip(decisions).enumerate() {
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
        for d in decisions {
            self.count(d, true);
        }
        let all = vec![true; decisions.len()];
        return self.parts_after(records, decisions, &all).await;
    }

    /// Replaced couplings (restores) go first: their records are gone. Creates are announced
    /// before the records exist, with the keys coupler chose: a run that stops before it
    /// couples them finds them again (see `resolve_pending`). Returns the announcement.
    fn announce(
        &self,
        records: &[Record],
        decisions: &[Decision],
        new_ids: &HashMap<usize, String>,
    ) -> Result<Option<(i64, Vec<PendingCreate>)>, StateError> {
        let dir = self.dir;
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
        let mut pending: Option<(i64, Vec<PendingCreate>)> = None;
        if !restores.is_empty() || !new_ids.is_empty() {
            pending = self.ctx.state.transaction(|conn| {
                for old in &restores {
                    tx::delete_coupling(conn, &dir.mapping, &old.left_id)?;
                }
                if new_ids.is_empty() {
                    return Ok(None);
                }
                let creates = self.pending_creates(records, decisions, new_ids);
                let batch = tx::add_pending_creates(conn, &dir.mapping, dir.arrow, &creates)?;
                Ok(Some((batch, creates)))
            })?;
        }
        Ok(pending)
    }

    /// The creates of a page as they are announced; for an endpoint that gives new records ids
    /// of its own, with the values that find them again.
    fn pending_creates(
        &self,
        records: &[Record],
        decisions: &[Decision],
        new_ids: &HashMap<usize, String>,
    ) -> Vec<PendingCreate> {
        let own_ids = !self.target.keeps_create_ids(&self.dir.target_side.table);
        let now = crate::runtime::values::now_stamp();
        let mut creates: Vec<PendingCreate> = new_ids
            .iter()
            .map(|(i, id)| PendingCreate {
                source: records[*i].id.clone(),
                target: id.clone(),
                find_by: match &decisions[*i] {
                    Decision::Create { fields, .. } if own_ids => {
                        pending::find_by(self.dir, &self.target_table, fields)
                    }
                    _ => Vec::new(),
                },
                announced: own_ids.then(|| now.clone()),
            })
            .collect();
        creates.sort_by(|a, b| a.source.cmp(&b.source));
        creates
    }

    /// The writes, one result per decision that wrote. A decision the endpoint's answer has
    /// no result for fails with `NoResult`: it is never taken as written.
    async fn write(
        &self,
        writes: Writes,
    ) -> Result<HashMap<usize, Result<Record, EngineError>>, EngineError> {
        let table = &self.dir.target_side.table;
        let results = if writes.ops.is_empty() {
            Vec::new()
        } else {
            self.target.write(table, writes.ops).await?
        };
        let mut results = results.into_iter();
        Ok(writes
            .op_index
            .into_iter()
            .map(|i| {
                let r = results
                    .next()
                    .map_or(Err(EngineError::NoResult), |r| r.map_err(EngineError::from));
                (i, r)
            })
            .collect())
    }

    /// Couplings, failures, patches and the watermark, in one transaction; whether each
    /// decision was carried out.
    fn settle(
        &self,
        records: &[Record],
        decisions: &[Decision],
        results: &mut HashMap<usize, Result<Record, EngineError>>,
        pending: Option<(i64, Vec<PendingCreate>)>,
        watermark: Option<&Cursor>,
    ) -> Result<Vec<bool>, StateError> {
        let dir = self.dir;
        self.ctx.state.transaction(|conn| {
            // Creates whose write may have happened (no answer, a garbled one, a server
            // error) stay pending: the next run looks for their records before making them
            // again (see `pending`). The others are settled here.
            let mut in_doubt: Vec<PendingCreate> = Vec::new();
            if let Some((batch, creates)) = pending {
                tx::clear_pending_creates(conn, batch)?;
                let index: HashMap<&str, usize> = records
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (r.id.as_str(), i))
                    .collect();
                in_doubt = creates
                    .into_iter()
                    .filter(|p| {
                        index
                            .get(p.source.as_str())
                            .is_some_and(|i| match results.get(i) {
                                Some(Err(e)) => e.may_have_written(),
                                Some(Ok(_)) => false,
                                None => true,
                            })
                    })
                    .collect();
            }
            if !in_doubt.is_empty() {
                tx::add_pending_creates(conn, &dir.mapping, dir.arrow, &in_doubt)?;
                // Not created again in this run (a later page, a retry) before it is looked for.
                let mut held = self.ctx.in_doubt.lock().unwrap_or_else(|e| e.into_inner());
                for p in &in_doubt {
                    held.insert(
                        pending::doubt_key(dir, &p.source),
                        "its create got no certain answer in this run; it is looked for first"
                            .into(),
                    );
                }
            }
            let mut outcome = Vec::with_capacity(decisions.len());
            for (i, (record, d)) in records.iter().zip(decisions).enumerate() {
                let ok = self.settle_one(conn, record, d, results.remove(&i))?;
                self.follow_up(conn, &record.id, d, ok)?;
                outcome.push(ok);
            }
            if let Some(w) = watermark {
                tx::set_watermark(conn, &dir.mapping, dir.source, w)?;
            }
            Ok(outcome)
        })
    }

    /// Settles one decision with its write's result (`None`: it wrote nothing).
    fn settle_one(
        &self,
        conn: &rusqlite::Connection,
        record: &Record,
        d: &Decision,
        result: Option<Result<Record, EngineError>>,
    ) -> Result<bool, StateError> {
        let dir = self.dir;
        let ctx = self.ctx;
        let source = &record.id;
        Ok(match d {
            Decision::Create { .. } => match result {
                Some(Ok(written)) => {
                    let (l, r) = side_ids(dir, source, &written.id);
                    tx::put_coupling(conn, &self.coupling(l, r, record, &written, false))?;
                    true
                }
                other => {
                    let error = other.and_then(Result::err).unwrap_or(EngineError::NoResult);
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
                let written = self.after_write(conn, result, source, target)?;
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
                let written = self.after_write(conn, result, source, target)?;
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
        })
    }

    /// After a decision: its split parts, its hold, its old failure and its deferred patch.
    fn follow_up(
        &self,
        conn: &rusqlite::Connection,
        source: &str,
        d: &Decision,
        ok: bool,
    ) -> Result<(), StateError> {
        let dir = self.dir;
        let has_deferred = dir.has_deferred();
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
            // Deferred lookups follow records that were written, and records whose source
            // changed though no other field did: the change may be the deferred field alone,
            // which only the patch compares. A record read again unchanged keeps what it has.
            let due = matches!(
                d,
                Decision::Create { .. }
                    | Decision::Update { .. }
                    | Decision::Couple { .. }
                    | Decision::Unchanged { fresh: true, .. }
            );
            if has_deferred && due {
                tx::add_patch(conn, &dir.mapping, dir.arrow, source)?;
            }
        }
        Ok(())
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
        result: Option<Result<Record, EngineError>>,
        source: &str,
        target: &Record,
    ) -> Result<Option<Record>, StateError> {
        match result {
            Some(Ok(w)) => Ok(Some(merged(target, w))),
            Some(Err(e)) => {
                self.record(conn, source, Some(&target.id), &e)?;
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
}
