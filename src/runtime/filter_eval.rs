//! Evaluating a filter on a record in memory: for retried records, and for the parts of a filter
//! an endpoint cannot evaluate itself.

use crate::plan::filter::{Cmp, FValue, Pred};
use crate::runtime::connector::Record;
use serde_json::Value;
use std::cmp::Ordering;

pub fn matches(pred: &Pred, record: &Record) -> bool {
    match pred {
        Pred::And { parts } => parts.iter().all(|p| matches(p, record)),
        Pred::Or { parts } => parts.iter().any(|p| matches(p, record)),
        Pred::Not { inner } => !matches(inner, record),
        Pred::Compare { field, cmp, value } => compare(record.get(&field.field), *cmp, value),
        Pred::In {
            field,
            negated,
            values,
        } => {
            let v = record.get(&field.field);
            values.iter().any(|x| compare(v, Cmp::Eq, x)) != *negated
        }
        Pred::InSet {
            field,
            negated,
            set,
        } => in_set(record.get(&field.field), set) != *negated,
    }
}

/// Whether a value is a code of the named set (an unknown set holds nothing; the checker
/// reports it).
pub fn in_set(v: &Value, set: &str) -> bool {
    let set = crate::schema::value_set::find(set);
    v.as_str().zip(set).is_some_and(|(s, set)| set.contains(s))
}

/// The first value-set test `record` fails, as the reason it is skipped: "`Code` 'BTC' is not
/// one of the ISO 4217 currency codes (`Code is iso4217`)".
pub fn failed_value_set(guards: &[Pred], record: &Record) -> Option<String> {
    guards
        .iter()
        .find(|g| !matches(g, record))
        .map(|g| match g {
            Pred::InSet {
                field,
                negated,
                set,
            } => {
                let v = record.get(&field.field);
                let shown = v
                    .as_str()
                    .map_or_else(|| v.to_string(), |s| format!("'{s}'"));
                let title = crate::schema::value_set::find(set).map_or(set.as_str(), |s| s.title);
                let (is, not) = if *negated {
                    ("is", "not ")
                } else {
                    ("is not", "")
                };
                format!(
                    "`{}` {shown} {is} one of the {title} (`{} is {not}{set}`)",
                    field.field, field.field
                )
            }
            other => crate::plan::describe::describe_pred(other),
        })
}

fn is_blank(v: &Value) -> bool {
    v.is_null() || v.as_str() == Some("")
}

fn compare(actual: &Value, cmp: Cmp, expected: &FValue) -> bool {
    let ord: Option<Ordering> = match expected {
        FValue::Null => return matches!(cmp, Cmp::Eq) == actual.is_null(),
        FValue::Text(s) if s.is_empty() && matches!(cmp, Cmp::Eq | Cmp::Ne) => {
            return is_blank(actual) == matches!(cmp, Cmp::Eq)
        }
        FValue::Bool(b) => actual.as_bool().map(|a| a.cmp(b)),
        FValue::Number(n) => match actual {
            Value::Number(a) => crate::transform::decimal_of(a).map(|a| a.cmp(n)),
            _ => None,
        },
        FValue::Option { label, .. } => actual
            .as_str()
            .map(|a| a.to_lowercase().cmp(&label.to_lowercase())),
        FValue::Text(s) | FValue::Date(s) | FValue::DateTime(s) | FValue::Guid(s) => {
            actual.as_str().map(|a| a.cmp(s.as_str()))
        }
    };
    match (ord, cmp) {
        (Some(o), Cmp::Eq) => o == Ordering::Equal,
        (Some(o), Cmp::Ne) => o != Ordering::Equal,
        (None, Cmp::Ne) => true,
        (Some(o), Cmp::Lt) => o == Ordering::Less,
        (Some(o), Cmp::Le) => o != Ordering::Greater,
        (Some(o), Cmp::Gt) => o == Ordering::Greater,
        (Some(o), Cmp::Ge) => o != Ordering::Less,
        (None, _) => false,
    }
}
