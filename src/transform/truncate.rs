//! `truncate(len)`: cuts text to at most len characters.

use super::{args, text, Arg, ArgError, Example, Function, Signature, Ty, TypeError, Value};

/// Signature of `truncate`.
pub(super) const SIGNATURE: Signature = Signature {
    name: "truncate",
    params: "(len)",
    accepts: "text",
    returns: "text[len] (code stays code)",
    summary: "Cuts text to at most len characters",
    examples: &[
        Example {
            call: "truncate(3)",
            input: r#""ABCDEF""#,
            output: r#""ABC""#,
        },
        Example {
            call: "truncate(10)",
            input: r#""Short""#,
            output: r#""Short""#,
        },
    ],
};

/// Compiles `truncate`.
pub(super) fn compile(args: &[Arg]) -> Result<Box<dyn Function>, ArgError> {
    args::count(&SIGNATURE, args, 1)?;
    let len = args::whole(&SIGNATURE, args, 0, 1, i64::from(u32::MAX))? as u32;
    Ok(Box::new(Truncate { len }))
}

#[derive(Debug)]
struct Truncate {
    len: u32,
}

impl Function for Truncate {
    fn name(&self) -> &'static str {
        SIGNATURE.name
    }

    fn output(&self, input: &Ty) -> Result<Ty, TypeError> {
        let len = self.len;
        text::output(SIGNATURE.name, input, true, |max| {
            Some(max.map_or(len, |m| m.min(len)))
        })
    }

    fn apply(&self, value: Value) -> Result<Value, String> {
        text::apply(value, |s| s.chars().take(self.len as usize).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{arg_err, code, run, text, ty};
    use super::*;
    use serde_json::json;

    #[test]
    fn types() {
        assert_eq!(ty("truncate(10)", text(100)), Ok(text(10)));
        assert_eq!(ty("truncate(10)", text(5)), Ok(text(5)));
        assert_eq!(ty("truncate(10)", code(20)), Ok(code(10)));
        assert_eq!(ty("truncate(10)", Ty::Any), Ok(text(10)));
        let err = ty("truncate(10)", Ty::Decimal).unwrap_err();
        assert_eq!(err.message, "`truncate` takes text, not decimal");
        assert_eq!(
            err.help.as_deref(),
            Some("convert the value first, or remove `truncate`")
        );
    }

    #[test]
    fn counts_chars() {
        assert_eq!(run("truncate(3)", json!("ÆØÅÆØÅ")), Ok(json!("ÆØÅ")));
    }

    #[test]
    fn argument_errors() {
        let err = arg_err("truncate(1, 2)");
        assert_eq!(err.message, "`truncate` takes 1 argument (len), 2 given");
        assert_eq!(err.arg, None);
        let err = arg_err("truncate(-1)");
        assert_eq!(err.message, "`truncate` len must be at least 1, got -1");
        assert_eq!(err.arg, Some(0));
        let err = arg_err("truncate(2.5)");
        assert_eq!(
            err.message,
            "`truncate` len must be a whole number, got 2.5"
        );
        let err = arg_err("truncate('abc')");
        assert_eq!(
            err.message,
            "`truncate` len must be a whole number, got 'abc'"
        );
        assert_eq!(err.help, None);
    }
}
