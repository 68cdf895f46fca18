//! Test helpers (a tiny parser for example calls) and tests over all signatures.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::json;

use super::*;

/// Parses a call as written in examples: `name`, `name(args)` or `map { k => v, ... }`.
pub(super) fn parse_call(call: &str) -> (String, Vec<Arg>) {
    let mut p = Parser {
        chars: call.chars().collect(),
        pos: 0,
    };
    let name: String = p.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
    p.skip_space();
    let args = match p.peek() {
        None => vec![],
        Some('(') => p.list('(', ')', Parser::literal),
        Some('{') => vec![Arg::Map(p.list('{', '}', Parser::entry))],
        Some(c) => panic!("unexpected {c:?} in {call:?}"),
    };
    p.skip_space();
    assert!(p.peek().is_none(), "trailing text in {call:?}");
    (name, args)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        self.take_while(char::is_whitespace);
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn expect(&mut self, c: char) {
        self.skip_space();
        assert_eq!(self.peek(), Some(c), "expected {c:?} at {}", self.pos);
        self.pos += 1;
    }

    fn list<T>(&mut self, open: char, close: char, item: fn(&mut Self) -> T) -> Vec<T> {
        self.expect(open);
        let mut items = Vec::new();
        self.skip_space();
        while self.peek() != Some(close) {
            if !items.is_empty() {
                self.expect(',');
            }
            items.push(item(self));
            self.skip_space();
        }
        self.expect(close);
        items
    }

    fn entry(&mut self) -> (Arg, Arg) {
        let key = self.literal();
        self.expect('=');
        self.expect('>');
        (key, self.literal())
    }

    fn literal(&mut self) -> Arg {
        self.skip_space();
        if self.peek() == Some('\'') {
            let mut s = String::new();
            self.pos += 1;
            loop {
                match self.peek().expect("unclosed string") {
                    '\'' if self.chars.get(self.pos + 1) == Some(&'\'') => {
                        s.push('\'');
                        self.pos += 2;
                    }
                    '\'' => break,
                    c => {
                        s.push(c);
                        self.pos += 1;
                    }
                }
            }
            self.pos += 1;
            return Arg::Str(s);
        }
        let word = self.take_while(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        match word.as_str() {
            "true" => Arg::Bool(true),
            "false" => Arg::Bool(false),
            "null" => Arg::Null,
            n => Arg::Num(Decimal::from_str(n).unwrap_or_else(|_| panic!("bad literal {n:?}"))),
        }
    }
}

/// Compiles a call, panicking on errors.
pub(super) fn compiled(call: &str) -> Box<dyn Function> {
    let (name, args) = parse_call(call);
    compile(&name, &args).unwrap_or_else(|e| panic!("{call}: {e:?}"))
}

/// The argument error of a call that must not compile.
pub(super) fn arg_err(call: &str) -> ArgError {
    let (name, args) = parse_call(call);
    match compile(&name, &args) {
        Err(CompileError::Arg(e)) => e,
        other => panic!("{call}: expected an argument error, got {other:?}"),
    }
}

/// The output type of a call for an input type.
pub(super) fn ty(call: &str, input: Ty) -> Result<Ty, TypeError> {
    compiled(call).output(&input)
}

/// Applies a call to a JSON value.
pub(super) fn run(call: &str, input: serde_json::Value) -> Result<serde_json::Value, String> {
    let out = compiled(call).apply(Value::from_json(&input))?;
    Ok(out.to_json())
}

/// `text[n]`.
pub(super) fn text(n: u32) -> Ty {
    Ty::Text { len: Some(n) }
}

/// `code[n]`.
pub(super) fn code(n: u32) -> Ty {
    Ty::Code { len: Some(n) }
}

/// The type the checker would give a JSON example input.
fn ty_of(v: &Value) -> Ty {
    match v {
        Value::Null => Ty::Any,
        Value::Bool(_) => Ty::Boolean,
        Value::Int(_) => Ty::Integer,
        Value::Decimal(_) => Ty::Decimal,
        Value::Date(_) => Ty::Date,
        Value::DateTime(_) => Ty::DateTime,
        Value::Text(s) => text(s.chars().count() as u32),
        Value::Guid(_) => Ty::Guid,
    }
}

/// Whether a runtime value is consistent with a checked type.
fn fits(v: &Value, ty: &Ty) -> bool {
    match (v, ty) {
        (Value::Null, _) | (_, Ty::Any) => true,
        (Value::Text(s), t) if t.is_textual() => {
            t.max_len().is_none_or(|n| s.chars().count() <= n as usize)
        }
        (Value::Int(_), Ty::Integer | Ty::Decimal) | (Value::Decimal(_), Ty::Decimal) => true,
        (Value::Bool(_), Ty::Boolean) | (Value::Date(_), Ty::Date) => true,
        (Value::DateTime(_), Ty::DateTime) => true,
        _ => false,
    }
}

/// JSON equality with numbers compared by value.
fn json_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a, b) {
        (serde_json::Value::Number(x), serde_json::Value::Number(y)) => {
            Decimal::from_str(&x.to_string()).ok() == Decimal::from_str(&y.to_string()).ok()
        }
        _ => a == b,
    }
}

#[test]
fn examples_hold() {
    for sig in signatures() {
        assert!(sig.examples.len() >= 2, "{} needs 2+ examples", sig.name);
        for ex in sig.examples {
            let f = compiled(ex.call);
            assert_eq!(f.name(), sig.name, "{}", ex.call);
            let input = Value::from_json(&serde_json::from_str(ex.input).unwrap());
            let expected: serde_json::Value = serde_json::from_str(ex.output).unwrap();
            let out = f
                .apply(input.clone())
                .unwrap_or_else(|e| panic!("{}: {e}", ex.call));
            assert!(
                json_eq(&out.to_json(), &expected),
                "{} on {}: got {}, expected {}",
                ex.call,
                ex.input,
                out.to_json(),
                ex.output
            );
            let out_ty = f.output(&ty_of(&input)).unwrap();
            assert!(
                fits(&out, &out_ty),
                "{}: {out:?} is not {out_ty:?}",
                ex.call
            );
        }
    }
}

#[test]
fn signatures_are_consistent() {
    for (i, sig) in signatures().iter().enumerate() {
        assert!(signatures()[..i].iter().all(|s| s.name != sig.name));
        assert_eq!(signature(sig.name).map(|s| s.name), Some(sig.name));
        assert!(!sig.summary.is_empty() && !sig.accepts.is_empty() && !sig.returns.is_empty());
    }
    assert_eq!(signatures().len(), 19);
    assert!(signature("nope").is_none());
    assert_eq!(compile("nope", &[]).unwrap_err(), CompileError::Unknown);
}

#[test]
fn null_in_null_out() {
    for sig in signatures() {
        let f = compiled(sig.examples[0].call);
        let out = f.apply(Value::Null).unwrap();
        assert_eq!(out.is_null(), sig.name != "default", "{}", sig.name);
    }
}

#[test]
fn any_is_never_an_error() {
    for sig in signatures() {
        for ex in sig.examples {
            assert!(compiled(ex.call).output(&Ty::Any).is_ok(), "{}", ex.call);
        }
    }
}

#[test]
fn example_parser() {
    let (name, args) = parse_call("map { 'it''s' => -1.5, true => null }");
    assert_eq!(name, "map");
    let entries = vec![
        (Arg::Str("it's".into()), Arg::Num(Decimal::new(-15, 1))),
        (Arg::Bool(true), Arg::Null),
    ];
    assert_eq!(args, vec![Arg::Map(entries.clone())]);
    assert_eq!(
        Arg::Map(entries).to_string(),
        "{ 'it''s' => -1.5, true => null }"
    );
    assert_eq!(parse_call("trim"), ("trim".into(), vec![]));
    assert_eq!(run("truncate(2)", json!("abc")), Ok(json!("ab")));
}

#[test]
fn multiply_keeps_integers_whole_and_refuses_overflow() {
    assert_eq!(run("multiply(10000)", json!(3)), Ok(json!(30000)));
    assert_eq!(run("multiply(0.5)", json!(3)), Ok(json!(1.5)));
    assert_eq!(run("multiply(-2)", json!(2.25)), Ok(json!(-4.5)));
    assert!(run("multiply(10)", json!(i64::MAX)).is_err());
    assert_eq!(
        compiled("multiply(10000)").output(&Ty::Integer),
        Ok(Ty::Integer)
    );
    assert_eq!(
        compiled("multiply(1.5)").output(&Ty::Integer),
        Ok(Ty::Decimal)
    );
    assert!(compiled("multiply(2)")
        .output(&Ty::Text { len: None })
        .is_err());
    assert!(compile("multiply", &[Arg::Str("x".into())]).is_err());
}
