//! `map { 'A' => 'B', ... }`: a value map; values not in the map pass through unchanged.

use rust_decimal::Decimal;

use super::literal::{self, Kind};
use super::{args, text, Arg, ArgError, Example, Function, Signature, Ty, TypeError, Value};

/// Signature of `map`.
pub(super) const SIGNATURE: Signature = Signature {
    name: "map",
    params: "{ from => to, ... }",
    accepts: "any",
    returns: "the type of the map's values",
    summary: "Replaces each value found on the left of the map with the value on its right; other values pass through unchanged",
    examples: &[
        Example {
            call: "map { 'Y' => 'Yes', 'N' => 'No' }",
            input: r#""Y""#,
            output: r#""Yes""#,
        },
        Example {
            call: "map { 'Y' => 'Yes', 'N' => 'No' }",
            input: r#""maybe""#,
            output: r#""maybe""#,
        },
        Example {
            call: "map { 'Ship' => 1, 'All' => 2 }",
            input: r#""All""#,
            output: "2",
        },
        Example {
            call: "map { 1 => true, 0 => false }",
            input: "0",
            output: "false",
        },
    ],
};

/// Compiles `map`.
pub(super) fn compile(args: &[Arg]) -> Result<Box<dyn Function>, ArgError> {
    let help = Some("write it as map { 'from' => 'to', ... }".to_string());
    let entries = match args {
        [Arg::Map(entries)] => entries,
        [other] => {
            let message = format!("`map` takes a value map, got {other}");
            return Err(args::error(0, message, help));
        }
        _ => {
            let message = format!("`map` takes one value map, {} given", args.len());
            return Err(ArgError {
                arg: None,
                message,
                help,
            });
        }
    };
    if entries.is_empty() {
        return Err(args::error(0, "`map` has no entries".into(), help));
    }
    let err =
        |message: String, help: Option<&str>| Err(args::error(0, message, help.map(String::from)));
    let mut kinds = Vec::new();
    for (i, (key, value)) in entries.iter().enumerate() {
        match key {
            Arg::Null => {
                return err(
                    "`map` cannot map null".into(),
                    Some("use `default(...)` to replace null"),
                )
            }
            Arg::Map(_) => return err("`map` keys must be text, numbers or booleans".into(), None),
            _ if entries[..i].iter().any(|(k, _)| k == key) => {
                return err(format!("`map` has the key {key} twice"), None);
            }
            _ => {}
        }
        match literal::kind(value) {
            None if matches!(value, Arg::Map(_)) => {
                return err(
                    "`map` values must be text, numbers, booleans or null".into(),
                    None,
                );
            }
            Some(k) if !kinds.contains(&k) => kinds.push(k),
            _ => {}
        }
    }
    if let [a, b, ..] = kinds[..] {
        let message = format!("`map` values mix {} and {}", a.describe(), b.describe());
        return err(message, Some("make every value the same kind"));
    }
    let whole = entries
        .iter()
        .all(|(_, v)| !matches!(v, Arg::Num(_)) || literal::is_whole(v));
    let to_text = |a: &Arg| match a {
        Arg::Str(s) => s.clone(),
        other => other.to_string(),
    };
    Ok(Box::new(Map {
        entries: entries
            .iter()
            .map(|(k, v)| (k.clone(), to_text(k), literal::value(v, !whole)))
            .collect(),
        values: kinds.first().copied(),
        whole,
    }))
}

#[derive(Debug)]
struct Map {
    /// Key, key as text, value.
    entries: Vec<(Arg, String, Value)>,
    /// The kind of the non-null values (None when all are null).
    values: Option<Kind>,
    /// Whether every number value is whole.
    whole: bool,
}

impl Map {
    fn text_values(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter_map(|(_, _, v)| match v {
            Value::Text(s) => Some(s.as_str()),
            _ => None,
        })
    }

    fn check_keys(&self, input: &Ty) -> Result<(), TypeError> {
        let Some(want) = literal::kind_of(input) else {
            return Ok(());
        };
        let Some(bad) = self
            .entries
            .iter()
            .find_map(|(k, _, _)| literal::kind(k).filter(|&k| k != want))
        else {
            return Ok(());
        };
        let help = match bad {
            Kind::Text => "write the keys without quotes",
            _ => "quote the keys",
        };
        Err(TypeError {
            message: format!(
                "`map` keys are {}, but the input is {}",
                bad.describe(),
                input.describe()
            ),
            help: Some(help.into()),
        })
    }
}

impl Function for Map {
    fn name(&self) -> &'static str {
        SIGNATURE.name
    }

    fn output(&self, input: &Ty) -> Result<Ty, TypeError> {
        self.check_keys(input)?;
        let Some(values) = self.values else {
            return Ok(input.clone());
        };
        let longest = self.text_values().map(text::char_len).max().unwrap_or(0);
        let grow = |len: &Option<u32>| len.map(|l| l.max(longest));
        let upper = self.text_values().all(|s| text::upper(s) == s);
        Ok(match (literal::kind_of(input), values) {
            (Some(Kind::Text), Kind::Text) => match input {
                Ty::Text { len } => Ty::Text { len: grow(len) },
                Ty::Code { len } if upper => Ty::Code { len: grow(len) },
                Ty::Code { len } => Ty::Text { len: grow(len) },
                other => other.clone(),
            },
            (_, Kind::Text) => Ty::Text { len: None },
            (Some(Kind::Number), Kind::Number) if *input == Ty::Decimal => Ty::Decimal,
            (_, Kind::Number) if self.whole => Ty::Integer,
            (_, Kind::Number) => Ty::Decimal,
            (_, Kind::Bool) => Ty::Boolean,
        })
    }

    fn apply(&self, value: Value) -> Result<Value, String> {
        if value.is_null() {
            return Ok(Value::Null);
        }
        let found = self
            .entries
            .iter()
            .find(|(key, key_text, _)| matches(key, key_text, &value));
        Ok(match found {
            Some((_, _, to)) => to.clone(),
            None => value,
        })
    }
}

/// Whether a value matches a key: numbers by value, everything else by text.
fn matches(key: &Arg, key_text: &str, value: &Value) -> bool {
    match (key, value) {
        (Arg::Num(k), Value::Int(i)) => *k == Decimal::from(*i),
        (Arg::Num(k), Value::Decimal(d)) => k == d,
        _ => value.as_text().is_some_and(|s| s == key_text),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{arg_err, code, run, text, ty};
    use super::*;
    use serde_json::json;

    #[test]
    fn types() {
        let yes_no = "map { 'Y' => 'Yes', 'N' => 'No' }";
        assert_eq!(ty(yes_no, text(1)), Ok(text(3)));
        assert_eq!(ty(yes_no, code(1)), Ok(text(3)));
        assert_eq!(ty("map { 'A' => 'B' }", code(1)), Ok(code(1)));
        assert_eq!(ty(yes_no, Ty::Option), Ok(Ty::Option));
        assert_eq!(ty(yes_no, Ty::Any), Ok(Ty::Text { len: None }));
        assert_eq!(ty("map { 'Ship' => 1 }", Ty::Option), Ok(Ty::Integer));
        assert_eq!(ty("map { 'Ship' => 1.5 }", Ty::Option), Ok(Ty::Decimal));
        assert_eq!(ty("map { 1 => 2 }", Ty::Decimal), Ok(Ty::Decimal));
        assert_eq!(ty("map { 1 => true }", Ty::Integer), Ok(Ty::Boolean));
        assert_eq!(ty("map { 'x' => null }", text(5)), Ok(text(5)));
    }

    #[test]
    fn type_errors() {
        let err = ty("map { 1 => 'one' }", text(5)).unwrap_err();
        assert_eq!(
            err.message,
            "`map` keys are a number, but the input is text[5]"
        );
        assert_eq!(err.help.as_deref(), Some("quote the keys"));
        let err = ty("map { '1' => 'one' }", Ty::Integer).unwrap_err();
        assert_eq!(err.help.as_deref(), Some("write the keys without quotes"));
    }

    #[test]
    fn runtime() {
        let call = "map { 1 => 'one', 2.5 => 'two and a half' }";
        assert_eq!(run(call, json!(1)), Ok(json!("one")));
        assert_eq!(run(call, json!(2.50)), Ok(json!("two and a half")));
        assert_eq!(run(call, json!("1")), Ok(json!("one")));
        assert_eq!(
            run("map { 'A' => 1, 'B' => 1.5 }", json!("A")),
            Ok(json!(1))
        );
        assert_eq!(run("map { 'a' => 'b' }", json!("A")), Ok(json!("A")));
        assert_eq!(run("map { 'a' => null }", json!("a")), Ok(json!(null)));
    }

    #[test]
    fn argument_errors() {
        assert_eq!(
            arg_err("map { 'A' => 1, 'A' => 2 }").message,
            "`map` has the key 'A' twice"
        );
        assert_eq!(
            arg_err("map { 1 => 1, 1.0 => 2 }").message,
            "`map` has the key 1.0 twice"
        );
        assert_eq!(
            arg_err("map { 'A' => 1, 'B' => 'x' }").message,
            "`map` values mix a number and text"
        );
        assert_eq!(
            arg_err("map { null => 'x' }").message,
            "`map` cannot map null"
        );
        assert_eq!(arg_err("map {}").message, "`map` has no entries");
        assert_eq!(
            arg_err("map('A')").message,
            "`map` takes a value map, got 'A'"
        );
        assert_eq!(arg_err("map").message, "`map` takes one value map, 0 given");
    }
}
