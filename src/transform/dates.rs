//! Reading dates and datetimes for the date functions.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::{text, Ty, TypeError, Value};

/// A date or a datetime read from a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum When {
    /// A date without time.
    Date(NaiveDate),
    /// A point in time, in UTC.
    DateTime(DateTime<Utc>),
}

impl When {
    /// The UTC date and time (midnight for a date).
    pub(super) fn naive(self) -> NaiveDateTime {
        match self {
            When::Date(d) => d.and_time(chrono::NaiveTime::MIN),
            When::DateTime(t) => t.naive_utc(),
        }
    }
}

/// Checks that a date function accepts the input type: date, datetime, text/code (parsed at runtime) or any.
pub(super) fn check(name: &str, input: &Ty) -> Result<(), TypeError> {
    match input {
        Ty::Date | Ty::DateTime | Ty::Text { .. } | Ty::Code { .. } | Ty::Any => Ok(()),
        t => Err(text::not_accepted(name, "a date, datetime or text", t)),
    }
}

/// Reads a value as a date or datetime (None for null); text must be an ISO 8601 date or datetime.
pub(super) fn read(name: &str, value: &Value) -> Result<Option<When>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Date(d) => Ok(Some(When::Date(*d))),
        Value::DateTime(t) => Ok(Some(When::DateTime(*t))),
        Value::Text(s) => parse(s).map(Some).ok_or_else(|| {
            format!(
                "`{name}` cannot read '{s}' as a date: expected 'YYYY-MM-DD' or an ISO 8601 datetime"
            )
        }),
        other => Err(format!(
            "`{name}` takes a date, not {}",
            other.as_text().unwrap_or_default()
        )),
    }
}

/// Parses an ISO 8601 date, an RFC 3339 datetime, or a datetime without offset (taken as UTC).
pub(super) fn parse(s: &str) -> Option<When> {
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(When::Date(d));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(When::DateTime(t.with_timezone(&Utc)));
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .map(|t| When::DateTime(t.and_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iso_forms() {
        let d = NaiveDate::from_ymd_opt(2024, 3, 5).unwrap();
        assert_eq!(parse("2024-03-05"), Some(When::Date(d)));
        let t = d.and_hms_opt(12, 0, 0).unwrap().and_utc();
        assert_eq!(parse("2024-03-05T13:00:00+01:00"), Some(When::DateTime(t)));
        assert_eq!(parse("2024-03-05T12:00:00"), Some(When::DateTime(t)));
        assert_eq!(parse("2024-03-05 12:00:00.000"), Some(When::DateTime(t)));
        assert_eq!(parse("05/03/2024"), None);
    }

    #[test]
    fn reads_values() {
        assert_eq!(read("f", &Value::Null), Ok(None));
        let err = read("format_date", &Value::Text("soon".into())).unwrap_err();
        assert!(err.starts_with("`format_date` cannot read 'soon' as a date"));
        assert_eq!(
            read("f", &Value::Int(3)).unwrap_err(),
            "`f` takes a date, not 3"
        );
    }
}
