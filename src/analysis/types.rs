//! Type rules: what may flow into what, and which literals fit which fields.

use crate::schema::Field;
use crate::syntax::ast::{LitKind, Literal};
use crate::transform::Ty;

/// Whether a value of type `from` can be written into a field of type `to`.
pub fn assignable(from: &Ty, to: &Ty) -> bool {
    use Ty::*;
    match (from, to) {
        (Any, _) | (_, Any) => true,
        (
            Text { .. } | Code { .. } | EntityName | Option,
            Text { .. } | Code { .. } | EntityName,
        ) => true,
        // Option values are matched by label at run time.
        (Text { .. } | Code { .. } | Option, Option) => true,
        (Integer | Decimal, Integer | Decimal) => !matches!((from, to), (Decimal, Integer)),
        (Integer | Decimal | Boolean | Date | DateTime | Time | Guid, Text { .. }) => true,
        (Boolean, Boolean) => true,
        (Date | DateTime, Date | DateTime) => true,
        (Time, Time) => true,
        (Guid | Lookup, Guid | Lookup) => true,
        _ => false,
    }
}

/// A literal's own type, before it meets a field.
pub fn literal_ty(lit: &Literal) -> Ty {
    match &lit.kind {
        LitKind::Str(s) => Ty::Text {
            len: Some(s.chars().count() as u32),
        },
        LitKind::Num(_, d) if d.fract().is_zero() => Ty::Integer,
        LitKind::Num(..) => Ty::Decimal,
        LitKind::Bool(_) => Ty::Boolean,
        LitKind::Null => Ty::Any,
    }
}

/// Why a literal does not fit a field, if it does not. Option labels are checked by the caller.
pub fn literal_misfit(lit: &Literal, field: &Field) -> Option<String> {
    let ty = field.ty();
    match (&lit.kind, &ty) {
        (LitKind::Null, _) => None,
        (LitKind::Str(_), Ty::Option) => None,
        (LitKind::Num(..), Ty::Option) => None,
        (LitKind::Str(s), Ty::Date) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .err()
            .map(|_| format!("`{s}` is not a date (write 'YYYY-MM-DD')")),
        (LitKind::Str(s), Ty::DateTime) => chrono::DateTime::parse_from_rfc3339(s)
            .err()
            .and(chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").err())
            .map(|_| format!("`{s}` is not a date-time (write '2024-05-01T00:00:00Z')")),
        (LitKind::Str(s), Ty::Guid | Ty::Lookup) => {
            (!is_guid(s)).then(|| format!("`{s}` is not a GUID"))
        }
        (LitKind::Str(_), Ty::Text { .. } | Ty::Code { .. } | Ty::EntityName | Ty::Any) => None,
        (LitKind::Num(_, d), Ty::Integer) if !d.fract().is_zero() => {
            Some(format!("`{d}` is not a whole number"))
        }
        (LitKind::Num(..), Ty::Integer | Ty::Decimal | Ty::Any) => None,
        (LitKind::Bool(_), Ty::Boolean | Ty::Any) => None,
        _ => Some(format!(
            "a {} value does not fit a {} field",
            literal_ty(lit).describe_kind(),
            ty.describe()
        )),
    }
}

pub fn is_guid(s: &str) -> bool {
    let s = s.trim_start_matches('{').trim_end_matches('}');
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.len() == *n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

trait KindName {
    fn describe_kind(&self) -> String;
}

impl KindName for Ty {
    /// The type without its length: "text" rather than "text[5]".
    fn describe_kind(&self) -> String {
        match self {
            Ty::Text { .. } => "text".into(),
            Ty::Code { .. } => "code".into(),
            other => other.describe(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignability() {
        let t = |n| Ty::Text { len: Some(n) };
        assert!(assignable(&t(10), &Ty::Code { len: Some(5) }));
        assert!(assignable(&Ty::Integer, &Ty::Decimal));
        assert!(!assignable(&Ty::Decimal, &Ty::Integer));
        assert!(!assignable(&t(3), &Ty::Decimal));
        assert!(!assignable(&Ty::Boolean, &Ty::Option));
        assert!(assignable(&Ty::Date, &Ty::DateTime));
        assert!(assignable(&Ty::Lookup, &Ty::Guid));
    }

    #[test]
    fn guids() {
        assert!(is_guid("00000000-0000-0000-0000-000000000000"));
        assert!(is_guid("{6d2f1e6a-1b2c-4d5e-8f90-1234567890ab}"));
        assert!(!is_guid("not-a-guid"));
    }
}
