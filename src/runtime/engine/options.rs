//! Option mappings: the records of a Business Central table coupled with the values of a
//! Dataverse option set, by label (ignoring case) or by the explicit pairs. A code with no
//! matching option is skipped and the option field stays blank, as Business Central does.

use super::error::EngineError;
use super::report::{Action, ActionKind, Leg};
use super::Ctx;
use crate::analysis::Arrow;
use crate::plan::{MappingPlan, OptionsPlan};
use crate::runtime::connector::{ChangeQuery, Cursor, Record, WriteOp};
use crate::runtime::state::{tx, Counts, Coupling, Failed};
use crate::runtime::values::new_guid;
use serde_json::{Map, Value};

pub(crate) async fn execute(
    ctx: &Ctx<'_>,
    m: &MappingPlan,
    o: &OptionsPlan,
    counts: &mut Counts,
) -> Result<(), EngineError> {
    let (left, right) = (&o.left, &o.right);
    let key_field = &o.key_field;
    let option_field = ctx
        .model
        .field(right, &o.option_field)
        .cloned()
        .ok_or_else(|| EngineError::UnknownOptionField(o.option_field.clone()))?;
    let labels: Vec<String> = option_field
        .options
        .as_ref()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let pairs = &o.pairs;
    let label_for = |code: &str| -> Option<String> {
        pairs
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(code))
            .map(|(_, l)| l.clone())
            .or_else(|| option_field.option_label(code).map(str::to_string))
    };
    let code_for = |label: &str| -> String {
        pairs
            .iter()
            .find(|(_, l)| l.eq_ignore_ascii_case(label))
            .map(|(c, _)| c.clone())
            .unwrap_or_else(|| label.to_string())
    };
    let system = ctx.system(&left.system)?;
    let table = ctx.table(left)?;
    // The code table is small: read it whole each run.
    let mut records: Vec<Record> = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let q = ChangeQuery {
            table: &left.table,
            filter: None,
            since: None,
            exclude_modified_by: None,
            page_size: ctx.opts.page_size,
            fields: None,
        };
        let page = system.read_changes(&q, after.as_ref()).await?;
        records.extend(page.records);
        match page.next {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    let existing = ctx.state.couplings(&m.name)?;
    let action =
        |kind: ActionKind, source: &str, target: Option<String>, reason: Option<String>| Action {
            mapping: m.name.clone(),
            direction: Leg::Pass(m.direction),
            kind,
            source_id: source.to_string(),
            target_id: target,
            changes: Vec::new(),
            reason,
        };
    let mut wanted: Vec<Coupling> = Vec::new();
    let mut creates: Vec<(String, String, Map<String, Value>)> = Vec::new();
    match m.direction {
        Arrow::Backward => {
            // Each option becomes (or couples to) a record of the code table.
            for label in &labels {
                let code = code_for(label);
                let found = records.iter().find(|r| {
                    r.get(key_field)
                        .as_str()
                        .is_some_and(|c| c.eq_ignore_ascii_case(&code))
                });
                match found {
                    Some(r) => wanted.push(coupling(&m.name, &r.id, &code_of(r, key_field), label)),
                    None => {
                        let len = table
                            .fields
                            .get(key_field)
                            .and_then(|f| f.length)
                            .unwrap_or(10) as usize;
                        let code: String = code.to_uppercase().chars().take(len).collect();
                        let mut fields = Map::new();
                        fields.insert(key_field.clone(), Value::String(code.clone()));
                        creates.push((new_guid(), label.clone(), fields));
                    }
                }
            }
        }
        _ => {
            for r in &records {
                let code = code_of(r, key_field);
                match label_for(&code) {
                    Some(label) => wanted.push(coupling(&m.name, &r.id, &code, &label)),
                    None => {
                        ctx.observer.action(&action(
                            ActionKind::Skip,
                            &r.id,
                            None,
                            Some(format!(
                                "no option of `{}` matches `{code}`: the field stays blank",
                                o.option_field
                            )),
                        ));
                        counts.skipped += 1;
                    }
                }
            }
        }
    }
    for w in &wanted {
        let same = existing.iter().any(|e| {
            e.left_id == w.left_id && e.right_id == w.right_id && e.left_ref == w.left_ref
        });
        if same {
            counts.unchanged += 1;
        } else {
            counts.coupled += 1;
            ctx.observer.action(&action(
                ActionKind::Couple,
                &w.left_id,
                Some(w.right_id.clone()),
                w.left_ref
                    .clone()
                    .map(|c| format!("`{c}` = '{}'", w.right_id)),
            ));
        }
    }
    for (id, label, _) in &creates {
        ctx.observer
            .action(&action(ActionKind::Create, id, Some(label.clone()), None));
    }
    if ctx.opts.dry_run {
        counts.inserted += creates.len() as u64;
        return Ok(());
    }
    if !creates.is_empty() {
        let ops = creates
            .iter()
            .map(|(id, _, f)| WriteOp::Create {
                id: id.clone(),
                fields: f.clone(),
            })
            .collect();
        let results = system.write(&left.table, ops).await?;
        for ((_, label, _), r) in creates.iter().zip(results) {
            match r {
                Ok(rec) => {
                    counts.inserted += 1;
                    wanted.push(coupling(&m.name, &rec.id, &code_of(&rec, key_field), label));
                }
                Err(e) => {
                    counts.failed += 1;
                    let failed = Failed {
                        source: label,
                        target: None,
                        kind: e.kind.into(),
                        message: &e.message,
                    };
                    ctx.state.transaction(|conn| {
                        tx::record_failure(conn, &m.name, m.direction, ctx.run_id, &failed)
                    })?;
                }
            }
        }
    }
    ctx.state.transaction(|conn| {
        // Couplings of codes that no longer match are removed, so lookups stay blank.
        for e in &existing {
            if !wanted.iter().any(|w| w.left_id == e.left_id) {
                tx::delete_coupling(conn, &m.name, &e.left_id)?;
            }
        }
        for w in &wanted {
            tx::put_coupling(conn, w)?;
        }
        Ok(())
    })?;
    ctx.lookups.invalidate(&m.name);
    Ok(())
}

fn code_of(r: &Record, key_field: &str) -> String {
    match r.get(key_field) {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn coupling(mapping: &str, record_id: &str, code: &str, label: &str) -> Coupling {
    Coupling {
        mapping: mapping.to_string(),
        left_id: record_id.to_string(),
        right_id: label.to_string(),
        left_ref: Some(code.to_string()),
        right_ref: Some(label.to_string()),
        left_stamp: None,
        right_stamp: None,
        skipped: false,
        pending: false,
    }
}
