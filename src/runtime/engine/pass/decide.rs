//! What happens to one record: create, update, couple, skip, fail or a conflict.

use super::*;

impl Pass<'_, '_> {
    pub(super) async fn decide(
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
        // A value-set test of the source `where` (`Code is iso4217`): left out, with the reason.
        if let Some(why) = filter_eval::failed_value_set(&dir.source_guards, record) {
            return Ok(Decision::Skip(why));
        }
        if let Some(c) = &coupling {
            if c.skipped {
                return Ok(Decision::Skip("the coupling is marked skipped".into()));
            }
        }
        let Some(c) = coupling else {
            if dir.borrowed.is_some() {
                return Ok(Decision::Skip(format!(
                    "not coupled in `{owner}` (`couple via {owner}` updates coupled records only)"
                )));
            }
            return self.decide_uncoupled(record, claimed).await;
        };
        let Some(target) = targets.get(c.id(target_side)) else {
            return Ok(self.decide_gone(record, c));
        };
        let source_changed = c.stamp(source_side) != Some(record.modified_on.as_str());
        let target_changed = c.stamp(target_side) != Some(target.modified_on.as_str());
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
        let wanted = match self.wanted(record, Some(target.id.clone())) {
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
        let target_edited =
            target_changed && target.modified_by.as_deref() != Some(self.target.integration_user());
        if dir.bidirectional && !never_synced && source_changed && target_edited {
            if let Some(d) = self.decide_conflict(&c, target)? {
                return Ok(d);
            }
        }
        Ok(Decision::Update {
            coupling: c,
            target: target.clone(),
            changes,
        })
    }

    /// The values to write for `record`. Computed only for records that will be written or
    /// compared: a record that is skipped anyway must not fail on a lookup.
    fn wanted(
        &self,
        record: &Record,
        target: Option<String>,
    ) -> Result<Map<String, Value>, Box<Decision>> {
        evaluate(
            self.dir,
            record,
            &self.ctx.lookups,
            &self.target_table,
            false,
        )
        .map_err(|e| {
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
    }

    /// A coupled record whose target is gone: the deletion policy says what to do.
    fn decide_gone(&self, record: &Record, c: Coupling) -> Decision {
        let dir = self.dir;
        let (owner, source_side) = dir.couplings();
        if dir.borrowed.is_some() {
            return Decision::Skip(format!(
                "the record coupled in `{owner}` was deleted in `{}`",
                dir.target_side.system
            ));
        }
        match dir.delete {
            DeletePolicy::Restore => match self.wanted(record, None) {
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
                c.id(source_side.other()),
                dir.target_side.system
            )),
        }
    }

    /// Both sides changed since the pair was last synchronized: the conflict policy decides.
    /// None when the source wins (an ordinary update).
    fn decide_conflict(
        &self,
        c: &Coupling,
        target: &Record,
    ) -> Result<Option<Decision>, EngineError> {
        let dir = self.dir;
        match dir.conflict.unwrap_or(ConflictWinner::Nobody) {
            ConflictWinner::Source => Ok(None),
            ConflictWinner::Target => Ok(Some(Decision::Outvoted(format!(
                "update conflict: both sides changed; `{}` wins",
                dir.target_side.system
            )))),
            ConflictWinner::Nobody => {
                // One conflict, one report: the first pass (`->`) records it; the way back
                // only says where to look.
                if dir.source == SideName::Right {
                    let kind =
                        self.ctx
                            .state
                            .failure_kind(&dir.mapping, Arrow::Forward, &c.left_id)?;
                    if kind == Some(FailureKind::UpdateConflict) {
                        return Ok(Some(Decision::Skip(
                            "both sides changed: the conflict is reported by the `->` pass (`coupler errors`)".into(),
                        )));
                    }
                }
                Ok(Some(Decision::Conflict {
                    message: "update conflict: both sides changed since the last synchronization; `on conflict: log` changes neither (make both sides agree, or say who wins)".into(),
                    target: target.id.clone(),
                }))
            }
        }
    }

    /// A record with no coupling: matched by `couple by` groups in order, else created (when
    /// allowed), else skipped.
    async fn decide_uncoupled(
        &self,
        record: &Record,
        claimed: &mut Vec<String>,
    ) -> Result<Decision, EngineError> {
        let dir = self.dir;
        let doubt = self
            .ctx
            .in_doubt
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&crate::runtime::engine::pending::doubt_key(dir, &record.id))
            .cloned();
        if let Some(why) = doubt {
            return Ok(Decision::failed(&EngineError::CreateInDoubt { why }, None));
        }
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
                    let wanted = match self.wanted(record, Some(target.id.clone())) {
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
            Ok(match self.wanted(record, None) {
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
}
