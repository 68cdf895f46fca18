//! `extract_date(part)`: one part of a date or datetime as a number (Business Central: Extract From Date).

use chrono::{Datelike, Timelike};

use super::dates::{self, When};
use super::{args, Arg, ArgError, Example, Function, Signature, Ty, TypeError, Value};

/// Signature of `extract_date`.
pub(super) const SIGNATURE: Signature = Signature {
    name: "extract_date",
    params: "(part)",
    accepts: "date, datetime or ISO 8601 text",
    returns: "integer ('date' gives a date)",
    summary: "Extracts 'year', 'month', 'day', 'weekday' (1 = Monday), 'week' (ISO), 'quarter', 'hour', 'minute' or 'second' as a number, or the 'date' of a datetime, in UTC (Business Central: Extract From Date)",
    examples: &[
        Example {
            call: "extract_date('year')",
            input: r#""2024-03-05""#,
            output: "2024",
        },
        Example {
            call: "extract_date('weekday')",
            input: r#""2024-03-05""#,
            output: "2",
        },
        Example {
            call: "extract_date('week')",
            input: r#""2024-12-30""#,
            output: "1",
        },
        Example {
            call: "extract_date('hour')",
            input: r#""2024-03-05T23:30:00+01:00""#,
            output: "22",
        },
        Example {
            call: "extract_date('date')",
            input: r#""2024-03-05T23:30:00Z""#,
            output: r#""2024-03-05""#,
        },
    ],
};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Part {
    Year,
    Month,
    Day,
    Weekday,
    Week,
    Quarter,
    Hour,
    Minute,
    Second,
    Date,
}

const PARTS: [(&str, Part); 10] = [
    ("year", Part::Year),
    ("month", Part::Month),
    ("day", Part::Day),
    ("weekday", Part::Weekday),
    ("week", Part::Week),
    ("quarter", Part::Quarter),
    ("hour", Part::Hour),
    ("minute", Part::Minute),
    ("second", Part::Second),
    ("date", Part::Date),
];

/// Compiles `extract_date`.
pub(super) fn compile(args: &[Arg]) -> Result<Box<dyn Function>, ArgError> {
    args::count(&SIGNATURE, args, 1)?;
    let name = args::text(&SIGNATURE, args, 0)?;
    let Some(&(name, part)) = PARTS.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) else {
        let message = format!("`extract_date` does not know part '{name}'");
        let known: Vec<String> = PARTS.iter().map(|(n, _)| format!("'{n}'")).collect();
        let help = format!("use one of {}", known.join(", "));
        return Err(args::error(0, message, Some(help)));
    };
    Ok(Box::new(ExtractDate { name, part }))
}

#[derive(Debug)]
struct ExtractDate {
    name: &'static str,
    part: Part,
}

impl Function for ExtractDate {
    fn name(&self) -> &'static str {
        SIGNATURE.name
    }

    fn output(&self, input: &Ty) -> Result<Ty, TypeError> {
        dates::check(SIGNATURE.name, input)?;
        let timed = matches!(self.part, Part::Hour | Part::Minute | Part::Second);
        if timed && *input == Ty::Date {
            return Err(TypeError {
                message: format!("`extract_date('{}')` needs a datetime, not date", self.name),
                help: Some(
                    "a date has no time of day: use a datetime field, or remove `extract_date`"
                        .into(),
                ),
            });
        }
        Ok(if self.part == Part::Date {
            Ty::Date
        } else {
            Ty::Integer
        })
    }

    fn apply(&self, value: Value) -> Result<Value, String> {
        let Some(when) = dates::read(SIGNATURE.name, &value)? else {
            return Ok(Value::Null);
        };
        let t = When::naive(when);
        let n: i64 = match self.part {
            Part::Date => return Ok(Value::Date(t.date())),
            Part::Year => t.year().into(),
            Part::Month => t.month().into(),
            Part::Day => t.day().into(),
            Part::Weekday => t.weekday().number_from_monday().into(),
            Part::Week => t.iso_week().week().into(),
            Part::Quarter => (t.month0() / 3 + 1).into(),
            Part::Hour => t.hour().into(),
            Part::Minute => t.minute().into(),
            Part::Second => t.second().into(),
        };
        Ok(Value::Int(n))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{arg_err, run, text, ty};
    use super::*;
    use serde_json::json;

    #[test]
    fn types() {
        assert_eq!(ty("extract_date('year')", Ty::Date), Ok(Ty::Integer));
        assert_eq!(ty("extract_date('hour')", Ty::DateTime), Ok(Ty::Integer));
        assert_eq!(ty("extract_date('Date')", Ty::DateTime), Ok(Ty::Date));
        assert_eq!(ty("extract_date('date')", text(30)), Ok(Ty::Date));
        let err = ty("extract_date('minute')", Ty::Date).unwrap_err();
        assert_eq!(
            err.message,
            "`extract_date('minute')` needs a datetime, not date"
        );
        assert!(ty("extract_date('year')", Ty::Decimal).is_err());
    }

    #[test]
    fn parts() {
        let t = json!("2023-11-26T08:09:10Z");
        let cases = [
            ("month", 11),
            ("day", 26),
            ("weekday", 7),
            ("week", 47),
            ("quarter", 4),
            ("minute", 9),
            ("second", 10),
        ];
        for (part, expected) in cases {
            let call = format!("extract_date('{part}')");
            assert_eq!(run(&call, t.clone()), Ok(json!(expected)), "{part}");
        }
        assert_eq!(
            run("extract_date('hour')", json!("2023-11-26")),
            Ok(json!(0))
        );
    }

    #[test]
    fn argument_errors() {
        let err = arg_err("extract_date('decade')");
        assert_eq!(err.message, "`extract_date` does not know part 'decade'");
        assert!(err.help.unwrap().starts_with("use one of 'year', 'month'"));
    }
}
