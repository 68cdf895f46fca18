//! Typing and application helpers shared by the text functions.

use super::{Ty, TypeError, Value};

/// The type error for an input a function does not take, e.g. "`round` takes a number, not text[50]".
pub(super) fn not_accepted(name: &str, wants: &str, input: &Ty) -> TypeError {
    TypeError {
        message: format!("`{name}` takes {wants}, not {}", input.describe()),
        help: Some(format!("convert the value first, or remove `{name}`")),
    }
}

/// Types a text function: textual and any inputs are accepted; code stays code when `keep_code`,
/// everything else becomes text; `len` maps the input's maximum length to the output's.
pub(super) fn output(
    name: &str,
    input: &Ty,
    keep_code: bool,
    len: impl FnOnce(Option<u32>) -> Option<u32>,
) -> Result<Ty, TypeError> {
    match input {
        Ty::Code { len: l } if keep_code => Ok(Ty::Code { len: len(*l) }),
        t if t.is_textual() || *t == Ty::Any => Ok(Ty::Text {
            len: len(t.max_len()),
        }),
        t => Err(not_accepted(name, "text", t)),
    }
}

/// Applies a text function to a value's textual rendering; null stays null.
pub(super) fn apply(value: Value, f: impl FnOnce(&str) -> String) -> Result<Value, String> {
    Ok(match value.as_text() {
        None => Value::Null,
        Some(s) => Value::Text(f(&s)),
    })
}

/// Upper-cases one char, keeping it when its upper case is several chars (as .NET does, so lengths never change).
pub(super) fn upper_char(c: char) -> char {
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// Lower-cases one char, keeping it when its lower case is several chars.
pub(super) fn lower_char(c: char) -> char {
    let mut low = c.to_lowercase();
    match (low.next(), low.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// Upper-cases text char by char (length-preserving).
pub(super) fn upper(s: &str) -> String {
    s.chars().map(upper_char).collect()
}

/// The length of text in chars, as a type length.
pub(super) fn char_len(s: &str) -> u32 {
    u32::try_from(s.chars().count()).unwrap_or(u32::MAX)
}
