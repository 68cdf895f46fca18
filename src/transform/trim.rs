//! `trim`: removes leading and trailing whitespace (Business Central: Trim).

use super::{args, text, Arg, ArgError, Example, Function, Signature, Ty, TypeError, Value};

/// Signature of `trim`.
pub(super) const SIGNATURE: Signature = Signature {
    name: "trim",
    params: "",
    accepts: "text",
    returns: "text (code stays code)",
    summary: "Removes leading and trailing whitespace (Business Central: Trim)",
    examples: &[
        Example {
            call: "trim",
            input: r#""  Contoso  ""#,
            output: r#""Contoso""#,
        },
        Example {
            call: "trim",
            input: r#""\tA  B\n""#,
            output: r#""A  B""#,
        },
    ],
};

/// Compiles `trim`.
pub(super) fn compile(args: &[Arg]) -> Result<Box<dyn Function>, ArgError> {
    args::count(&SIGNATURE, args, 0)?;
    Ok(Box::new(Trim))
}

#[derive(Debug)]
struct Trim;

impl Function for Trim {
    fn name(&self) -> &'static str {
        SIGNATURE.name
    }

    fn output(&self, input: &Ty) -> Result<Ty, TypeError> {
        text::output(SIGNATURE.name, input, true, |len| len)
    }

    fn apply(&self, value: Value) -> Result<Value, String> {
        text::apply(value, |s| s.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{code, text, ty};
    use super::*;

    #[test]
    fn types() {
        assert_eq!(ty("trim", code(20)), Ok(code(20)));
        assert_eq!(ty("trim", text(80)), Ok(text(80)));
        assert_eq!(ty("trim", Ty::EntityName), Ok(Ty::Text { len: None }));
        assert!(ty("trim", Ty::Guid).is_err());
    }
}
