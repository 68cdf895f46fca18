//! Predicates in the language's own syntax, for the filters coupler evaluates locally.

use super::filter::{self, Pred};
use crate::syntax::ast;
use crate::syntax::printer;

/// A predicate in the language's own syntax, for filters coupler evaluates locally.
pub(crate) fn describe_pred(p: &Pred) -> String {
    use filter::{Cmp, FValue};
    let val = |v: &FValue| match v {
        FValue::Null => "null".to_string(),
        FValue::Bool(b) => b.to_string(),
        FValue::Number(n) => n.normalize().to_string(),
        FValue::Option { label, .. } => ast::quote_str(label),
        FValue::Text(s) | FValue::Date(s) | FValue::DateTime(s) | FValue::Guid(s) => {
            ast::quote_str(s)
        }
    };
    let name = |f: &filter::Target| {
        printer::ident(&ast::Ident {
            name: f.field.clone(),
            quoted: false,
            span: Default::default(),
        })
    };
    match p {
        Pred::And { parts } => parts
            .iter()
            .map(describe_pred)
            .collect::<Vec<_>>()
            .join(" and "),
        Pred::Or { parts } => format!(
            "({})",
            parts
                .iter()
                .map(describe_pred)
                .collect::<Vec<_>>()
                .join(" or ")
        ),
        Pred::Not { inner } => format!("not ({})", describe_pred(inner)),
        Pred::Compare { field, cmp, value } => {
            let op = match cmp {
                Cmp::Eq => "==",
                Cmp::Ne => "!=",
                Cmp::Lt => "<",
                Cmp::Le => "<=",
                Cmp::Gt => ">",
                Cmp::Ge => ">=",
            };
            format!("{} {op} {}", name(field), val(value))
        }
        Pred::In {
            field,
            negated,
            values,
        } => format!(
            "{} {}in ({})",
            name(field),
            if *negated { "not " } else { "" },
            values.iter().map(val).collect::<Vec<_>>().join(", ")
        ),
        Pred::InSet {
            field,
            negated,
            set,
        } => format!(
            "{} is {}{set}",
            name(field),
            if *negated { "not " } else { "" }
        ),
    }
}
