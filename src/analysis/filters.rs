//! Filters (`where`): fields exist, values fit their fields, option labels exist.

use super::{types, Cx, Side};
use crate::diagnostic::{codes, suggest, Diagnostic};
use crate::schema::Field;
use crate::syntax::ast::{CmpOp, Expr, Ident, LitKind, Literal};
use crate::transform::Ty;

pub(crate) fn check_expr(cx: &mut Cx<'_>, side: &Side, expr: &Expr) {
    match expr {
        Expr::Or(parts, _) | Expr::And(parts, _) => {
            for p in parts {
                check_expr(cx, side, p);
            }
        }
        Expr::Not(inner, _) | Expr::Paren(inner, _) => check_expr(cx, side, inner),
        Expr::Compare(c) => {
            if let Some(field) = cx.resolve_field(side, &c.field) {
                check_value(cx, side, &c.field, &field, &c.value, Some(c.op));
            }
        }
        Expr::In(list) => {
            if let Some(field) = cx.resolve_field(side, &list.field) {
                for v in &list.values {
                    check_value(cx, side, &list.field, &field, v, None);
                }
            }
        }
        Expr::InSet(t) => super::value_sets::check_in_set(cx, side, t),
    }
}

/// Checks one value against a field: in a filter (with its operator) or in an assignment.
pub(crate) fn check_value(
    cx: &mut Cx<'_>,
    side: &Side,
    name: &Ident,
    field: &Field,
    value: &Literal,
    op: Option<CmpOp>,
) {
    let ty = field.ty();
    if let Some(op) = op {
        let ordered = matches!(op, CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge);
        if matches!(value.kind, LitKind::Null) && ordered {
            cx.report(
                Diagnostic::new(
                    codes::FILTER_TYPE,
                    value.span,
                    "`null` can only be compared with `==` or `!=`",
                )
                .label("ordered comparison with null")
                .help(format!(
                    "write `{} == null` or `{} != null`",
                    name.name, name.name
                )),
            );
            return;
        }
        if ordered && matches!(ty, Ty::Boolean | Ty::Option | Ty::Lookup | Ty::Guid) {
            cx.report(
                Diagnostic::new(
                    codes::FILTER_TYPE,
                    value.span,
                    format!(
                        "`{}` is a {} field: it has no order",
                        name.name,
                        ty.describe()
                    ),
                )
                .label("ordered comparison")
                .help("use `==`, `!=` or `in (...)`"),
            );
            return;
        }
    }
    if ty == Ty::Option {
        check_option_literal(cx, side, name, field, value);
        return;
    }
    if let Some(why) = types::literal_misfit(value, field) {
        cx.report(
            Diagnostic::new(
                codes::FILTER_TYPE,
                value.span,
                format!(
                    "value does not fit field `{}` ({})",
                    name.name,
                    field.ty().describe()
                ),
            )
            .label(why)
            .help(example_for(&ty)),
        );
        return;
    }
    if let (LitKind::Str(s), Some(max)) = (&value.kind, ty.max_len()) {
        if s.chars().count() as u32 > max {
            cx.report(
                Diagnostic::new(
                    codes::FILTER_TYPE,
                    value.span,
                    format!(
                        "value is longer than field `{}` can hold ({max} characters)",
                        name.name
                    ),
                )
                .label(format!("{} characters", s.chars().count()))
                .help("no record can have this value; check the literal"),
            );
        }
    }
}

/// An option field takes a label (or its numeric value); a label must exist in the option set.
pub(crate) fn check_option_literal(
    cx: &mut Cx<'_>,
    side: &Side,
    name: &Ident,
    field: &Field,
    value: &Literal,
) {
    let options = field.options.clone().unwrap_or_default();
    match &value.kind {
        LitKind::Str(label) => {
            if field.option_label(label).is_none() {
                let labels: Vec<String> = options.keys().cloned().collect();
                let help = suggest::help_for(label, &labels)
                    .map(|h| format!("{h} (labels match exactly or ignoring case)"))
                    .unwrap_or_else(|| {
                        format!(
                            "the labels of `{}` are {}",
                            name.name,
                            quoted_labels(&labels)
                        )
                    });
                cx.report(
                    Diagnostic::new(
                        codes::UNKNOWN_OPTION,
                        value.span,
                        format!(
                            "unknown option `{label}` for `{}.{}`",
                            side.table, name.name
                        ),
                    )
                    .label("not a label of this option set")
                    .help(help),
                );
            }
        }
        LitKind::Num(_, n) => {
            if !options
                .values()
                .any(|v| rust_decimal::Decimal::from(*v) == *n)
            {
                cx.report(
                    Diagnostic::new(
                        codes::UNKNOWN_OPTION,
                        value.span,
                        format!("`{n}` is not a value of option field `{}`", name.name),
                    )
                    .label("no option has this value")
                    .help(format!(
                        "prefer the label; the options are {}",
                        options
                            .iter()
                            .map(|(k, v)| format!("'{k}' ({v})"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                );
            }
        }
        LitKind::Null => {}
        LitKind::Bool(_) => cx.report(
            Diagnostic::new(
                codes::FILTER_TYPE,
                value.span,
                format!("`{}` is an option field, not a boolean", name.name),
            )
            .label("a boolean")
            .help(format!(
                "compare with a label, e.g. `{} == '{}'`",
                name.name,
                options.keys().next().map(String::as_str).unwrap_or("")
            )),
        ),
    }
}

fn quoted_labels(labels: &[String]) -> String {
    labels
        .iter()
        .map(|l| format!("'{l}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn example_for(ty: &Ty) -> String {
    match ty {
        Ty::Boolean => "compare with `true` or `false`".into(),
        Ty::Integer | Ty::Decimal => "compare with a number, e.g. `0`".into(),
        Ty::Date => "write dates as 'YYYY-MM-DD'".into(),
        Ty::DateTime => "write date-times as '2024-05-01T00:00:00Z'".into(),
        Ty::Guid | Ty::Lookup => {
            "write GUIDs as '00000000-0000-0000-0000-000000000000', or compare with `null`".into()
        }
        _ => "compare with a 'string'".into(),
    }
}
