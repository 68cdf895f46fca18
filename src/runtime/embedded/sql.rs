//! Pushed-down filters as parameterized SQL: values are bound, never spliced into the text.

use super::codec::quote_ident;
use crate::plan::filter::{Cmp, FValue, Pred};
use crate::schema::SystemKind;
use rusqlite::types::Value as SqlValue;

pub fn where_sql(pred: &Pred, kind: SystemKind, params: &mut Vec<SqlValue>) -> String {
    match pred {
        Pred::And { parts } => join(parts, " AND ", kind, params),
        Pred::Or { parts } => join(parts, " OR ", kind, params),
        Pred::Not { inner } => format!("NOT ({})", where_sql(inner, kind, params)),
        Pred::Compare { field, cmp, value } => {
            let col = quote_ident(&field.field);
            match (value, cmp) {
                (FValue::Null, Cmp::Eq) => format!("{col} IS NULL"),
                (FValue::Null, _) => format!("{col} IS NOT NULL"),
                // Blank text and null are the same to the systems ('' = no value).
                (FValue::Text(s), Cmp::Eq) if s.is_empty() => {
                    format!("({col} IS NULL OR {col} = '')")
                }
                (FValue::Text(s), Cmp::Ne) if s.is_empty() => {
                    format!("({col} IS NOT NULL AND {col} <> '')")
                }
                _ => {
                    params.push(value_of(value, kind));
                    let op = match cmp {
                        Cmp::Eq => "=",
                        Cmp::Ne => "IS NOT",
                        Cmp::Lt => "<",
                        Cmp::Le => "<=",
                        Cmp::Gt => ">",
                        Cmp::Ge => ">=",
                    };
                    format!("{col} {op} ?{}", params.len())
                }
            }
        }
        Pred::In {
            field,
            negated,
            values,
        } => {
            let col = quote_ident(&field.field);
            let mut slots = Vec::new();
            for v in values.iter().filter(|v| **v != FValue::Null) {
                params.push(value_of(v, kind));
                slots.push(format!("?{}", params.len()));
            }
            crate::plan::filter::in_sql(&col, &slots, values.contains(&FValue::Null), *negated)
        }
        // A value set on a target-side filter (couple matching): its codes, compared in upper case.
        Pred::InSet {
            field,
            negated,
            set,
        } => {
            let col = format!("UPPER({})", quote_ident(&field.field));
            let mut slots = Vec::new();
            let codes = crate::schema::value_set::find(set).into_iter();
            for v in codes.flat_map(|s| s.values()) {
                params.push(SqlValue::Text(v.to_string()));
                slots.push(format!("?{}", params.len()));
            }
            crate::plan::filter::in_sql(&col, &slots, false, *negated)
        }
    }
}

fn join(parts: &[Pred], glue: &str, kind: SystemKind, params: &mut Vec<SqlValue>) -> String {
    if parts.is_empty() {
        return "1".into();
    }
    parts
        .iter()
        .map(|p| format!("({})", where_sql(p, kind, params)))
        .collect::<Vec<_>>()
        .join(glue)
}

fn value_of(v: &FValue, kind: SystemKind) -> SqlValue {
    match v {
        FValue::Null => SqlValue::Null,
        FValue::Bool(b) => SqlValue::Integer(*b as i64),
        FValue::Number(n) => {
            if n.fract().is_zero() {
                i64::try_from(*n)
                    .map(SqlValue::Integer)
                    .unwrap_or(SqlValue::Real(n.to_string().parse().unwrap_or(0.0)))
            } else {
                SqlValue::Real(n.to_string().parse().unwrap_or(0.0))
            }
        }
        FValue::Option { label, value, .. } => match kind {
            SystemKind::Dataverse => SqlValue::Integer(*value),
            SystemKind::BusinessCentral => SqlValue::Text(label.clone()),
        },
        FValue::DateTime(s) => SqlValue::Text(
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| crate::runtime::values::stamp(d.with_timezone(&chrono::Utc)))
                .unwrap_or_else(|_| s.clone()),
        ),
        FValue::Text(s) | FValue::Date(s) | FValue::Guid(s) => SqlValue::Text(s.clone()),
    }
}
