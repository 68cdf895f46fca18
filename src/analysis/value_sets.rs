//! Value-set tests in filters (`where bc: Code is iso4217`): the set exists, the field holds
//! text, and the test stands where coupler can report what it leaves out.

use super::{Cx, Side};
use crate::diagnostic::{codes, suggest, Diagnostic};
use crate::schema::value_set;
use crate::syntax::ast::{Expr, InSet};
use crate::syntax::printer;
use crate::transform::Ty;

/// Checks one `is SET` test: the set's name and the field's type.
pub(crate) fn check_in_set(cx: &mut Cx<'_>, side: &Side, t: &InSet) {
    if value_set::find(&t.set.name).is_none() {
        let names = value_set::ALL.iter().map(|s| s.name);
        cx.report(
            Diagnostic::new(
                codes::UNKNOWN_VALUE_SET,
                t.set.span,
                format!("`{}` names no value set", t.set.name),
            )
            .label("not a value set")
            .help(
                suggest::help_for(&t.set.name, names)
                    .unwrap_or_else(|| "the value sets are `iso4217`".into()),
            ),
        );
    }
    let Some(field) = cx.resolve_field(side, &t.field) else {
        return;
    };
    let ty = field.ty();
    if !matches!(ty, Ty::Text { .. } | Ty::Code { .. }) {
        cx.report(
            Diagnostic::new(
                codes::VALUE_SET_TYPE,
                t.field.span,
                format!(
                    "`{}` is a {} field: a value set holds codes (text)",
                    t.field.name,
                    ty.describe()
                ),
            )
            .label("not a text field")
            .help("test a text or code field against the set"),
        );
    }
}

/// A `where`: value-set tests only as parts of its top-level `and`, where a record they leave
/// out is skipped and reported with the reason (under `or` or `not` it could not be told why).
pub(crate) fn check_where_placement(cx: &mut Cx<'_>, expr: &Expr) {
    let parts: Vec<&Expr> = match expr {
        Expr::And(parts, _) => parts.iter().collect(),
        other => vec![other],
    };
    for p in parts {
        match p {
            Expr::InSet(_) => {}
            Expr::Paren(inner, _) => check_where_placement(cx, inner),
            other => nested(cx, other, Place::Nested),
        }
    }
}

/// A `fields when` condition chooses lines; it leaves no record out, so it takes no value set.
pub(crate) fn check_condition_placement(cx: &mut Cx<'_>, expr: &Expr) {
    nested(cx, expr, Place::Condition);
}

#[derive(Clone, Copy)]
enum Place {
    Nested,
    Condition,
}

fn nested(cx: &mut Cx<'_>, expr: &Expr, place: Place) {
    match expr {
        Expr::Or(parts, _) | Expr::And(parts, _) => parts.iter().for_each(|p| nested(cx, p, place)),
        Expr::Not(inner, _) | Expr::Paren(inner, _) => nested(cx, inner, place),
        Expr::InSet(t) => {
            let test = format!("{} is {}", printer::ident(&t.field), t.set.name);
            let (message, label) = match place {
                Place::Nested => (
                    "a value-set test inside `or` or `not`",
                    "not a part of the `where`'s top-level `and`",
                ),
                Place::Condition => (
                    "a value-set test in a `fields when` condition",
                    "a condition chooses lines, it leaves no record out",
                ),
            };
            cx.report(
                Diagnostic::new(codes::VALUE_SET_PLACE, t.span, message)
                    .label(label)
                    .help(format!(
                        "write it as a part of a `where`: `where SYSTEM: {test} and ...`; a record it leaves out is skipped and reported with the reason"
                    )),
            )
        }
        Expr::Compare(_) | Expr::In(_) => {}
    }
}
