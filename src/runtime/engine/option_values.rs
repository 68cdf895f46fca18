//! `create missing`: a code with no option becomes a new option value of the option set,
//! labelled with the code, and of each `also` set with the same value — Business Central's
//! Int. Option Synch. Invoke (codeunit 5364: InsertCRMOption → CDS Integration Mgt.
//! InsertOptionSetMetadata, the label being the option value text, i.e. the code).

use super::error::EngineError;
use super::report::ActionKind;
use super::Ctx;
use crate::analysis::Side;
use crate::plan::OptionsPlan;
use crate::runtime::connector::ConnectorError;
use crate::runtime::state::{tx, Counts, Failed};

/// A code to give an option value: (code record id, code).
pub(super) type Missing = (String, String);

/// Makes the values the endpoints have beyond the catalog (created in earlier runs) known to
/// this run, for the option set and its `also` sets.
pub(super) async fn load(ctx: &Ctx<'_>, o: &OptionsPlan) -> Result<(), EngineError> {
    let sets = std::iter::once((o.right.clone(), o.option_field.clone()))
        .chain(o.also_fields.iter().cloned());
    for (side, field) in sets {
        let values = ctx
            .system(&side.system)?
            .added_options(&side.table, &field)
            .await?;
        ctx.add_options(&side, &field, &values);
    }
    Ok(())
}

/// Reports an action of the option mapping: kind, code record id, target, reason.
pub(super) type Report<'r> = &'r dyn Fn(ActionKind, &str, Option<String>, Option<String>);

/// What became of one code.
pub(super) enum Outcome {
    /// The option value now exists: its label.
    Created(String),
    /// The option set refused it: recorded as a failure.
    Failed,
}

/// Creates the option value of one code, then copies it to the `also` sets.
pub(super) async fn create(
    ctx: &Ctx<'_>,
    mapping: &str,
    direction: crate::analysis::Arrow,
    o: &OptionsPlan,
    missing: &Missing,
    counts: &mut Counts,
    report: Report<'_>,
) -> Result<Outcome, EngineError> {
    let (id, code) = missing;
    let system = ctx.system(&o.right.system)?;
    let value = match system
        .insert_option_value(&o.right.table, &o.option_field, code, None)
        .await
    {
        Ok(v) => v,
        Err(e) => {
            fail(
                ctx,
                mapping,
                direction,
                code,
                &o.right,
                &o.option_field,
                &e,
                counts,
            )?;
            report(ActionKind::Fail, id, None, Some(e.message.clone()));
            return Ok(Outcome::Failed);
        }
    };
    ctx.add_options(&o.right, &o.option_field, &[(code.clone(), value)]);
    counts.inserted += 1;
    report(
        ActionKind::Create,
        id,
        Some(code.clone()),
        Some(format!(
            "option value {value} '{code}' added to `{}`",
            o.option_field
        )),
    );
    for (side, field) in &o.also_fields {
        let has = ctx
            .table(side)?
            .fields
            .get(field)
            .is_some_and(|f| f.option_label(code).is_some());
        if has {
            continue;
        }
        let other = ctx.system(&side.system)?;
        match other
            .insert_option_value(&side.table, field, code, Some(value))
            .await
        {
            Ok(v) => ctx.add_options(side, field, &[(code.clone(), v)]),
            Err(e) => {
                fail(ctx, mapping, direction, code, side, field, &e, counts)?;
                report(ActionKind::Fail, id, None, Some(e.message.clone()));
            }
        }
    }
    Ok(Outcome::Created(code.clone()))
}

/// A refused option value: counted and recorded with the endpoint's reason.
#[allow(clippy::too_many_arguments)]
fn fail(
    ctx: &Ctx<'_>,
    mapping: &str,
    direction: crate::analysis::Arrow,
    code: &str,
    side: &Side,
    field: &str,
    e: &ConnectorError,
    counts: &mut Counts,
) -> Result<(), EngineError> {
    counts.failed += 1;
    let message = format!(
        "cannot add option '{code}' to `{}.{field}`: {}",
        side.table, e.message
    );
    let failed = Failed {
        source: code,
        target: None,
        kind: e.kind.into(),
        message: &message,
    };
    ctx.state
        .transaction(|conn| tx::record_failure(conn, mapping, direction, ctx.run_id, &failed))?;
    Ok(())
}
