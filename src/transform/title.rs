//! `title`: title-cases text (Business Central: Title Case).

use super::{args, text, Arg, ArgError, Example, Function, Signature, Ty, TypeError, Value};

/// Signature of `title`.
pub(super) const SIGNATURE: Signature = Signature {
    name: "title",
    params: "",
    accepts: "text",
    returns: "text",
    summary: "Upper-cases the first letter of each word and lower-cases the rest (Business Central: Title Case)",
    examples: &[
        Example {
            call: "title",
            input: r#""john SMITH""#,
            output: r#""John Smith""#,
        },
        Example {
            call: "title",
            input: r#""jean-luc o'neil""#,
            output: r#""Jean-Luc O'neil""#,
        },
    ],
};

/// Compiles `title`.
pub(super) fn compile(args: &[Arg]) -> Result<Box<dyn Function>, ArgError> {
    args::count(&SIGNATURE, args, 0)?;
    Ok(Box::new(Title))
}

#[derive(Debug)]
struct Title;

impl Function for Title {
    fn name(&self) -> &'static str {
        SIGNATURE.name
    }

    fn output(&self, input: &Ty) -> Result<Ty, TypeError> {
        text::output(SIGNATURE.name, input, false, |len| len)
    }

    fn apply(&self, value: Value) -> Result<Value, String> {
        text::apply(value, title_case)
    }
}

/// A word starts after any char that is not alphanumeric or an apostrophe.
fn title_case(s: &str) -> String {
    let mut start = true;
    s.chars()
        .map(|c| {
            let out = if start {
                text::upper_char(c)
            } else {
                text::lower_char(c)
            };
            start = !(c.is_alphanumeric() || c == '\'' || c == '’');
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{code, run, text, ty};
    use super::*;
    use serde_json::json;

    #[test]
    fn types() {
        assert_eq!(ty("title", code(10)), Ok(text(10)));
        assert!(ty("title", Ty::Boolean).is_err());
    }

    #[test]
    fn words() {
        assert_eq!(run("title", json!("  ÆRØ  by ")), Ok(json!("  Ærø  By ")));
        assert_eq!(run("title", json!("2nd street")), Ok(json!("2nd Street")));
    }
}
