//! `format_date(pattern)`: renders a date or datetime with a .NET-style custom pattern (Business Central: Date Formatting).

use chrono::{Datelike, NaiveDateTime, Timelike};

use super::dates::{self, When};
use super::{args, Arg, ArgError, Example, Function, Signature, Ty, TypeError, Value};

/// Signature of `format_date`.
pub(super) const SIGNATURE: Signature = Signature {
    name: "format_date",
    params: "(pattern)",
    accepts: "date, datetime or ISO 8601 text",
    returns: "text",
    summary: "Renders a date or datetime (UTC) with a .NET custom pattern: yyyy yy MMMM MMM MM M dddd ddd dd d HH H hh h mm m ss s f..fffffff tt t, 'quoted text' (Business Central: Date Formatting)",
    examples: &[
        Example {
            call: "format_date('yyyyMMdd')",
            input: r#""2024-03-05""#,
            output: r#""20240305""#,
        },
        Example {
            call: "format_date('dd-MM-yyyy HH:mm')",
            input: r#""2024-03-05T14:07:00Z""#,
            output: r#""05-03-2024 14:07""#,
        },
        Example {
            call: "format_date('h:mm tt')",
            input: r#""2024-03-05T14:07:00Z""#,
            output: r#""2:07 PM""#,
        },
        Example {
            call: "format_date('dddd d. MMMM ''at'' HH.mm.ss.fff')",
            input: r#""2024-03-05T09:08:07.250Z""#,
            output: r#""Tuesday 5. March at 09.08.07.250""#,
        },
    ],
};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// One piece of a pattern; numbers are run lengths (e.g. `MM` is `Month(2)`).
#[derive(Clone, Debug, PartialEq)]
enum Part {
    Year(usize),
    Month(usize),
    Day(usize),
    Hour24(usize),
    Hour12(usize),
    Minute(usize),
    Second(usize),
    Fraction(usize),
    AmPm(usize),
    Lit(String),
}

/// Compiles `format_date`.
pub(super) fn compile(args: &[Arg]) -> Result<Box<dyn Function>, ArgError> {
    args::count(&SIGNATURE, args, 1)?;
    let pattern = args::text(&SIGNATURE, args, 0)?;
    let parts = parse(pattern).map_err(|(message, help)| {
        let message = format!("`format_date` pattern {message}");
        let help = help.unwrap_or("see `coupler explain format_date` for the pattern letters");
        args::error(0, message, Some(help.to_string()))
    })?;
    let max_len = parts.iter().map(max_len).sum::<usize>();
    let max_len = u32::try_from(max_len).unwrap_or(u32::MAX);
    Ok(Box::new(FormatDate { parts, max_len }))
}

type ParseError = (String, Option<&'static str>);

fn parse(pattern: &str) -> Result<Vec<Part>, ParseError> {
    let chars: Vec<char> = pattern.chars().collect();
    if chars.is_empty() {
        return Err(("is empty".into(), Some("for example 'yyyy-MM-dd'")));
    }
    if let [c] = chars[..] {
        if c.is_ascii_alphabetic() {
            let message =
                format!("'{c}' is a one-letter .NET standard format, which is not supported");
            return Err((
                message,
                Some("write a custom pattern such as 'M/d/yyyy', or '%d' for a single field"),
            ));
        }
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        let part = match c {
            'y' => Part::Year(run),
            'M' => Part::Month(run.min(4)),
            'd' => Part::Day(run.min(4)),
            'H' => Part::Hour24(run.min(2)),
            'h' => Part::Hour12(run.min(2)),
            'm' => Part::Minute(run.min(2)),
            's' => Part::Second(run.min(2)),
            't' => Part::AmPm(run.min(2)),
            'f' if run > 7 => return Err(("has more than 7 'f'".into(), None)),
            'f' => Part::Fraction(run),
            'F' | 'g' | 'K' | 'z' => {
                return Err((format!("uses '{c}', which is not supported"), None));
            }
            '\'' | '"' => {
                let end = chars[i + 1..].iter().position(|&x| x == c);
                let unclosed: ParseError = (format!("has an unclosed {c}"), None);
                let end = end.ok_or(unclosed)?;
                push_lit(&mut parts, &chars[i + 1..i + 1 + end]);
                i += end + 2;
                continue;
            }
            '\\' => {
                let lone: ParseError = ("ends with a lone '\\'".to_string(), None);
                let next = chars.get(i + 1).ok_or(lone)?;
                push_lit(&mut parts, &[*next]);
                i += 2;
                continue;
            }
            '%' => {
                i += 1;
                continue;
            }
            _ => {
                push_lit(&mut parts, &chars[i..i + run]);
                i += run;
                continue;
            }
        };
        parts.push(part);
        i += run;
    }
    Ok(parts)
}

fn push_lit(parts: &mut Vec<Part>, text: &[char]) {
    match parts.last_mut() {
        Some(Part::Lit(s)) => s.extend(text),
        _ => parts.push(Part::Lit(text.iter().collect())),
    }
}

/// The longest text a part can render to.
fn max_len(part: &Part) -> usize {
    match part {
        Part::Year(n) if *n <= 2 => 2,
        Part::Year(n) => (*n).max(4),
        Part::Month(4) | Part::Day(4) => 9,
        Part::Month(n) | Part::Day(n) => (*n).max(2),
        Part::Hour24(_) | Part::Hour12(_) | Part::Minute(_) | Part::Second(_) => 2,
        Part::Fraction(n) | Part::AmPm(n) => *n,
        Part::Lit(s) => s.chars().count(),
    }
}

fn render(parts: &[Part], t: NaiveDateTime) -> String {
    let num = |v: u32, n: usize| format!("{v:0n$}");
    let mut out = String::new();
    for part in parts {
        let piece = match *part {
            Part::Year(1) => (t.year() % 100).to_string(),
            Part::Year(2) => format!("{:02}", t.year() % 100),
            Part::Year(n) => format!("{:0n$}", t.year()),
            Part::Month(3) => MONTHS[t.month0() as usize][..3].to_string(),
            Part::Month(4) => MONTHS[t.month0() as usize].to_string(),
            Part::Month(n) => num(t.month(), n),
            Part::Day(3) => DAYS[t.weekday().num_days_from_monday() as usize][..3].to_string(),
            Part::Day(4) => DAYS[t.weekday().num_days_from_monday() as usize].to_string(),
            Part::Day(n) => num(t.day(), n),
            Part::Hour24(n) => num(t.hour(), n),
            Part::Hour12(n) => num(t.hour12().1, n),
            Part::Minute(n) => num(t.minute(), n),
            Part::Second(n) => num(t.second(), n),
            Part::Fraction(n) => format!("{:09}", t.nanosecond() % 1_000_000_000)[..n].to_string(),
            Part::AmPm(n) => ["AM", "PM"][usize::from(t.hour12().0)][..n].to_string(),
            Part::Lit(ref s) => s.clone(),
        };
        out.push_str(&piece);
    }
    out
}

#[derive(Debug)]
struct FormatDate {
    parts: Vec<Part>,
    max_len: u32,
}

impl Function for FormatDate {
    fn name(&self) -> &'static str {
        SIGNATURE.name
    }

    fn output(&self, input: &Ty) -> Result<Ty, TypeError> {
        dates::check(SIGNATURE.name, input)?;
        Ok(Ty::Text {
            len: Some(self.max_len),
        })
    }

    fn apply(&self, value: Value) -> Result<Value, String> {
        Ok(match dates::read(SIGNATURE.name, &value)? {
            None => Value::Null,
            Some(when) => Value::Text(render(&self.parts, When::naive(when))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{arg_err, run, text, ty};
    use super::*;
    use serde_json::json;

    #[test]
    fn types() {
        assert_eq!(ty("format_date('yyyyMMdd')", Ty::Date), Ok(text(8)));
        assert_eq!(
            ty("format_date('yyyy-MM-dd HH:mm')", Ty::DateTime),
            Ok(text(16))
        );
        assert_eq!(ty("format_date('d MMMM yyyy')", text(30)), Ok(text(17)));
        assert_eq!(ty("format_date('yy')", Ty::Any), Ok(text(2)));
        let err = ty("format_date('yyyy')", Ty::Integer).unwrap_err();
        assert_eq!(
            err.message,
            "`format_date` takes a date, datetime or text, not integer"
        );
    }

    #[test]
    fn patterns() {
        let t = json!("2005-01-09T00:30:05.1234567Z");
        let cases = [
            ("y/M/d", "5/1/9"),
            ("yyy", "2005"),
            ("ddd MMM", "Sun Jan"),
            ("hh:mm t", "12:30 A"),
            ("%H", "0"),
            (r"'T'HH\h", "T00h"),
            ("\"Q\"s.fffffff", "Q5.1234567"),
        ];
        for (pattern, expected) in cases {
            let call = format!("format_date('{}')", pattern.replace('\'', "''"));
            assert_eq!(run(&call, t.clone()), Ok(json!(expected)), "{pattern}");
        }
        assert_eq!(
            run("format_date('HH:mm')", json!("2024-03-05")),
            Ok(json!("00:00"))
        );
        let err = run("format_date('yyyy')", json!("5 March")).unwrap_err();
        assert!(err.starts_with("`format_date` cannot read '5 March' as a date"));
    }

    #[test]
    fn argument_errors() {
        let err = arg_err("format_date('d')");
        assert_eq!(
            err.message,
            "`format_date` pattern 'd' is a one-letter .NET standard format, which is not supported"
        );
        assert_eq!(
            arg_err("format_date('')").message,
            "`format_date` pattern is empty"
        );
        assert_eq!(
            arg_err("format_date('yyyy''x')").message,
            "`format_date` pattern has an unclosed '"
        );
        assert_eq!(
            arg_err("format_date('HH:mm zzz')").message,
            "`format_date` pattern uses 'z', which is not supported"
        );
        assert_eq!(arg_err("format_date(1)").arg, Some(0));
    }
}
