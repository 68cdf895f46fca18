//! `blank is SYSTEM.TABLE.FIELD`: a blank key on the mapping's other side stands for the record
//! a field of a one-row table names. Business Central's local currency (a blank Currency Code)
//! is the Dataverse organization's base currency (CRM Synch. Helper
//! FindNewValueForSpecialMapping, microsoft/BCApps
//! src/Layers/W1/BaseApp/Integration/D365Sales/CRMSynchHelper.Codeunit.al @ c3414ede).

use super::scope::MappingCx;
use super::{Cx, SideOf};
use crate::analysis::model::Side;
use crate::diagnostic::{codes, Diagnostic};
use crate::schema::FieldType;
use crate::syntax::ast;

pub(crate) fn check_blank(cx: &mut Cx<'_>, mcx: &MappingCx<'_>, b: &ast::BlankClause) {
    let t = &b.target;
    let Some(side_of) = mcx.side_of(cx, &t.system) else {
        return;
    };
    let (mapped, other) = match side_of {
        SideOf::Left(s) => (s.clone(), mcx.right.clone()),
        SideOf::Right(s) => (s.clone(), mcx.left.clone()),
    };
    let Some(holder) = cx.resolve_side(&t.system, &t.table) else {
        return;
    };
    let Some(field) = cx.resolve_field(&holder, &t.field) else {
        return;
    };
    if field.ty != FieldType::Lookup || !field.lookup.contains(&mapped.table) {
        cx.report(
            Diagnostic::new(
                codes::BLANK_NOT_A_LOOKUP,
                t.field.span,
                format!(
                    "`{}` does not refer to `{}`, the table mapping `{}` couples",
                    t.field.name,
                    mapped,
                    mcx.name()
                ),
            )
            .label(format!("not a lookup to `{}`", mapped.table))
            .help(format!(
                "name a lookup field to `{}` of a one-row table, e.g. `blank is sales.organization.basecurrencyid`",
                mapped.table
            )),
        );
    }
    if let Some(other) = other {
        check_text_key(cx, mcx, b, &other);
    }
}

/// The blank side's key must be text: only a code can be blank.
fn check_text_key(cx: &mut Cx<'_>, mcx: &MappingCx<'_>, b: &ast::BlankClause, other: &Side) {
    let Some(table) = cx.table(other) else {
        return;
    };
    let Some(key) = table.key.last().cloned() else {
        return;
    };
    let text = table
        .fields
        .get(&key)
        .is_some_and(|f| matches!(f.ty, FieldType::Code | FieldType::Text));
    if !text {
        cx.report(
            Diagnostic::new(
                codes::BLANK_KEY_NOT_TEXT,
                b.span,
                format!(
                    "`{}`'s key `{key}` cannot be blank: it is no code",
                    other
                ),
            )
            .label("a blank key is a blank code")
            .with_label(mcx.decl.name.span, format!("mapping `{}`", mcx.name()))
            .help("`blank is` is for a table keyed by a code that may be left blank, such as Business Central's Currency"),
        );
    }
}
