//! Argument checking shared by the function compilers.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::{Arg, ArgError, Signature};

/// An error about argument `i`.
pub(super) fn error(i: usize, message: String, help: Option<String>) -> ArgError {
    ArgError {
        arg: Some(i),
        message,
        help,
    }
}

/// The parameter names of a signature: `(culture[, decimals])` gives `culture`, `decimals`.
fn params(sig: &Signature) -> Vec<&'static str> {
    sig.params
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(|p| p.trim().trim_matches(['[', ']']).trim())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The name of parameter `i`, for messages.
fn param(sig: &Signature, i: usize) -> &'static str {
    params(sig).get(i).copied().unwrap_or("argument")
}

/// Checks the argument count: at least `min`, at most the number of parameters.
pub(super) fn count(sig: &Signature, args: &[Arg], min: usize) -> Result<(), ArgError> {
    let names = params(sig);
    let (max, n) = (names.len(), args.len());
    if (min..=max).contains(&n) {
        return Ok(());
    }
    let list = names.join(", ");
    let takes = match (min, max) {
        (_, 0) => "no arguments".to_string(),
        (1, 1) => format!("1 argument ({list})"),
        (a, b) if a == b => format!("{b} arguments ({list})"),
        (a, b) if a + 1 == b => format!("{a} or {b} arguments ({list})"),
        (a, b) => format!("{a} to {b} arguments ({list})"),
    };
    let help = match sig.examples.first() {
        Some(ex) => format!("for example `{}`", ex.call),
        None => format!("write it as `{}{}`", sig.name, sig.params),
    };
    Err(ArgError {
        arg: None,
        message: format!("`{}` takes {takes}, {n} given", sig.name),
        help: Some(help),
    })
}

/// Argument `i` as text.
pub(super) fn text<'a>(sig: &Signature, args: &'a [Arg], i: usize) -> Result<&'a str, ArgError> {
    let got = &args[i];
    if let Arg::Str(s) = got {
        return Ok(s);
    }
    let help = match got {
        Arg::Num(_) | Arg::Bool(_) => Some(format!("quote it: '{got}'")),
        Arg::Null => Some("use '' for empty text".to_string()),
        _ => None,
    };
    let message = format!("`{}` {} must be text, got {got}", sig.name, param(sig, i));
    Err(error(i, message, help))
}

/// Argument `i` as a whole number in `min..=max`.
pub(super) fn whole(
    sig: &Signature,
    args: &[Arg],
    i: usize,
    min: i64,
    max: i64,
) -> Result<i64, ArgError> {
    let (name, got) = (param(sig, i), &args[i]);
    let fail = |what: String, help: Option<String>| {
        Err(error(
            i,
            format!("`{}` {name} must be {what}, got {got}", sig.name),
            help,
        ))
    };
    let n = match got {
        Arg::Num(n) => *n,
        Arg::Str(s) => {
            let help = s
                .trim()
                .parse::<Decimal>()
                .ok()
                .map(|n| format!("remove the quotes: {n}"));
            return fail("a whole number".into(), help);
        }
        _ => return fail("a whole number".into(), None),
    };
    if !n.fract().is_zero() {
        return fail("a whole number".into(), Some(format!("use {}", n.round())));
    }
    match n.to_i64() {
        Some(v) if v < min => fail(format!("at least {min}"), None),
        Some(v) if v > max => fail(format!("at most {max}"), None),
        Some(v) => Ok(v),
        None => fail(format!("at most {max}"), None),
    }
}
