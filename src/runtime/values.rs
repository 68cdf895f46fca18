//! Canonical field values: what the engine compares and writes, whatever the endpoint.
//! Option fields travel by label; endpoints encode them (Dataverse by value, Business Central by name).

use crate::schema::{Field, FieldType};
use crate::transform::{decimal_of, json_decimal};
use serde_json::Value;
use std::str::FromStr;

/// The current time as the systems stamp it: UTC, milliseconds, sortable as text.
pub fn now_stamp() -> String {
    stamp(chrono::Utc::now())
}

/// A point in time as the engine compares stamps: `2026-12-03T10:00:00.000Z`.
pub fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A new record key.
pub fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Why a value does not fit a field: what a real system answers to such a write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("field `{field}` expects {expected}, got {got}")]
    Type {
        field: String,
        expected: &'static str,
        /// The value as JSON, cut to 40 characters.
        got: String,
    },
    #[error("value of `{field}` has {chars} characters, more than the {max} the field holds")]
    TooLong {
        field: String,
        chars: usize,
        max: u32,
    },
    #[error("`{label}` is not an option of `{field}` ({labels})")]
    UnknownLabel {
        label: String,
        field: String,
        /// The field's labels, quoted and comma-separated.
        labels: String,
    },
    #[error("{value} is not a value of option field `{field}`")]
    UnknownOptionValue { value: String, field: String },
}

/// Checks and normalizes a value for a field, as a real system would on write.
pub fn normalize(name: &str, field: &Field, value: &Value) -> Result<Value, ValueError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let type_error = |expected: &'static str| ValueError::Type {
        field: name.to_string(),
        expected,
        got: short(value),
    };
    match field.ty {
        FieldType::Text
        | FieldType::Code
        | FieldType::Entityname
        | FieldType::Blob
        | FieldType::Duration
        | FieldType::Dateformula => text(name, field, value).ok_or_else(|| type_error("text"))?,
        FieldType::Integer | FieldType::Bigint => {
            whole(value).ok_or_else(|| type_error("a whole number"))
        }
        FieldType::Decimal => decimal(value).ok_or_else(|| type_error("a number")),
        FieldType::Boolean => boolean(value).ok_or_else(|| type_error("true or false")),
        FieldType::Option => {
            option(name, field, value).ok_or_else(|| type_error("an option label"))?
        }
        FieldType::Guid | FieldType::Lookup => guid(value).ok_or_else(|| type_error("a GUID")),
        FieldType::Date => match value {
            Value::String(s) => date(s).ok_or_else(|| type_error("a date (YYYY-MM-DD)")),
            _ => Err(type_error("a date")),
        },
        FieldType::Datetime => datetime(value).ok_or_else(|| type_error("a date-time")),
        FieldType::Time => match value {
            Value::String(_) => Ok(value.clone()),
            _ => Err(type_error("a time")),
        },
    }
}

/// Text of at most the field's length (upper-cased for code fields); `None`: not textual.
fn text(name: &str, field: &Field, value: &Value) -> Option<Result<Value, ValueError>> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    let text = if field.ty == FieldType::Code {
        text.to_uppercase()
    } else {
        text
    };
    if let Some(max) = field.length {
        let n = text.chars().count();
        if n > max as usize {
            return Some(Err(ValueError::TooLong {
                field: name.to_string(),
                chars: n,
                max,
            }));
        }
    }
    Some(Ok(Value::String(text)))
}

fn whole(value: &Value) -> Option<Value> {
    match value {
        Value::Number(n) if n.is_i64() => Some(value.clone()),
        Value::Number(n) => {
            let d = decimal_of(n)?;
            if d.fract().is_zero() {
                rust_decimal::prelude::ToPrimitive::to_i64(&d).map(Value::from)
            } else {
                None
            }
        }
        Value::String(s) => s.trim().parse::<i64>().ok().map(Value::from),
        _ => None,
    }
}

fn decimal(value: &Value) -> Option<Value> {
    match value {
        Value::Number(_) => Some(value.clone()),
        Value::String(s) => {
            let s = s.trim();
            rust_decimal::Decimal::from_str(s)
                .or_else(|_| rust_decimal::Decimal::from_scientific(s))
                .ok()
                .map(json_decimal)
        }
        _ => None,
    }
}

fn boolean(value: &Value) -> Option<Value> {
    match value {
        Value::Bool(_) => Some(value.clone()),
        Value::Number(n) => Some(Value::Bool(decimal_of(n).is_none_or(|d| !d.is_zero()))),
        Value::String(s) if s.eq_ignore_ascii_case("true") || s == "1" => Some(Value::Bool(true)),
        Value::String(s) if s.eq_ignore_ascii_case("false") || s == "0" => Some(Value::Bool(false)),
        _ => None,
    }
}

/// The option's label, from a label (any case) or a value; `None`: neither text nor number.
fn option(name: &str, field: &Field, value: &Value) -> Option<Result<Value, ValueError>> {
    match value {
        Value::String(s) => Some(
            field
                .option_label(s)
                .map(|l| Value::String(l.to_string()))
                .ok_or_else(|| ValueError::UnknownLabel {
                    label: s.clone(),
                    field: name.to_string(),
                    labels: labels(field),
                }),
        ),
        Value::Number(n) => Some(
            field
                .options
                .iter()
                .flatten()
                .find(|(_, v)| Some(**v) == n.as_i64())
                .map(|(l, _)| Value::String(l.clone()))
                .ok_or_else(|| ValueError::UnknownOptionValue {
                    value: n.to_string(),
                    field: name.to_string(),
                }),
        ),
        _ => None,
    }
}

/// A GUID in lower case, without braces.
fn guid(value: &Value) -> Option<Value> {
    let Value::String(s) = value else {
        return None;
    };
    let g = s.trim_matches(|c| c == '{' || c == '}').to_lowercase();
    crate::analysis::is_guid(&g).then_some(Value::String(g))
}

/// `YYYY-MM-DD`, from a date or the date part of a date-time.
fn date(s: &str) -> Option<Value> {
    let d = s.get(..10).unwrap_or(s);
    chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
        .ok()
        .map(|d| Value::String(d.format("%Y-%m-%d").to_string()))
}

/// A UTC date-time with milliseconds; a bare date is its midnight.
fn datetime(value: &Value) -> Option<Value> {
    let Value::String(s) = value else {
        return None;
    };
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| Value::String(stamp(d.with_timezone(&chrono::Utc))))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(|d| Value::String(format!("{}T00:00:00.000Z", d.format("%Y-%m-%d"))))
        })
        .ok()
}

fn labels(field: &Field) -> String {
    field
        .options
        .as_ref()
        .map(|o| {
            o.keys()
                .map(|k| format!("'{k}'"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

/// Option label -> the value Dataverse stores.
pub fn option_value(field: &Field, label: &str) -> Option<i64> {
    let label = field.option_label(label)?;
    field.options.as_ref()?.get(label).copied()
}

/// Whether two canonical values are the same for synchronization purposes.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => same_number(x, y),
        (Value::String(x), Value::Null) | (Value::Null, Value::String(x)) => x.is_empty(),
        _ => a == b,
    }
}

/// Two amounts are the same when they are equal as decimals (12.5 and 12.50; 0.0000000001 and
/// 0.0000000002 are not, which a tolerance would call equal), or when one has more significant
/// digits than a double holds and both are the same double: what a store keeping doubles
/// (SQLite REAL, a Dataverse Float column) gives back of a value is not a change, or every run
/// would write it again.
fn same_number(x: &serde_json::Number, y: &serde_json::Number) -> bool {
    match (decimal_of(x), decimal_of(y)) {
        (Some(a), Some(b)) if a == b => true,
        (a, b) => {
            let long = |d: Option<rust_decimal::Decimal>| {
                d.is_none_or(|d| d.normalize().mantissa().unsigned_abs() >= 1_000_000_000_000_000)
            };
            (long(a) || long(b)) && x.as_f64().is_some() && x.as_f64() == y.as_f64()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    /// Amounts compare as decimals: a change in the tenth decimal is a change (a 1e-9
    /// tolerance called it none), 12.5 is 12.50; and what a store of doubles gives back of a
    /// value with more digits than a double holds is the same value, not a change every run.
    #[test]
    fn amounts_compare_digit_for_digit() {
        assert!(!same(&num("0.0000000001"), &num("0.0000000002")));
        assert!(!same(&num("100.0000000001"), &num("100.0000000002")));
        assert!(same(&num("12.5"), &num("12.50")));
        assert!(same(&num("3"), &num("3.0")));
        assert!(!same(&num("12.34"), &num("12.35")));
        let written = num("12345678901234567.89");
        let kept = num(&written.as_f64().unwrap().to_string());
        assert!(same(&written, &kept), "{written} read back as {kept}");
        assert_eq!(
            written.to_string(),
            "12345678901234567.89",
            "kept as written"
        );
    }
}
