//! Option mappings: the records of a Business Central table coupled with the values of a
//! Dataverse option set, by label (ignoring case) or by the explicit pairs. A code with no
//! matching option is skipped and the option field stays blank, or, with `create missing`, becomes
//! a new option value (option_values.rs), as Business Central does.

use super::error::EngineError;
use super::option_values;
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
    if o.create_missing {
        option_values::load(ctx, o).await?;
    }
    let option_field = ctx
        .table(&o.right)?
        .fields
        .get(&o.option_field)
        .cloned()
        .ok_or_else(|| EngineError::UnknownOptionField(o.option_field.clone()))?;
    let run = OptionRun {
        ctx,
        m,
        o,
        option_field,
    };
    let records = run.read_codes().await?;
    let existing = ctx.state.couplings(&m.name)?;
    let mut missing = Vec::new();
    let (mut wanted, creates) = match m.direction {
        Arrow::Backward => run.wanted_backward(&records)?,
        _ => (
            run.wanted_forward(&records, counts, &mut missing),
            Vec::new(),
        ),
    };
    for w in &wanted {
        let same = existing.iter().any(|e| {
            e.left_id == w.left_id && e.right_id == w.right_id && e.left_ref == w.left_ref
        });
        if same {
            counts.unchanged += 1;
        } else {
            counts.coupled += 1;
            ctx.observer.action(
                &run.action(
                    ActionKind::Couple,
                    &w.left_id,
                    Some(w.right_id.clone()),
                    w.left_ref
                        .clone()
                        .map(|c| format!("`{c}` = '{}'", w.right_id)),
                ),
            );
        }
    }
    for (id, label, _) in &creates {
        ctx.observer
            .action(&run.action(ActionKind::Create, id, Some(label.clone()), None));
    }
    if ctx.opts.dry_run {
        counts.inserted += (creates.len() + missing.len()) as u64;
        for (id, code) in &missing {
            ctx.observer
                .action(&run.action(ActionKind::Create, id, Some(code.clone()), None));
        }
        return Ok(());
    }
    run.create(creates, &mut wanted, counts).await?;
    run.create_options(&missing, &mut wanted, counts).await?;
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

/// A code record to create: (id, option label, fields).
type CodeCreate = (String, String, Map<String, Value>);

/// One run of an option mapping.
struct OptionRun<'a, 'c> {
    ctx: &'a Ctx<'c>,
    m: &'a MappingPlan,
    o: &'a OptionsPlan,
    option_field: crate::schema::Field,
}

impl OptionRun<'_, '_> {
    fn action(
        &self,
        kind: ActionKind,
        source: &str,
        target: Option<String>,
        reason: Option<String>,
    ) -> Action {
        Action {
            mapping: self.m.name.clone(),
            direction: Leg::Pass(self.m.direction),
            kind,
            source_id: source.to_string(),
            target_id: target,
            changes: Vec::new(),
            reason,
        }
    }

    /// The label of a code: the explicit pair, else the option of that label.
    fn label_for(&self, code: &str) -> Option<String> {
        self.o
            .pairs
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(code))
            .map(|(_, l)| l.clone())
            .or_else(|| self.option_field.option_label(code).map(str::to_string))
    }

    /// The code of a label: the explicit pair, else the label itself.
    fn code_for(&self, label: &str) -> String {
        self.o
            .pairs
            .iter()
            .find(|(_, l)| l.eq_ignore_ascii_case(label))
            .map(|(c, _)| c.clone())
            .unwrap_or_else(|| label.to_string())
    }

    /// The code table, whole: it is small, and read each run.
    async fn read_codes(&self) -> Result<Vec<Record>, EngineError> {
        let left = &self.o.left;
        let system = self.ctx.system(&left.system)?;
        let mut records: Vec<Record> = Vec::new();
        let mut after: Option<Cursor> = None;
        loop {
            let q = ChangeQuery {
                table: &left.table,
                filter: None,
                since: None,
                exclude_modified_by: None,
                page_size: self.ctx.opts.page_size,
                fields: None,
            };
            let page = system.read_changes(&q, after.as_ref()).await?;
            records.extend(page.records);
            match page.next {
                Some(c) => after = Some(c),
                None => return Ok(records),
            }
        }
    }

    /// `<-`: each option becomes (or couples to) a record of the code table.
    fn wanted_backward(
        &self,
        records: &[Record],
    ) -> Result<(Vec<Coupling>, Vec<CodeCreate>), EngineError> {
        let key_field = &self.o.key_field;
        let table = self.ctx.table(&self.o.left)?;
        let labels = self.option_field.options.iter().flat_map(|o| o.keys());
        let (mut wanted, mut creates) = (Vec::new(), Vec::new());
        for label in labels {
            let code = self.code_for(label);
            let found = records.iter().find(|r| {
                r.get(key_field)
                    .as_str()
                    .is_some_and(|c| c.eq_ignore_ascii_case(&code))
            });
            match found {
                Some(r) => {
                    wanted.push(coupling(&self.m.name, &r.id, &code_of(r, key_field), label))
                }
                None => {
                    let len = table
                        .fields
                        .get(key_field)
                        .and_then(|f| f.length)
                        .unwrap_or(10) as usize;
                    let code: String = code.to_uppercase().chars().take(len).collect();
                    let mut fields = Map::new();
                    fields.insert(key_field.clone(), Value::String(code));
                    creates.push((new_guid(), label.clone(), fields));
                }
            }
        }
        Ok((wanted, creates))
    }

    /// `->`: each code couples to the option of its label; a code with none is skipped, or,
    /// with `create missing`, joins `missing` (a blank code never: it names no option).
    fn wanted_forward(
        &self,
        records: &[Record],
        counts: &mut Counts,
        missing: &mut Vec<option_values::Missing>,
    ) -> Vec<Coupling> {
        let key_field = &self.o.key_field;
        let mut wanted = Vec::new();
        for r in records {
            let code = code_of(r, key_field);
            match self.label_for(&code) {
                Some(label) => wanted.push(coupling(&self.m.name, &r.id, &code, &label)),
                None if self.o.create_missing
                    && !code.trim().is_empty()
                    && !missing.iter().any(|(_, c)| c.eq_ignore_ascii_case(&code)) =>
                {
                    missing.push((r.id.clone(), code));
                }
                None => {
                    self.ctx.observer.action(&self.action(
                        ActionKind::Skip,
                        &r.id,
                        None,
                        Some(format!(
                            "no option of `{}` matches `{code}`: the field stays blank",
                            self.o.option_field
                        )),
                    ));
                    counts.skipped += 1;
                }
            }
        }
        wanted
    }

    /// Creates the option values of codes with none, coupling each created one.
    async fn create_options(
        &self,
        missing: &[option_values::Missing],
        wanted: &mut Vec<Coupling>,
        counts: &mut Counts,
    ) -> Result<(), EngineError> {
        let report = |kind, id: &str, target, reason| {
            self.ctx
                .observer
                .action(&self.action(kind, id, target, reason))
        };
        for miss in missing {
            let outcome = option_values::create(
                self.ctx,
                &self.m.name,
                self.m.direction,
                self.o,
                miss,
                counts,
                &report,
            )
            .await?;
            if let option_values::Outcome::Created(label) = outcome {
                wanted.push(coupling(&self.m.name, &miss.0, &miss.1, &label));
            }
        }
        Ok(())
    }

    /// Creates the code records options need; each created one joins `wanted`, each failed one
    /// (a missing result included) is a recorded failure.
    async fn create(
        &self,
        creates: Vec<CodeCreate>,
        wanted: &mut Vec<Coupling>,
        counts: &mut Counts,
    ) -> Result<(), EngineError> {
        if creates.is_empty() {
            return Ok(());
        }
        let (ctx, m) = (self.ctx, self.m);
        let system = ctx.system(&self.o.left.system)?;
        let ops = creates
            .iter()
            .map(|(id, _, f)| WriteOp::Create {
                id: id.clone(),
                fields: f.clone(),
            })
            .collect();
        let mut results = system.write(&self.o.left.table, ops).await?.into_iter();
        for (_, label, _) in &creates {
            let failure = match results.next() {
                Some(Ok(rec)) => {
                    counts.inserted += 1;
                    let code = code_of(&rec, &self.o.key_field);
                    wanted.push(coupling(&m.name, &rec.id, &code, label));
                    continue;
                }
                Some(Err(e)) => (e.kind.into(), e.message),
                None => (
                    EngineError::NoResult.failure_kind(),
                    EngineError::NoResult.to_string(),
                ),
            };
            counts.failed += 1;
            let failed = Failed {
                source: label,
                target: None,
                kind: failure.0,
                message: &failure.1,
            };
            ctx.state.transaction(|conn| {
                tx::record_failure(conn, &m.name, m.direction, ctx.run_id, &failed)
            })?;
        }
        Ok(())
    }
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
