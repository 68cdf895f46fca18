//! `alphanumeric`: keeps only letters and digits (Business Central: Remove Non-Alphanumeric Characters).

use super::{args, text, Arg, ArgError, Example, Function, Signature, Ty, TypeError, Value};

/// Signature of `alphanumeric`.
pub(super) const SIGNATURE: Signature = Signature {
    name: "alphanumeric",
    params: "",
    accepts: "text",
    returns: "text (code stays code)",
    summary: "Removes every character that is not a letter or a digit, spaces included (Business Central: Remove Non-Alphanumeric Characters)",
    examples: &[
        Example {
            call: "alphanumeric",
            input: r#""AB-12 34/c""#,
            output: r#""AB1234c""#,
        },
        Example {
            call: "alphanumeric",
            input: r#""Ærø Kommune!""#,
            output: r#""ÆrøKommune""#,
        },
    ],
};

/// Compiles `alphanumeric`.
pub(super) fn compile(args: &[Arg]) -> Result<Box<dyn Function>, ArgError> {
    args::count(&SIGNATURE, args, 0)?;
    Ok(Box::new(Alphanumeric))
}

#[derive(Debug)]
struct Alphanumeric;

impl Function for Alphanumeric {
    fn name(&self) -> &'static str {
        SIGNATURE.name
    }

    fn output(&self, input: &Ty) -> Result<Ty, TypeError> {
        text::output(SIGNATURE.name, input, true, |len| len)
    }

    fn apply(&self, value: Value) -> Result<Value, String> {
        text::apply(value, |s| {
            s.chars().filter(|c| c.is_alphanumeric()).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{code, text, ty};
    use super::*;

    #[test]
    fn types() {
        assert_eq!(ty("alphanumeric", code(20)), Ok(code(20)));
        assert_eq!(ty("alphanumeric", text(30)), Ok(text(30)));
        assert!(ty("alphanumeric", Ty::Decimal).is_err());
    }
}
