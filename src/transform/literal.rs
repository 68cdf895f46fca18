//! Literal arguments as values, and the kinds that `default` and `map` check against input types.

use rust_decimal::prelude::ToPrimitive;

use super::{Arg, Ty, Value};

/// The kind of a literal or of the values of a type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Quoted text.
    Text,
    /// A number.
    Number,
    /// `true` or `false`.
    Bool,
}

impl Kind {
    /// "text", "a number" or "a boolean".
    pub(super) fn describe(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Number => "a number",
            Kind::Bool => "a boolean",
        }
    }
}

/// The kind of a literal; None for null and maps.
pub(super) fn kind(arg: &Arg) -> Option<Kind> {
    match arg {
        Arg::Str(_) => Some(Kind::Text),
        Arg::Num(_) => Some(Kind::Number),
        Arg::Bool(_) => Some(Kind::Bool),
        Arg::Null | Arg::Map(_) => None,
    }
}

/// The kind of literal that can stand for values of a type; None for any.
pub(super) fn kind_of(ty: &Ty) -> Option<Kind> {
    match ty {
        Ty::Integer | Ty::Decimal => Some(Kind::Number),
        Ty::Boolean => Some(Kind::Bool),
        Ty::Any => None,
        _ => Some(Kind::Text),
    }
}

/// Whether a literal is a whole number.
pub(super) fn is_whole(arg: &Arg) -> bool {
    matches!(arg, Arg::Num(n) if n.fract().is_zero() && n.to_i64().is_some())
}

/// The value of a literal: whole numbers become Int unless `decimal`; null and maps give Null.
pub(super) fn value(arg: &Arg, decimal: bool) -> Value {
    match arg {
        Arg::Str(s) => Value::Text(s.clone()),
        Arg::Num(n) if !decimal && is_whole(arg) => Value::Int(n.to_i64().unwrap_or_default()),
        Arg::Num(n) => Value::Decimal(*n),
        Arg::Bool(b) => Value::Bool(*b),
        Arg::Null | Arg::Map(_) => Value::Null,
    }
}

/// The type of a literal's value when nothing else is known.
pub(super) fn ty(arg: &Arg) -> Ty {
    match arg {
        Arg::Num(_) if is_whole(arg) => Ty::Integer,
        Arg::Num(_) => Ty::Decimal,
        Arg::Bool(_) => Ty::Boolean,
        Arg::Str(_) => Ty::Text { len: None },
        Arg::Null | Arg::Map(_) => Ty::Any,
    }
}
