//! Records deleted on the source side, and restoring a deleted target from its partner.

use super::*;

impl Pass<'_, '_> {
    /// Records deleted on the source side: the deletion policy applies to their couplings.
    pub(super) async fn deletions(&mut self) -> Result<(), EngineError> {
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
                        ActionKind::Uncouple,
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
                ActionKind::Skip,
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
            ActionKind::Restore,
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
