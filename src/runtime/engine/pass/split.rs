//! `split`: one source record, several target records. The first part of a long text stays on
//! the main record (see `evaluate`); each further part goes to an extra record written with the
//! split block's lines, numbered after the main record. Extra records are coupled too (state
//! table `parts`), so a re-run updates them, adds the parts a longer text needs and deletes the
//! ones a shorter text no longer needs.
//!
//! Crash safety: a new part is announced (pending) with the id coupler chose before it is
//! written; a run that stops in between finds the pending part, and the source record is
//! handled again: the part is created with the same id if it does not exist.

use super::super::text::{parts, text_of};
use super::Pass;
use crate::runtime::connector::{Record, WriteOp};
use crate::runtime::engine::compile::{Direction, Split};
use crate::runtime::engine::error::EngineError;
use crate::runtime::engine::evaluate::{changed_fields, evaluate, evaluate_steps, EvalError};
use crate::runtime::engine::report::{ActionKind, Change};
use crate::runtime::state::tx;
use crate::runtime::values::{new_guid, normalize};
use crate::schema::Table;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// One planned write of an extra record.
struct PartWrite {
    source: String,
    part: u32,
    op: WriteOp,
    /// The extra record was announced in this run (a new id).
    new: bool,
    changes: Vec<Change>,
}

/// Values of every extra record of `record`: the block's lines, the part, the number.
fn wanted_parts(
    dir: &Direction,
    split: &Split,
    record: &Record,
    main: Option<&Record>,
    pass: &Pass<'_, '_>,
) -> Result<Vec<Map<String, Value>>, EngineError> {
    let table: &Table = &pass.target_table;
    let lookups = &pass.ctx.lookups;
    let texts = parts(&text_of(record, split), split.length);
    if texts.len() <= 1 {
        return Ok(Vec::new());
    }
    let steps: Vec<_> = split.steps.iter().collect();
    let common =
        evaluate_steps(dir, &steps, &[], record, lookups, table).map_err(EvalError::into_error)?;
    let base = match &split.numbered {
        Some(n) => {
            let main_values =
                evaluate(dir, record, lookups, table, false).map_err(EvalError::into_error)?;
            let value = main_values
                .get(n)
                .cloned()
                .or_else(|| main.map(|m| m.get(n).clone()))
                .unwrap_or(Value::Null);
            let Some(base) = value.as_i64() else {
                return Err(EngineError::Unnumbered {
                    field: n.clone(),
                    value,
                });
            };
            Some((n, base))
        }
        None => None,
    };
    let field = |name: &str| {
        table
            .fields
            .get(name)
            .ok_or_else(|| EngineError::UnknownField {
                field: name.to_string(),
                table: dir.target_side.table.clone(),
            })
    };
    let mut out = Vec::new();
    for (i, text) in texts.iter().enumerate().skip(1) {
        let mut values = common.clone();
        let into = normalize(
            &split.into,
            field(&split.into)?,
            &Value::String(text.clone()),
        )?;
        values.insert(split.into.clone(), into);
        if let Some((n, base)) = base {
            let number = normalize(n, field(n)?, &Value::from(base + i as i64))?;
            values.insert(n.clone(), number);
        }
        out.push(values);
    }
    Ok(out)
}

/// Brings the extra records of `due` (source record, main target when known) in line.
pub(in crate::runtime::engine) async fn sync_parts(
    pass: &mut Pass<'_, '_>,
    due: &[(&Record, Option<&Record>)],
) -> Result<(), EngineError> {
    let ctx = pass.ctx;
    let dir = pass.dir;
    let Some(split) = &dir.split else {
        return Ok(());
    };
    let ids: Vec<&str> = due.iter().map(|(r, _)| r.id.as_str()).collect();
    let known = ctx.state.parts_of(&dir.mapping, &ids)?;
    let target_ids: Vec<String> = known
        .values()
        .flatten()
        .map(|p| p.target_id.clone())
        .collect();
    let mut current: HashMap<String, Record> = HashMap::new();
    for chunk in target_ids.chunks(ctx.opts.page_size.max(1)) {
        let found = pass
            .target
            .read_by_ids(&dir.target_side.table, chunk)
            .await?;
        current.extend(found.into_iter().map(|r| (r.id.clone(), r)));
    }
    let planned = plan_parts(pass, split, due, &known, &current);
    let PlannedParts {
        writes,
        failures,
        forget,
    } = planned;
    report_parts(pass, split, &writes);
    if ctx.opts.dry_run {
        count(pass, &writes, &[]);
        pass.counts.failed += failures.len() as u64;
        return Ok(());
    }
    // Announce new parts before they exist.
    ctx.state.transaction(|conn| {
        for w in writes.iter().filter(|w| w.new) {
            tx::put_part(conn, &dir.mapping, &w.source, w.part, w.op.id(), true)?;
        }
        Ok(())
    })?;
    let ops: Vec<WriteOp> = writes
        .iter()
        .filter(|w| !is_confirm(w))
        .map(|w| w.op.clone())
        .collect();
    let mut results = if ops.is_empty() {
        Vec::new()
    } else {
        pass.target.write(&dir.target_side.table, ops).await?
    }
    .into_iter();
    let mut failed_writes: Vec<usize> = Vec::new();
    ctx.state.transaction(|conn| {
        for (i, w) in writes.iter().enumerate() {
            let result = if is_confirm(w) {
                Ok(())
            } else {
                match results.next() {
                    Some(Ok(_)) => Ok(()),
                    Some(Err(e)) => Err(EngineError::from(e)),
                    None => Err(EngineError::NoResult),
                }
            };
            match (&w.op, result) {
                (WriteOp::Delete { .. }, Ok(())) => {
                    tx::delete_part(conn, &dir.mapping, &w.source, w.part)?
                }
                (_, Ok(())) => {
                    tx::put_part(conn, &dir.mapping, &w.source, w.part, w.op.id(), false)?
                }
                (op, Err(e)) => {
                    if matches!(op, WriteOp::Create { .. }) && w.new {
                        tx::delete_part(conn, &dir.mapping, &w.source, w.part)?;
                    }
                    failed_writes.push(i);
                    let error = EngineError::Part {
                        part: w.part,
                        field: split.field.clone(),
                        source: Box::new(e),
                    };
                    pass.record(conn, &w.source, Some(w.op.id()), &error)?;
                }
            }
        }
        for (source, part) in &forget {
            tx::delete_part(conn, &dir.mapping, source, *part)?;
        }
        // Failures above are retried as records; the parts of every due record were handled.
        for (record, _) in due {
            tx::parts_done(conn, &dir.mapping, &record.id)?;
        }
        for (source, error) in &failures {
            pass.record(conn, source, None, error)?;
        }
        Ok(())
    })?;
    count(pass, &writes, &failed_writes);
    pass.counts.failed += failures.len() as u64;
    Ok(())
}

/// An update with nothing to change: only confirms a part a stopped run left pending.
fn is_confirm(w: &PartWrite) -> bool {
    matches!(&w.op, WriteOp::Update { fields, .. } if fields.is_empty())
}

fn count(pass: &mut Pass<'_, '_>, writes: &[PartWrite], failed: &[usize]) {
    for (i, w) in writes.iter().enumerate() {
        let c = &mut pass.counts;
        if failed.contains(&i) {
            c.failed += 1;
            continue;
        }
        match &w.op {
            WriteOp::Create { .. } => c.inserted += 1,
            WriteOp::Update { fields, .. } if !fields.is_empty() => c.modified += 1,
            WriteOp::Update { .. } => {}
            WriteOp::Delete { .. } => c.deleted += 1,
        }
    }
}

/// What `sync_parts` will do: the writes, the records whose parts cannot be computed, and the
/// rows of parts that are gone and no longer needed.
struct PlannedParts {
    writes: Vec<PartWrite>,
    failures: Vec<(String, EngineError)>,
    forget: Vec<(String, u32)>,
}

/// Compares the wanted parts of each due record with the parts known and their records now.
fn plan_parts(
    pass: &Pass<'_, '_>,
    split: &Split,
    due: &[(&Record, Option<&Record>)],
    known: &HashMap<String, Vec<crate::runtime::state::Part>>,
    current: &HashMap<String, Record>,
) -> PlannedParts {
    let dir = pass.dir;
    let mut writes: Vec<PartWrite> = Vec::new();
    let mut failures: Vec<(String, EngineError)> = Vec::new();
    let mut forget: Vec<(String, u32)> = Vec::new();
    for (record, main) in due {
        let wanted = match wanted_parts(dir, split, record, *main, pass) {
            Ok(w) => w,
            Err(e) => {
                failures.push((
                    record.id.clone(),
                    EngineError::Parts {
                        field: split.field.clone(),
                        source: Box::new(e),
                    },
                ));
                continue;
            }
        };
        // Parts 1..=needed are wanted; the records of higher parts go.
        let needed = wanted.len() as u32;
        let had = known.get(&record.id).cloned().unwrap_or_default();
        for (i, values) in wanted.into_iter().enumerate() {
            let part = i as u32 + 1;
            let existing = had.iter().find(|p| p.part == part);
            match existing.and_then(|p| current.get(&p.target_id)) {
                Some(now) => {
                    let changes = changed_fields(&values, now);
                    if !changes.is_empty() {
                        writes.push(PartWrite {
                            source: record.id.clone(),
                            part,
                            changes: Change::list(&changes, Some(now)),
                            op: WriteOp::Update {
                                id: now.id.clone(),
                                fields: changes,
                            },
                            new: false,
                        });
                    } else if existing.is_some_and(|p| p.pending) {
                        // Written by a run that stopped before confirming it.
                        writes.push(PartWrite {
                            source: record.id.clone(),
                            part,
                            changes: Vec::new(),
                            op: WriteOp::Update {
                                id: now.id.clone(),
                                fields: Map::new(),
                            },
                            new: false,
                        });
                    }
                }
                None => {
                    // Never written, or deleted since: created, with the id chosen before.
                    let (id, new) = match existing {
                        Some(p) => (p.target_id.clone(), p.pending),
                        None => (new_guid(), true),
                    };
                    writes.push(PartWrite {
                        source: record.id.clone(),
                        part,
                        changes: Change::list(&values, None),
                        op: WriteOp::Create { id, fields: values },
                        new,
                    });
                }
            }
        }
        for p in had.iter().filter(|p| p.part > needed) {
            if current.contains_key(&p.target_id) {
                writes.push(PartWrite {
                    source: record.id.clone(),
                    part: p.part,
                    changes: Vec::new(),
                    op: WriteOp::Delete {
                        id: p.target_id.clone(),
                    },
                    new: false,
                });
            } else {
                forget.push((record.id.clone(), p.part));
            }
        }
    }
    PlannedParts {
        writes,
        failures,
        forget,
    }
}

/// Reports each write of an extra record (a confirmation of a pending one writes nothing).
fn report_parts(pass: &Pass<'_, '_>, split: &Split, writes: &[PartWrite]) {
    for w in writes {
        let kind = match &w.op {
            WriteOp::Create { .. } => ActionKind::Create,
            WriteOp::Update { fields, .. } if fields.is_empty() => continue,
            WriteOp::Update { .. } => ActionKind::Update,
            WriteOp::Delete { .. } => ActionKind::Delete,
        };
        let source = Record {
            id: w.source.clone(),
            modified_on: String::new(),
            modified_by: None,
            fields: Map::new(),
        };
        let action = pass.action(
            kind,
            &source,
            Some(w.op.id().to_string()),
            w.changes.clone(),
            Some(format!("extra record {} of `{}`", w.part, split.field)),
        );
        pass.ctx.observer.action(&action);
    }
}

#[cfg(test)]
mod tests {
    use super::parts;

    #[test]
    fn parts_count_characters_not_bytes() {
        assert_eq!(parts("", 3), Vec::<String>::new());
        assert_eq!(parts("abc", 3), vec!["abc"]);
        assert_eq!(parts("abcd", 3), vec!["abc", "d"]);
        assert_eq!(parts("äöüßé", 2), vec!["äö", "üß", "é"]);
    }
}
