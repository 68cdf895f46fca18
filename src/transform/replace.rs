//! `replace(find, with)`: replaces every occurrence of a text (Business Central: Replace).

use super::{args, text, Arg, ArgError, Example, Function, Signature, Ty, TypeError, Value};

/// Signature of `replace`.
pub(super) const SIGNATURE: Signature = Signature {
    name: "replace",
    params: "(find, with)",
    accepts: "text",
    returns: "text",
    summary:
        "Replaces every occurrence of find with with, case-sensitively (Business Central: Replace)",
    examples: &[
        Example {
            call: "replace('-', '')",
            input: r#""555-123-456""#,
            output: r#""555123456""#,
        },
        Example {
            call: "replace('Ltd.', 'Limited')",
            input: r#""Contoso Ltd.""#,
            output: r#""Contoso Limited""#,
        },
    ],
};

/// Compiles `replace`.
pub(super) fn compile(args: &[Arg]) -> Result<Box<dyn Function>, ArgError> {
    args::count(&SIGNATURE, args, 2)?;
    let find = args::text(&SIGNATURE, args, 0)?;
    let with = args::text(&SIGNATURE, args, 1)?;
    if find.is_empty() {
        let message = "`replace` find must not be empty".to_string();
        return Err(args::error(0, message, None));
    }
    Ok(Box::new(Replace {
        find: find.to_string(),
        with: with.to_string(),
    }))
}

#[derive(Debug)]
struct Replace {
    find: String,
    with: String,
}

impl Function for Replace {
    fn name(&self) -> &'static str {
        SIGNATURE.name
    }

    /// Lengths are kept when the replacement is no longer than the text found; code stays code when the replacement is upper-case.
    fn output(&self, input: &Ty) -> Result<Ty, TypeError> {
        let grows = text::char_len(&self.with) > text::char_len(&self.find);
        let keep_code = text::upper(&self.with) == self.with;
        text::output(SIGNATURE.name, input, keep_code, |len| {
            if grows {
                None
            } else {
                len
            }
        })
    }

    fn apply(&self, value: Value) -> Result<Value, String> {
        text::apply(value, |s| s.replace(&self.find, &self.with))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{arg_err, code, text, ty};
    use super::*;

    #[test]
    fn types() {
        assert_eq!(ty("replace('-', '')", code(20)), Ok(code(20)));
        assert_eq!(ty("replace('-', 'x')", code(20)), Ok(text(20)));
        assert_eq!(
            ty("replace('a', 'bc')", text(20)),
            Ok(Ty::Text { len: None })
        );
        assert!(ty("replace('a', 'b')", Ty::Integer).is_err());
    }

    #[test]
    fn argument_errors() {
        let err = arg_err("replace('', 'x')");
        assert_eq!(err.message, "`replace` find must not be empty");
        let err = arg_err("replace('a', 1)");
        assert_eq!(err.message, "`replace` with must be text, got 1");
        assert_eq!(err.help.as_deref(), Some("quote it: '1'"));
        assert_eq!(err.arg, Some(1));
    }
}
