//! How canonical values are stored in an embedded system's SQLite tables: Dataverse keeps
//! choices by value, Business Central enums by name, booleans as 0/1.

use crate::runtime::values::option_value;
use crate::schema::SystemKind;
use crate::schema::{Field, FieldType};
use rusqlite::types::{Value as SqlValue, ValueRef};
use serde_json::Value;

pub fn column_type(kind: SystemKind, field: &Field) -> &'static str {
    match field.ty {
        FieldType::Integer | FieldType::Bigint | FieldType::Boolean => "INTEGER",
        FieldType::Decimal => "REAL",
        FieldType::Option if kind == SystemKind::Dataverse => "INTEGER",
        _ => "TEXT",
    }
}

/// Canonical (already normalized) value -> SQLite.
pub fn encode(kind: SystemKind, field: &Field, value: &Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(*b as i64),
        Value::Number(n) => match (n.as_i64(), field.ty) {
            (Some(i), FieldType::Integer | FieldType::Bigint | FieldType::Boolean) => {
                SqlValue::Integer(i)
            }
            _ => n.as_f64().map(SqlValue::Real).unwrap_or(SqlValue::Null),
        },
        Value::String(s) if field.ty == FieldType::Option && kind == SystemKind::Dataverse => {
            option_value(field, s)
                .map(SqlValue::Integer)
                .unwrap_or(SqlValue::Null)
        }
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

/// SQLite -> canonical value.
pub fn decode(kind: SystemKind, field: Option<&Field>, value: ValueRef<'_>) -> Value {
    let ty = field.map(|f| f.ty);
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => match ty {
            Some(FieldType::Boolean) => Value::Bool(i != 0),
            Some(FieldType::Option) if kind == SystemKind::Dataverse => field
                .and_then(|f| f.options.as_ref())
                .and_then(|o| {
                    o.iter()
                        .find(|(_, v)| **v == i)
                        .map(|(l, _)| Value::String(l.clone()))
                })
                .unwrap_or(Value::from(i)),
            Some(FieldType::Decimal) => Value::from(i),
            _ => Value::from(i),
        },
        ValueRef::Real(f) => {
            if f.fract() == 0.0 && f.abs() < 9e15 {
                Value::from(f as i64)
            } else {
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
    }
}

pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
