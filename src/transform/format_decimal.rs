//! `format_decimal(culture[, decimals])`: renders a number as text the way a culture writes it (Business Central: Decimal Formatting).

use rust_decimal::{Decimal, RoundingStrategy};

use super::round::{number, Number};
use super::{args, text, Arg, ArgError, Example, Function, Signature, Ty, TypeError, Value};

/// Signature of `format_decimal`.
pub(super) const SIGNATURE: Signature = Signature {
    name: "format_decimal",
    params: "(culture[, decimals])",
    accepts: "integer or decimal",
    returns: "text",
    summary: "Renders a number with a culture's digit grouping and decimal separator (as .NET does), optionally with a fixed number of decimals (Business Central: Decimal Formatting)",
    examples: &[
        Example {
            call: "format_decimal('da-DK')",
            input: "1234567.5",
            output: r#""1.234.567,5""#,
        },
        Example {
            call: "format_decimal('en-US', 2)",
            input: "1234.5",
            output: r#""1,234.50""#,
        },
        Example {
            call: "format_decimal('fr-FR', 2)",
            input: "-1234.567",
            output: r#""-1\u202f234,57""#,
        },
        Example {
            call: "format_decimal('')",
            input: "1000",
            output: r#""1,000""#,
        },
    ],
};

/// A culture's number symbols (as .NET with ICU has them).
#[derive(Debug)]
struct Culture {
    name: &'static str,
    group: &'static str,
    decimal: &'static str,
    minus: &'static str,
}

const fn culture(
    name: &'static str,
    group: &'static str,
    decimal: &'static str,
    minus: &'static str,
) -> Culture {
    Culture {
        name,
        group,
        decimal,
        minus,
    }
}

const NBSP: &str = "\u{a0}";
const NNBSP: &str = "\u{202f}";
const MINUS: &str = "\u{2212}";

static CULTURES: &[Culture] = &[
    culture("", ",", ".", "-"),
    culture("en-US", ",", ".", "-"),
    culture("en-GB", ",", ".", "-"),
    culture("en-AU", ",", ".", "-"),
    culture("en-CA", ",", ".", "-"),
    culture("en-NZ", ",", ".", "-"),
    culture("da-DK", ".", ",", "-"),
    culture("de-DE", ".", ",", "-"),
    culture("de-CH", "\u{2019}", ".", "-"),
    culture("fr-FR", NNBSP, ",", "-"),
    culture("fr-BE", NNBSP, ",", "-"),
    culture("nl-NL", ".", ",", "-"),
    culture("nl-BE", ".", ",", "-"),
    culture("sv-SE", NBSP, ",", MINUS),
    culture("nb-NO", NBSP, ",", MINUS),
    culture("fi-FI", NBSP, ",", MINUS),
    culture("is-IS", ".", ",", "-"),
    culture("it-IT", ".", ",", "-"),
    culture("es-ES", ".", ",", "-"),
];

/// Compiles `format_decimal`.
pub(super) fn compile(args: &[Arg]) -> Result<Box<dyn Function>, ArgError> {
    args::count(&SIGNATURE, args, 1)?;
    let name = args::text(&SIGNATURE, args, 0)?;
    let Some(culture) = CULTURES.iter().find(|c| c.name.eq_ignore_ascii_case(name)) else {
        let known: Vec<_> = CULTURES.iter().skip(1).map(|c| c.name).collect();
        let message = format!("`format_decimal` does not know culture '{name}'");
        let help = format!("known cultures: {}, and '' (invariant)", known.join(", "));
        return Err(args::error(0, message, Some(help)));
    };
    let decimals = match args.len() {
        2 => Some(args::whole(&SIGNATURE, args, 1, 0, 28)? as u32),
        _ => None,
    };
    Ok(Box::new(FormatDecimal { culture, decimals }))
}

#[derive(Debug)]
struct FormatDecimal {
    culture: &'static Culture,
    decimals: Option<u32>,
}

impl Function for FormatDecimal {
    fn name(&self) -> &'static str {
        SIGNATURE.name
    }

    fn output(&self, input: &Ty) -> Result<Ty, TypeError> {
        match input {
            Ty::Integer | Ty::Decimal | Ty::Any => Ok(Ty::Text { len: None }),
            t => Err(text::not_accepted(SIGNATURE.name, "a number", t)),
        }
    }

    fn apply(&self, value: Value) -> Result<Value, String> {
        let d = match number(SIGNATURE.name, value)? {
            Number::Null => return Ok(Value::Null),
            Number::Int(i) => Decimal::from(i),
            Number::Decimal(d) => d,
        };
        Ok(Value::Text(format(d, self.culture, self.decimals)))
    }
}

/// Renders `d` with the culture's symbols; with `decimals`, rounds (midpoint away from zero) and pads to that many places.
fn format(d: Decimal, c: &Culture, decimals: Option<u32>) -> String {
    let d = match decimals {
        Some(n) => {
            let mut r = d.round_dp_with_strategy(n, RoundingStrategy::MidpointAwayFromZero);
            r.rescale(n);
            r
        }
        None => d,
    };
    let digits = d.abs().to_string();
    let (int, frac) = digits.split_once('.').unwrap_or((&digits, ""));
    let mut out = String::new();
    if d.is_sign_negative() && !d.is_zero() {
        out.push_str(c.minus);
    }
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push_str(c.group);
        }
        out.push(ch);
    }
    if !frac.is_empty() {
        out.push_str(c.decimal);
        out.push_str(frac);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{arg_err, run, text, ty};
    use super::*;
    use serde_json::json;

    #[test]
    fn types() {
        let out = Ok(Ty::Text { len: None });
        assert_eq!(ty("format_decimal('de-DE')", Ty::Decimal), out);
        assert_eq!(ty("format_decimal('de-DE')", Ty::Integer), out);
        let err = ty("format_decimal('de-DE')", text(10)).unwrap_err();
        assert_eq!(err.message, "`format_decimal` takes a number, not text[10]");
    }

    #[test]
    fn cultures() {
        let cases = [
            ("en-GB", "1,234,567.891"),
            ("de-DE", "1.234.567,891"),
            ("nl-NL", "1.234.567,891"),
            ("it-IT", "1.234.567,891"),
            ("es-ES", "1.234.567,891"),
            ("sv-SE", "1\u{a0}234\u{a0}567,891"),
            ("nb-no", "1\u{a0}234\u{a0}567,891"),
        ];
        for (culture, expected) in cases {
            let call = format!("format_decimal('{culture}')");
            assert_eq!(run(&call, json!(1234567.891)), Ok(json!(expected)));
        }
        assert_eq!(
            run("format_decimal('sv-SE')", json!(-5)),
            Ok(json!("\u{2212}5"))
        );
        assert_eq!(
            run("format_decimal('da-DK', 0)", json!(999.5)),
            Ok(json!("1.000"))
        );
        assert_eq!(
            run("format_decimal('da-DK', 2)", json!(-0.001)),
            Ok(json!("0,00"))
        );
        assert_eq!(run("format_decimal('en-US')", json!(123)), Ok(json!("123")));
    }

    #[test]
    fn argument_errors() {
        let err = arg_err("format_decimal('xx-YY')");
        assert_eq!(err.arg, Some(0));
        assert_eq!(
            err.message,
            "`format_decimal` does not know culture 'xx-YY'"
        );
        assert!(err.help.unwrap().contains("da-DK"));
        let err = arg_err("format_decimal('da-DK', 2, 3)");
        assert_eq!(
            err.message,
            "`format_decimal` takes 1 or 2 arguments (culture, decimals), 3 given"
        );
        assert_eq!(arg_err("format_decimal('da-DK', -1)").arg, Some(1));
    }
}
