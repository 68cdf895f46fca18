//! `round(decimals)`: rounds a number, midpoint away from zero (Business Central: Round).

use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};

use super::{args, text, Arg, ArgError, Example, Function, Signature, Ty, TypeError, Value};

/// Signature of `round`.
pub(super) const SIGNATURE: Signature = Signature {
    name: "round",
    params: "(decimals)",
    accepts: "integer or decimal",
    returns: "the input type",
    summary: "Rounds to the given number of decimal places, midpoints away from zero (Business Central: Round)",
    examples: &[
        Example {
            call: "round(2)",
            input: "2.345",
            output: "2.35",
        },
        Example {
            call: "round(0)",
            input: "2.5",
            output: "3",
        },
        Example {
            call: "round(1)",
            input: "-1.25",
            output: "-1.3",
        },
        Example {
            call: "round(2)",
            input: "7",
            output: "7",
        },
    ],
};

/// Compiles `round`.
pub(super) fn compile(args: &[Arg]) -> Result<Box<dyn Function>, ArgError> {
    args::count(&SIGNATURE, args, 1)?;
    let decimals = args::whole(&SIGNATURE, args, 0, 0, 28)? as u32;
    Ok(Box::new(Round { decimals }))
}

#[derive(Debug)]
struct Round {
    decimals: u32,
}

impl Function for Round {
    fn name(&self) -> &'static str {
        SIGNATURE.name
    }

    fn output(&self, input: &Ty) -> Result<Ty, TypeError> {
        match input {
            Ty::Integer => Ok(Ty::Integer),
            Ty::Decimal | Ty::Any => Ok(Ty::Decimal),
            t => Err(text::not_accepted(SIGNATURE.name, "a number", t)),
        }
    }

    fn apply(&self, value: Value) -> Result<Value, String> {
        let d = match number(SIGNATURE.name, value)? {
            Number::Null => return Ok(Value::Null),
            Number::Int(i) => return Ok(Value::Int(i)),
            Number::Decimal(d) => d,
        };
        let strategy = RoundingStrategy::MidpointAwayFromZero;
        Ok(Value::Decimal(
            d.round_dp_with_strategy(self.decimals, strategy),
        ))
    }
}

/// A value read as a number.
pub(super) enum Number {
    /// The value was null.
    Null,
    /// A whole number.
    Int(i64),
    /// A decimal number.
    Decimal(Decimal),
}

/// Reads a value as a number; text (reaching here only from untyped input) is parsed.
pub(super) fn number(name: &str, value: Value) -> Result<Number, String> {
    match value {
        Value::Null => Ok(Number::Null),
        Value::Int(i) => Ok(Number::Int(i)),
        Value::Decimal(d) => Ok(Number::Decimal(d)),
        Value::Text(s) => Decimal::from_str(s.trim())
            .map(Number::Decimal)
            .map_err(|_| format!("`{name}` takes a number, not '{s}'")),
        other => Err(format!(
            "`{name}` takes a number, not {}",
            other.as_text().unwrap_or_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{arg_err, run, text, ty};
    use super::*;
    use serde_json::json;

    #[test]
    fn types() {
        assert_eq!(ty("round(2)", Ty::Integer), Ok(Ty::Integer));
        assert_eq!(ty("round(2)", Ty::Decimal), Ok(Ty::Decimal));
        assert_eq!(ty("round(2)", Ty::Any), Ok(Ty::Decimal));
        let err = ty("round(2)", text(50)).unwrap_err();
        assert_eq!(err.message, "`round` takes a number, not text[50]");
        assert_eq!(
            err.help.as_deref(),
            Some("convert the value first, or remove `round`")
        );
    }

    #[test]
    fn runtime() {
        assert_eq!(run("round(1)", json!("2.45")), Ok(json!(2.5)));
        assert_eq!(
            run("round(1)", json!("abc")),
            Err("`round` takes a number, not 'abc'".to_string())
        );
        assert_eq!(
            run("round(1)", json!(true)),
            Err("`round` takes a number, not true".to_string())
        );
    }

    #[test]
    fn argument_errors() {
        assert_eq!(
            arg_err("round(-1)").message,
            "`round` decimals must be at least 0, got -1"
        );
        assert_eq!(
            arg_err("round(29)").message,
            "`round` decimals must be at most 28, got 29"
        );
        assert_eq!(
            arg_err("round").message,
            "`round` takes 1 argument (decimals), 0 given"
        );
    }
}
