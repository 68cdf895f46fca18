//! Types (as the checker sees them) and runtime values of field pipelines.

use std::borrow::Cow;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

/// The type of a value flowing through a field pipeline, as the checker sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    /// Text, with its maximum length when known.
    Text { len: Option<u32> },
    /// Business Central Code (upper-case text), with its maximum length when known.
    Code { len: Option<u32> },
    /// A whole number.
    Integer,
    /// A decimal number.
    Decimal,
    /// True or false.
    Boolean,
    /// A calendar date.
    Date,
    /// A point in time (UTC).
    DateTime,
    /// A time of day.
    Time,
    /// A GUID.
    Guid,
    /// An option value, carried by its label.
    Option,
    /// A reference to another record (resolved by `via`).
    Lookup,
    /// A Dataverse EntityName column (e.g. owneridtype), a text value.
    EntityName,
    /// Unknown/any: accepted everywhere (used to avoid cascading errors).
    Any,
}

impl Ty {
    /// The name used in messages, e.g. `text[100]`, `code[20]`, `decimal`.
    pub fn describe(&self) -> String {
        let sized = |kind: &str, len: &Option<u32>| match len {
            Some(n) => format!("{kind}[{n}]"),
            None => kind.to_string(),
        };
        match self {
            Ty::Text { len } => sized("text", len),
            Ty::Code { len } => sized("code", len),
            Ty::Integer => "integer".into(),
            Ty::Decimal => "decimal".into(),
            Ty::Boolean => "boolean".into(),
            Ty::Date => "date".into(),
            Ty::DateTime => "datetime".into(),
            Ty::Time => "time".into(),
            Ty::Guid => "guid".into(),
            Ty::Option => "option".into(),
            Ty::Lookup => "lookup".into(),
            Ty::EntityName => "entity name".into(),
            Ty::Any => "any".into(),
        }
    }

    /// Whether values of this type carry a string (text, code, option, entity name).
    pub fn is_textual(&self) -> bool {
        matches!(
            self,
            Ty::Text { .. } | Ty::Code { .. } | Ty::Option | Ty::EntityName
        )
    }

    /// The maximum length of a text or code type, when known.
    pub fn max_len(&self) -> Option<u32> {
        match self {
            Ty::Text { len } | Ty::Code { len } => *len,
            _ => None,
        }
    }
}

/// A runtime value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// No value.
    Null,
    /// True or false.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A decimal number.
    Decimal(Decimal),
    /// Text (also code, option labels and entity names).
    Text(String),
    /// A calendar date.
    Date(NaiveDate),
    /// A point in time.
    DateTime(DateTime<Utc>),
    /// A GUID in its textual form.
    Guid(String),
}

impl Value {
    /// Reads a JSON value: numbers become Int when whole and in range, else Decimal; strings stay text (dates are not guessed).
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => number_from_json(n),
            serde_json::Value::String(s) => Value::Text(s.clone()),
            other => Value::Text(other.to_string()),
        }
    }

    /// Writes a JSON value: dates as `YYYY-MM-DD`, datetimes as RFC 3339 with `Z`, decimals as numbers.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Decimal(d) => decimal_to_json(*d),
            Value::Text(s) | Value::Guid(s) => serde_json::Value::String(s.clone()),
            Value::Date(_) | Value::DateTime(_) => {
                serde_json::Value::String(self.as_text().unwrap_or_default().into_owned())
            }
        }
    }

    /// Whether this is `Value::Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The textual rendering used by text functions (numbers, booleans and dates are rendered; null gives None).
    pub fn as_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::Null => None,
            Value::Text(s) | Value::Guid(s) => Some(Cow::Borrowed(s)),
            Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            Value::Int(i) => Some(Cow::Owned(i.to_string())),
            Value::Decimal(d) => Some(Cow::Owned(d.to_string())),
            Value::Date(d) => Some(Cow::Owned(d.format("%Y-%m-%d").to_string())),
            Value::DateTime(t) => Some(Cow::Owned(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))),
        }
    }
}

fn number_from_json(n: &serde_json::Number) -> Value {
    if let Some(i) = n.as_i64() {
        return Value::Int(i);
    }
    if let Some(u) = n.as_u64() {
        return Value::Decimal(Decimal::from(u));
    }
    let s = n.to_string();
    Decimal::from_str(&s)
        .or_else(|_| Decimal::from_scientific(&s))
        .map(Value::Decimal)
        .unwrap_or(Value::Text(s))
}

fn decimal_to_json(d: Decimal) -> serde_json::Value {
    if d.fract().is_zero() {
        if let Some(i) = d.to_i64() {
            return serde_json::Value::from(i);
        }
    }
    // Normalized: a transform's 2.50 is written 2.5, as it always was.
    json_decimal(d.normalize())
}

/// A decimal as a JSON number, digit for digit (serde_json keeps the text of its numbers:
/// `arbitrary_precision`), never through `f64`.
pub fn json_decimal(d: Decimal) -> serde_json::Value {
    serde_json::Number::from_str(&d.to_string())
        .map(serde_json::Value::Number)
        .unwrap_or_else(|_| serde_json::Value::String(d.to_string()))
}

/// A JSON number as a decimal (rust_decimal rounds past its 28 digits); None when it does not
/// fit at all (1e40, 1e-40).
pub fn decimal_of(n: &serde_json::Number) -> Option<Decimal> {
    let text = n.to_string();
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn describes_types() {
        assert_eq!(Ty::Text { len: Some(100) }.describe(), "text[100]");
        assert_eq!(Ty::Text { len: None }.describe(), "text");
        assert_eq!(Ty::Code { len: Some(20) }.describe(), "code[20]");
        assert_eq!(Ty::EntityName.describe(), "entity name");
        assert!(Ty::Option.is_textual() && !Ty::Guid.is_textual());
        assert_eq!(Ty::Code { len: Some(20) }.max_len(), Some(20));
        assert_eq!(Ty::Integer.max_len(), None);
    }

    #[test]
    fn json_round_trip() {
        assert_eq!(Value::from_json(&json!(3)), Value::Int(3));
        assert_eq!(
            Value::from_json(&json!(2.5)),
            Value::Decimal(Decimal::new(25, 1))
        );
        assert_eq!(
            Value::from_json(&json!("2024-01-01")),
            Value::Text("2024-01-01".into())
        );
        assert_eq!(Value::Decimal(Decimal::new(300, 2)).to_json(), json!(3));
        assert_eq!(Value::Decimal(Decimal::new(250, 2)).to_json(), json!(2.5));
        let d = NaiveDate::from_ymd_opt(2024, 3, 5).unwrap();
        assert_eq!(Value::Date(d).to_json(), json!("2024-03-05"));
        let t = d.and_hms_opt(14, 7, 0).unwrap().and_utc();
        assert_eq!(Value::DateTime(t).to_json(), json!("2024-03-05T14:07:00Z"));
        assert_eq!(Value::Int(7).as_text().as_deref(), Some("7"));
        assert!(Value::Null.as_text().is_none() && Value::Null.is_null());
    }
}
