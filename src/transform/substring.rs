//! `substring(start, len)`: part of a text, 1-based (Business Central: Substring).

use super::{args, text, Arg, ArgError, Example, Function, Signature, Ty, TypeError, Value};

/// Signature of `substring`.
pub(super) const SIGNATURE: Signature = Signature {
    name: "substring",
    params: "(start, len)",
    accepts: "text",
    returns: "text[len] (code stays code)",
    summary: "Takes up to len characters starting at position start, counted from 1 (Business Central: Substring)",
    examples: &[
        Example {
            call: "substring(1, 3)",
            input: r#""ABCDEF""#,
            output: r#""ABC""#,
        },
        Example {
            call: "substring(3, 2)",
            input: r#""ABCDEF""#,
            output: r#""CD""#,
        },
        Example {
            call: "substring(5, 10)",
            input: r#""ABCDEF""#,
            output: r#""EF""#,
        },
    ],
};

/// Compiles `substring`.
pub(super) fn compile(args: &[Arg]) -> Result<Box<dyn Function>, ArgError> {
    args::count(&SIGNATURE, args, 2)?;
    let max = i64::from(u32::MAX);
    let start = args::whole(&SIGNATURE, args, 0, 1, max)? as u32;
    let len = args::whole(&SIGNATURE, args, 1, 1, max)? as u32;
    Ok(Box::new(Substring { start, len }))
}

#[derive(Debug)]
struct Substring {
    start: u32,
    len: u32,
}

impl Function for Substring {
    fn name(&self) -> &'static str {
        SIGNATURE.name
    }

    fn output(&self, input: &Ty) -> Result<Ty, TypeError> {
        let (start, len) = (self.start, self.len);
        text::output(SIGNATURE.name, input, true, |max| {
            Some(max.map_or(len, |m| len.min(m.saturating_sub(start - 1))))
        })
    }

    fn apply(&self, value: Value) -> Result<Value, String> {
        let (skip, take) = (self.start as usize - 1, self.len as usize);
        text::apply(value, |s| s.chars().skip(skip).take(take).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{arg_err, code, text, ty};
    use super::*;

    #[test]
    fn types() {
        assert_eq!(ty("substring(1, 3)", text(100)), Ok(text(3)));
        assert_eq!(ty("substring(1, 3)", Ty::Text { len: None }), Ok(text(3)));
        assert_eq!(ty("substring(4, 10)", code(6)), Ok(code(3)));
        assert_eq!(ty("substring(9, 10)", text(6)), Ok(text(0)));
        assert!(ty("substring(1, 3)", Ty::Integer).is_err());
    }

    #[test]
    fn argument_errors() {
        let err = arg_err("substring(0, 3)");
        assert_eq!(err.arg, Some(0));
        assert_eq!(err.message, "`substring` start must be at least 1, got 0");
        let err = arg_err("substring(1)");
        assert_eq!(
            err.message,
            "`substring` takes 2 arguments (start, len), 1 given"
        );
        assert_eq!(err.help.as_deref(), Some("for example `substring(1, 3)`"));
        let err = arg_err("substring(1, -2)");
        assert_eq!(err.arg, Some(1));
        let err = arg_err("substring('1', 2)");
        assert_eq!(err.help.as_deref(), Some("remove the quotes: 1"));
    }
}
