//! `clamp(min, max)`: keeps a number within bounds; either bound may be `null` (open).

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::round::{number, Number};
use super::{args, text, Arg, ArgError, Example, Function, Signature, Ty, TypeError, Value};

/// Signature of `clamp`.
pub(super) const SIGNATURE: Signature = Signature {
    name: "clamp",
    params: "(min, max)",
    accepts: "integer or decimal",
    returns: "the input type",
    summary:
        "Raises a number below min to min and lowers one above max to max; a null bound is open",
    examples: &[
        Example {
            call: "clamp(0, null)",
            input: "-5",
            output: "0",
        },
        Example {
            call: "clamp(0, null)",
            input: "12.5",
            output: "12.5",
        },
        Example {
            call: "clamp(0, 100)",
            input: "250.75",
            output: "100",
        },
        Example {
            call: "clamp(null, 10)",
            input: "-3",
            output: "-3",
        },
    ],
};

/// Compiles `clamp`.
pub(super) fn compile(args: &[Arg]) -> Result<Box<dyn Function>, ArgError> {
    args::count(&SIGNATURE, args, 2)?;
    let min = bound(args, 0)?;
    let max = bound(args, 1)?;
    match (min, max) {
        (None, None) => Err(ArgError {
            arg: None,
            message: "`clamp(null, null)` has no effect".to_string(),
            help: Some("give at least one bound, e.g. clamp(0, null)".to_string()),
        }),
        (Some(lo), Some(hi)) if lo > hi => Err(args::error(
            1,
            format!("`clamp` max must not be less than min, got min {lo} and max {hi}"),
            Some(format!("swap them: clamp({hi}, {lo})")),
        )),
        _ => Ok(Box::new(Clamp { min, max })),
    }
}

/// Argument `i` as a bound: a number, or None for `null` (open).
fn bound(args: &[Arg], i: usize) -> Result<Option<Decimal>, ArgError> {
    let name = if i == 0 { "min" } else { "max" };
    let got = &args[i];
    match got {
        Arg::Num(n) => Ok(Some(*n)),
        Arg::Null => Ok(None),
        _ => {
            let help = match got {
                Arg::Str(s) => s
                    .trim()
                    .parse::<Decimal>()
                    .ok()
                    .map(|n| format!("remove the quotes: {n}")),
                _ => None,
            }
            .or_else(|| Some("write a number, or null for no bound".to_string()));
            Err(args::error(
                i,
                format!("`clamp` {name} must be a number or null, got {got}"),
                help,
            ))
        }
    }
}

#[derive(Debug)]
struct Clamp {
    min: Option<Decimal>,
    max: Option<Decimal>,
}

impl Clamp {
    fn clamp(&self, d: Decimal) -> Decimal {
        let d = self.min.map_or(d, |lo| d.max(lo));
        self.max.map_or(d, |hi| d.min(hi))
    }

    /// A bound that is not a whole number, if any.
    fn fractional_bound(&self) -> Option<Decimal> {
        [self.min, self.max]
            .into_iter()
            .flatten()
            .find(|b| !b.fract().is_zero())
    }
}

impl Function for Clamp {
    fn name(&self) -> &'static str {
        SIGNATURE.name
    }

    fn output(&self, input: &Ty) -> Result<Ty, TypeError> {
        match input {
            Ty::Integer => match self.fractional_bound() {
                None => Ok(Ty::Integer),
                Some(b) => Err(TypeError {
                    message: format!(
                        "`clamp` bound {b} is not a whole number, but the input is integer"
                    ),
                    help: Some("use whole-number bounds for an integer field".to_string()),
                }),
            },
            Ty::Decimal | Ty::Any => Ok(Ty::Decimal),
            t => Err(text::not_accepted(SIGNATURE.name, "a number", t)),
        }
    }

    fn apply(&self, value: Value) -> Result<Value, String> {
        Ok(match number(SIGNATURE.name, value)? {
            Number::Null => Value::Null,
            Number::Int(i) => {
                let d = self.clamp(Decimal::from(i));
                match d.fract().is_zero().then(|| d.to_i64()).flatten() {
                    Some(i) => Value::Int(i),
                    None => Value::Decimal(d),
                }
            }
            Number::Decimal(d) => Value::Decimal(self.clamp(d)),
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
        assert_eq!(ty("clamp(0, null)", Ty::Integer), Ok(Ty::Integer));
        assert_eq!(ty("clamp(0, null)", Ty::Decimal), Ok(Ty::Decimal));
        assert_eq!(ty("clamp(0, null)", Ty::Any), Ok(Ty::Decimal));
        assert_eq!(ty("clamp(0.5, 2.5)", Ty::Decimal), Ok(Ty::Decimal));
        let err = ty("clamp(0.5, null)", Ty::Integer).unwrap_err();
        assert_eq!(
            err.message,
            "`clamp` bound 0.5 is not a whole number, but the input is integer"
        );
        let err = ty("clamp(0, null)", text(30)).unwrap_err();
        assert_eq!(err.message, "`clamp` takes a number, not text[30]");
        assert_eq!(
            err.help.as_deref(),
            Some("convert the value first, or remove `clamp`")
        );
    }

    #[test]
    fn runtime() {
        assert_eq!(run("clamp(0, null)", json!(null)), Ok(json!(null)));
        assert_eq!(run("clamp(0, null)", json!(-0.25)), Ok(json!(0)));
        assert_eq!(run("clamp(0, null)", json!(7)), Ok(json!(7)));
        assert_eq!(run("clamp(-10, 10)", json!(-11)), Ok(json!(-10)));
        assert_eq!(run("clamp(1, 1)", json!(5)), Ok(json!(1)));
        assert_eq!(run("clamp(null, 2.5)", json!(3)), Ok(json!(2.5)));
        assert_eq!(run("clamp(0, null)", json!("-4")), Ok(json!(0)));
        assert_eq!(
            run("clamp(0, null)", json!("abc")),
            Err("`clamp` takes a number, not 'abc'".to_string())
        );
    }

    #[test]
    fn argument_errors() {
        let err = arg_err("clamp(10, 0)");
        assert_eq!(
            err.message,
            "`clamp` max must not be less than min, got min 10 and max 0"
        );
        assert_eq!(err.arg, Some(1));
        assert_eq!(err.help.as_deref(), Some("swap them: clamp(0, 10)"));
        let err = arg_err("clamp('0', null)");
        assert_eq!(err.message, "`clamp` min must be a number or null, got '0'");
        assert_eq!(err.arg, Some(0));
        assert_eq!(err.help.as_deref(), Some("remove the quotes: 0"));
        let err = arg_err("clamp(0, true)");
        assert_eq!(
            err.message,
            "`clamp` max must be a number or null, got true"
        );
        assert_eq!(err.arg, Some(1));
        let err = arg_err("clamp(null, null)");
        assert_eq!(err.message, "`clamp(null, null)` has no effect");
        assert_eq!(err.arg, None);
        let err = arg_err("clamp(0)");
        assert_eq!(err.message, "`clamp` takes 2 arguments (min, max), 1 given");
    }
}
