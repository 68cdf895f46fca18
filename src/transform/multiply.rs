//! `multiply(factor)`: multiplies a number by a constant (line numbers 1, 2, 3 spaced as
//! Business Central's 10000, 20000, 30000, leaving room for lines in between).

use rust_decimal::Decimal;

use super::round::{number, Number};
use super::{args, text, Arg, ArgError, Example, Function, Signature, Ty, TypeError, Value};

/// Signature of `multiply`.
pub(super) const SIGNATURE: Signature = Signature {
    name: "multiply",
    params: "(factor)",
    accepts: "integer or decimal",
    returns: "the input type (decimal when the factor has decimals)",
    summary: "Multiplies by a constant factor, e.g. line numbers by 10000",
    examples: &[
        Example {
            call: "multiply(10000)",
            input: "3",
            output: "30000",
        },
        Example {
            call: "multiply(0.5)",
            input: "3",
            output: "1.5",
        },
    ],
};

/// Compiles `multiply`.
pub(super) fn compile(args: &[Arg]) -> Result<Box<dyn Function>, ArgError> {
    args::count(&SIGNATURE, args, 1)?;
    let factor = match &args[0] {
        Arg::Num(n) => *n,
        other => {
            return Err(ArgError {
                arg: Some(0),
                message: format!("`multiply` takes a number, not {other}"),
                help: Some("write the factor as a number, e.g. `multiply(10000)`".into()),
            })
        }
    };
    Ok(Box::new(Multiply { factor }))
}

#[derive(Debug)]
struct Multiply {
    factor: Decimal,
}

impl Multiply {
    fn whole(&self) -> Option<i64> {
        (self.factor.fract().is_zero())
            .then(|| i64::try_from(self.factor.trunc().mantissa()).ok())
            .flatten()
            .filter(|_| self.factor.scale() == 0)
    }
}

impl Function for Multiply {
    fn name(&self) -> &'static str {
        SIGNATURE.name
    }

    fn output(&self, input: &Ty) -> Result<Ty, TypeError> {
        match input {
            Ty::Integer if self.whole().is_some() => Ok(Ty::Integer),
            Ty::Integer | Ty::Decimal | Ty::Any => Ok(Ty::Decimal),
            t => Err(text::not_accepted(SIGNATURE.name, "a number", t)),
        }
    }

    fn apply(&self, value: Value) -> Result<Value, String> {
        let overflow = || format!("`multiply({})`: the result is too large", self.factor);
        match number(SIGNATURE.name, value)? {
            Number::Null => Ok(Value::Null),
            Number::Int(i) => match self.whole() {
                Some(f) => i.checked_mul(f).map(Value::Int).ok_or_else(overflow),
                None => Decimal::from(i)
                    .checked_mul(self.factor)
                    .map(Value::Decimal)
                    .ok_or_else(overflow),
            },
            Number::Decimal(d) => d
                .checked_mul(self.factor)
                .map(Value::Decimal)
                .ok_or_else(overflow),
        }
    }
}
