//! `through T(FROM -> TO where EXPR)` on a `via` line: the line's value is a FROM of table T (of
//! the same system as the line's field), and the rows the filter keeps exchange it for their TO,
//! which the `via` mapping looks up; the other way, the TO the lookup gives is exchanged back for
//! its FROM. Business Central's contact company: a contact's "Company No." is a company contact,
//! whose Contact Business Relation to a customer names the customer that is coupled to the
//! Sales account (CRM Synch. Helper SetContactParentCompany / FindContactByAccountId,
//! microsoft/BCApps src/Layers/W1/BaseApp/Integration/D365Sales/CRMSynchHelper.Codeunit.al).

use super::model::Side;
use super::{filters, Cx};
use crate::diagnostic::{codes, Diagnostic};
use crate::schema::Field;
use crate::syntax::ast;

/// Checks the clause; returns the system whose operand it exchanges (so that the `via` check
/// looks at TO instead of that operand), or None when it could not be resolved.
pub(crate) fn check_through(
    cx: &mut Cx<'_>,
    line: &ast::FieldLine,
    t: &ast::Through,
    operands: [Option<(&Side, &ast::Ident, &Field)>; 2],
) -> Option<String> {
    if line.via.is_none() {
        cx.report(
            Diagnostic::new(
                codes::THROUGH_WITHOUT_VIA,
                t.span,
                "`through` exchanges a value for the one a `via` looks up, but this line has no `via`",
            )
            .label("nothing to look up")
            .help("add `via MAPPING` before `through`, naming the mapping that couples the exchanged value"),
        );
        return None;
    }
    let side = cx.resolve_side(&t.table.system, &t.table.table)?;
    let from = cx.resolve_field(&side, &t.from);
    let to = cx.resolve_field(&side, &t.to);
    if let Some(e) = &t.filter {
        filters::check_expr(cx, &side, e);
    }
    let Some((_, name, field)) = operands
        .into_iter()
        .flatten()
        .find(|(s, _, _)| s.system == side.system)
    else {
        cx.report(
            Diagnostic::new(
                codes::THROUGH_OTHER_SYSTEM,
                t.table.span,
                format!(
                    "`{side}` is in neither system of the line: `through` exchanges a value within the system it is read from"
                ),
            )
            .label(format!("a table of `{}`", side.system))
            .help("name a table of the system whose field holds the value to exchange"),
        );
        return None;
    };
    if let Some(from) = from {
        if std::mem::discriminant(&from.ty()) != std::mem::discriminant(&field.ty()) {
            cx.report(
                Diagnostic::new(
                    codes::THROUGH_TYPE,
                    t.from.span,
                    format!(
                        "`{}` holds {}, but `{}` holds {}: they cannot be the same value",
                        t.from.name,
                        from.ty().describe(),
                        name.name,
                        field.ty().describe()
                    ),
                )
                .label(format!("compared with `{}`", name.name))
                .help("name the column of the table that holds the line's value"),
            );
        }
    }
    to.map(|_| side.system)
}
