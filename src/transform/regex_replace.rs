//! `regex_replace(pattern, with)`: replaces every regex match (Business Central: Regular Expression - Replace).

use regex::Regex;

use super::{args, text, Arg, ArgError, Example, Function, Signature, Ty, TypeError, Value};

/// Signature of `regex_replace`.
pub(super) const SIGNATURE: Signature = Signature {
    name: "regex_replace",
    params: "(pattern, with)",
    accepts: "text",
    returns: "text",
    summary: "Replaces every match of a regular expression; with may refer to groups as $1 or ${name} (Business Central: Regular Expression - Replace)",
    examples: &[
        Example {
            call: "regex_replace('[^0-9+]', '')",
            input: r#""+45 12-34 56 78""#,
            output: r#""+4512345678""#,
        },
        Example {
            call: r"regex_replace('^(\w+), (\w+)$', '$2 $1')",
            input: r#""Smith, John""#,
            output: r#""John Smith""#,
        },
    ],
};

/// Compiles `regex_replace`.
pub(super) fn compile(args: &[Arg]) -> Result<Box<dyn Function>, ArgError> {
    args::count(&SIGNATURE, args, 2)?;
    let regex = pattern(&SIGNATURE, args, 0)?;
    let with = args::text(&SIGNATURE, args, 1)?.to_string();
    Ok(Box::new(RegexReplace { regex, with }))
}

/// Compiles argument `i` as a regular expression, explaining syntax errors.
pub(super) fn pattern(sig: &Signature, args: &[Arg], i: usize) -> Result<Regex, ArgError> {
    let source = args::text(sig, args, i)?;
    Regex::new(source).map_err(|e| {
        let text = e.to_string();
        let why = text
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("error: "))
            .unwrap_or(text.lines().next().unwrap_or_default())
            .to_string();
        let message = format!("`{}` pattern does not compile: {why}", sig.name);
        let help = "patterns use Rust regex syntax, which has no look-around or backreferences";
        args::error(i, message, Some(help.to_string()))
    })
}

#[derive(Debug)]
struct RegexReplace {
    regex: Regex,
    with: String,
}

impl Function for RegexReplace {
    fn name(&self) -> &'static str {
        SIGNATURE.name
    }

    fn output(&self, input: &Ty) -> Result<Ty, TypeError> {
        text::output(SIGNATURE.name, input, false, |_| None)
    }

    fn apply(&self, value: Value) -> Result<Value, String> {
        text::apply(value, |s| {
            self.regex.replace_all(s, self.with.as_str()).into_owned()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{arg_err, code, ty};
    use super::*;

    #[test]
    fn types() {
        assert_eq!(
            ty("regex_replace('a', 'b')", code(20)),
            Ok(Ty::Text { len: None })
        );
        assert!(ty("regex_replace('a', 'b')", Ty::Date).is_err());
    }

    #[test]
    fn argument_errors() {
        let err = arg_err("regex_replace('(abc', '')");
        assert_eq!(err.arg, Some(0));
        assert_eq!(
            err.message,
            "`regex_replace` pattern does not compile: unclosed group"
        );
        let err = arg_err("regex_replace('a')");
        assert_eq!(
            err.message,
            "`regex_replace` takes 2 arguments (pattern, with), 1 given"
        );
    }
}
