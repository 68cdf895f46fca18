//! `default(value)`: replaces null and empty text with a value.

use chrono::NaiveTime;

use super::dates::{self, When};
use super::literal::{self, Kind};
use super::{args, text, Arg, ArgError, Example, Function, Signature, Ty, TypeError, Value};

/// Signature of `default`.
pub(super) const SIGNATURE: Signature = Signature {
    name: "default",
    params: "(value)",
    accepts: "any",
    returns: "the input type",
    summary: "Replaces null and empty text with value; other values pass unchanged",
    examples: &[
        Example {
            call: "default('Unknown')",
            input: "null",
            output: r#""Unknown""#,
        },
        Example {
            call: "default('Unknown')",
            input: r#""""#,
            output: r#""Unknown""#,
        },
        Example {
            call: "default('Unknown')",
            input: r#""Contoso""#,
            output: r#""Contoso""#,
        },
        Example {
            call: "default(0)",
            input: "null",
            output: "0",
        },
    ],
};

/// Compiles `default`.
pub(super) fn compile(args: &[Arg]) -> Result<Box<dyn Function>, ArgError> {
    args::count(&SIGNATURE, args, 1)?;
    let arg = &args[0];
    match arg {
        Arg::Null => {
            let help = "give the value to use for null and empty text, e.g. default('Unknown')";
            let message = "`default(null)` has no effect".to_string();
            Err(args::error(0, message, Some(help.to_string())))
        }
        Arg::Map(_) => {
            let message = "`default` value must be text, a number or a boolean, not a map";
            Err(args::error(0, message.to_string(), None))
        }
        _ => Ok(Box::new(DefaultTo {
            arg: arg.clone(),
            value: literal::value(arg, false),
        })),
    }
}

#[derive(Debug)]
struct DefaultTo {
    arg: Arg,
    value: Value,
}

impl DefaultTo {
    fn mismatch(&self, input: &Ty, help: Option<String>) -> TypeError {
        let kind = literal::kind(&self.arg).map_or("", Kind::describe);
        TypeError {
            message: format!(
                "`default` value {} is {kind}, but the input is {}",
                self.arg,
                input.describe()
            ),
            help,
        }
    }

    /// Output for a text literal on a text-kind input.
    fn text_output(&self, s: &str, input: &Ty) -> Result<Ty, TypeError> {
        let grow = |len: &Option<u32>| len.map(|l| l.max(text::char_len(s)));
        let ok = match input {
            Ty::Text { len } => return Ok(Ty::Text { len: grow(len) }),
            Ty::Code { len } if text::upper(s) == s => return Ok(Ty::Code { len: grow(len) }),
            Ty::Code { len } => return Ok(Ty::Text { len: grow(len) }),
            Ty::Date => matches!(dates::parse(s), Some(When::Date(_))),
            Ty::DateTime => dates::parse(s).is_some(),
            Ty::Time => ["%H:%M:%S%.f", "%H:%M"]
                .iter()
                .any(|f| NaiveTime::parse_from_str(s, f).is_ok()),
            Ty::Guid => is_guid(s),
            _ => true,
        };
        if ok {
            return Ok(input.clone());
        }
        Err(TypeError {
            message: format!(
                "`default` value {} is not a valid {}",
                self.arg,
                input.describe()
            ),
            help: Some(match input {
                Ty::Date => "write a date as 'YYYY-MM-DD'".into(),
                Ty::DateTime => "write a datetime as 'YYYY-MM-DDThh:mm:ssZ'".into(),
                Ty::Time => "write a time as 'hh:mm:ss'".into(),
                _ => "write a guid as 'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx'".into(),
            }),
        })
    }
}

fn is_guid(s: &str) -> bool {
    let s = s
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(s);
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

impl Function for DefaultTo {
    fn name(&self) -> &'static str {
        SIGNATURE.name
    }

    fn output(&self, input: &Ty) -> Result<Ty, TypeError> {
        let Some(want) = literal::kind_of(input) else {
            return Ok(literal::ty(&self.arg));
        };
        let whole = literal::is_whole(&self.arg);
        match (&self.arg, want) {
            (Arg::Str(s), Kind::Text) => self.text_output(s, input),
            (Arg::Num(_), Kind::Number) if *input == Ty::Integer && !whole => Err(TypeError {
                message: format!(
                    "`default` value {} is not a whole number, but the input is integer",
                    self.arg
                ),
                help: None,
            }),
            (Arg::Num(_), Kind::Number) | (Arg::Bool(_), Kind::Bool) => Ok(input.clone()),
            (Arg::Str(s), _) => {
                let bare =
                    s.parse::<rust_decimal::Decimal>().is_ok() || s == "true" || s == "false";
                let help = bare.then(|| format!("remove the quotes: default({s})"));
                Err(self.mismatch(input, help))
            }
            (arg, _) => Err(self.mismatch(input, Some(format!("quote it: default('{arg}')")))),
        }
    }

    fn apply(&self, value: Value) -> Result<Value, String> {
        Ok(match value {
            Value::Null => self.value.clone(),
            Value::Text(s) if s.is_empty() => self.value.clone(),
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{arg_err, code, run, text, ty};
    use super::*;
    use serde_json::json;

    #[test]
    fn types() {
        assert_eq!(ty("default('Unknown')", text(5)), Ok(text(7)));
        assert_eq!(ty("default('X')", text(5)), Ok(text(5)));
        assert_eq!(ty("default('X')", code(10)), Ok(code(10)));
        assert_eq!(ty("default('x')", code(10)), Ok(text(10)));
        assert_eq!(ty("default('x')", Ty::Option), Ok(Ty::Option));
        assert_eq!(ty("default(0)", Ty::Decimal), Ok(Ty::Decimal));
        assert_eq!(ty("default(0)", Ty::Integer), Ok(Ty::Integer));
        assert_eq!(ty("default(0.5)", Ty::Any), Ok(Ty::Decimal));
        assert_eq!(ty("default(false)", Ty::Boolean), Ok(Ty::Boolean));
        assert_eq!(ty("default('2024-01-01')", Ty::Date), Ok(Ty::Date));
        assert_eq!(ty("default('2024-01-01')", Ty::DateTime), Ok(Ty::DateTime));
        assert_eq!(ty("default('08:00')", Ty::Time), Ok(Ty::Time));
        let guid = "default('{6f9619ff-8b86-d011-b42d-00c04fc964ff}')";
        assert_eq!(ty(guid, Ty::Guid), Ok(Ty::Guid));
    }

    #[test]
    fn type_errors() {
        let err = ty("default(3)", text(50)).unwrap_err();
        assert_eq!(
            err.message,
            "`default` value 3 is a number, but the input is text[50]"
        );
        assert_eq!(err.help.as_deref(), Some("quote it: default('3')"));
        let err = ty("default('3')", Ty::Integer).unwrap_err();
        assert_eq!(err.help.as_deref(), Some("remove the quotes: default(3)"));
        let err = ty("default(1.5)", Ty::Integer).unwrap_err();
        assert_eq!(
            err.message,
            "`default` value 1.5 is not a whole number, but the input is integer"
        );
        let err = ty("default('soon')", Ty::Date).unwrap_err();
        assert_eq!(err.message, "`default` value 'soon' is not a valid date");
        assert!(ty("default('x')", Ty::Guid).is_err());
        assert!(ty("default(true)", Ty::Integer).is_err());
    }

    #[test]
    fn runtime() {
        assert_eq!(run("default(1)", json!(0)), Ok(json!(0)));
        assert_eq!(run("default('-')", json!(" ")), Ok(json!(" ")));
        assert_eq!(run("default(true)", json!(null)), Ok(json!(true)));
    }

    #[test]
    fn argument_errors() {
        assert_eq!(
            arg_err("default(null)").message,
            "`default(null)` has no effect"
        );
        assert_eq!(
            arg_err("default").message,
            "`default` takes 1 argument (value), 0 given"
        );
        assert_eq!(arg_err("default('a', 'b')").arg, None);
    }
}
