//! `regex_match(pattern)`: the first regex match, or null (Business Central: Regular Expression - Match).

use regex::Regex;

use super::{
    args, regex_replace, text, Arg, ArgError, Example, Function, Signature, Ty, TypeError, Value,
};

/// Signature of `regex_match`.
pub(super) const SIGNATURE: Signature = Signature {
    name: "regex_match",
    params: "(pattern)",
    accepts: "text",
    returns: "text (code stays code), or null when nothing matches",
    summary: "Returns the first match of a regular expression, or null when there is none (Business Central: Regular Expression - Match)",
    examples: &[
        Example {
            call: "regex_match('[0-9]{4}')",
            input: r#""DK-2100 København Ø""#,
            output: r#""2100""#,
        },
        Example {
            call: "regex_match('[0-9]+')",
            input: r#""no digits""#,
            output: "null",
        },
    ],
};

/// Compiles `regex_match`.
pub(super) fn compile(args: &[Arg]) -> Result<Box<dyn Function>, ArgError> {
    args::count(&SIGNATURE, args, 1)?;
    let regex = regex_replace::pattern(&SIGNATURE, args, 0)?;
    Ok(Box::new(RegexMatch { regex }))
}

#[derive(Debug)]
struct RegexMatch {
    regex: Regex,
}

impl Function for RegexMatch {
    fn name(&self) -> &'static str {
        SIGNATURE.name
    }

    fn output(&self, input: &Ty) -> Result<Ty, TypeError> {
        text::output(SIGNATURE.name, input, true, |len| len)
    }

    fn apply(&self, value: Value) -> Result<Value, String> {
        Ok(match value.as_text() {
            None => Value::Null,
            Some(s) => match self.regex.find(&s) {
                Some(m) => Value::Text(m.as_str().to_string()),
                None => Value::Null,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{arg_err, code, text, ty};
    use super::*;

    #[test]
    fn types() {
        assert_eq!(ty("regex_match('[A-Z]+')", code(20)), Ok(code(20)));
        assert_eq!(ty("regex_match('[A-Z]+')", text(20)), Ok(text(20)));
        assert!(ty("regex_match('x')", Ty::Integer).is_err());
    }

    #[test]
    fn argument_errors() {
        let err = arg_err("regex_match('a{2')");
        assert_eq!(err.arg, Some(0));
        assert!(err
            .message
            .starts_with("`regex_match` pattern does not compile: "));
        assert!(err.help.is_some());
        let err = arg_err("regex_match(3)");
        assert_eq!(err.message, "`regex_match` pattern must be text, got 3");
    }
}
