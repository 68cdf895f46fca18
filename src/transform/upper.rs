//! `upper`: upper-cases text (Business Central: Uppercase).

use super::{args, text, Arg, ArgError, Example, Function, Signature, Ty, TypeError, Value};

/// Signature of `upper`.
pub(super) const SIGNATURE: Signature = Signature {
    name: "upper",
    params: "",
    accepts: "text",
    returns: "text (code stays code)",
    summary: "Converts text to upper case (Business Central: Uppercase)",
    examples: &[
        Example {
            call: "upper",
            input: r#""Contoso Ltd.""#,
            output: r#""CONTOSO LTD.""#,
        },
        Example {
            call: "upper",
            input: r#""Ærøskøbing""#,
            output: r#""ÆRØSKØBING""#,
        },
    ],
};

/// Compiles `upper`.
pub(super) fn compile(args: &[Arg]) -> Result<Box<dyn Function>, ArgError> {
    args::count(&SIGNATURE, args, 0)?;
    Ok(Box::new(Upper))
}

#[derive(Debug)]
struct Upper;

impl Function for Upper {
    fn name(&self) -> &'static str {
        SIGNATURE.name
    }

    fn output(&self, input: &Ty) -> Result<Ty, TypeError> {
        text::output(SIGNATURE.name, input, true, |len| len)
    }

    fn apply(&self, value: Value) -> Result<Value, String> {
        text::apply(value, text::upper)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{arg_err, code, run, text, ty};
    use super::*;
    use serde_json::json;

    #[test]
    fn types() {
        assert_eq!(ty("upper", code(20)), Ok(code(20)));
        assert_eq!(ty("upper", text(50)), Ok(text(50)));
        assert_eq!(ty("upper", Ty::Option), Ok(Ty::Text { len: None }));
        let err = ty("upper", Ty::Integer).unwrap_err();
        assert_eq!(err.message, "`upper` takes text, not integer");
    }

    #[test]
    fn keeps_length() {
        assert_eq!(run("upper", json!("straße")), Ok(json!("STRAßE")));
    }

    #[test]
    fn rejects_arguments() {
        let err = arg_err("upper(1)");
        assert_eq!(err.message, "`upper` takes no arguments, 1 given");
        assert_eq!(err.arg, None);
    }
}
