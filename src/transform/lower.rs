//! `lower`: lower-cases text (Business Central: Lowercase).

use super::{args, text, Arg, ArgError, Example, Function, Signature, Ty, TypeError, Value};

/// Signature of `lower`.
pub(super) const SIGNATURE: Signature = Signature {
    name: "lower",
    params: "",
    accepts: "text",
    returns: "text",
    summary: "Converts text to lower case (Business Central: Lowercase)",
    examples: &[
        Example {
            call: "lower",
            input: r#""Info@Contoso.COM""#,
            output: r#""info@contoso.com""#,
        },
        Example {
            call: "lower",
            input: r#""ÆRØ""#,
            output: r#""ærø""#,
        },
    ],
};

/// Compiles `lower`.
pub(super) fn compile(args: &[Arg]) -> Result<Box<dyn Function>, ArgError> {
    args::count(&SIGNATURE, args, 0)?;
    Ok(Box::new(Lower))
}

#[derive(Debug)]
struct Lower;

impl Function for Lower {
    fn name(&self) -> &'static str {
        SIGNATURE.name
    }

    fn output(&self, input: &Ty) -> Result<Ty, TypeError> {
        text::output(SIGNATURE.name, input, false, |len| len)
    }

    fn apply(&self, value: Value) -> Result<Value, String> {
        text::apply(value, |s| s.chars().map(text::lower_char).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{code, text, ty};
    use super::*;

    #[test]
    fn types() {
        assert_eq!(ty("lower", code(20)), Ok(text(20)));
        assert_eq!(ty("lower", Ty::Any), Ok(Ty::Text { len: None }));
        assert!(ty("lower", Ty::Date).is_err());
    }
}
