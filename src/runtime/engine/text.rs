//! The text a `split` cuts into parts.

use super::compile::Split;
use crate::runtime::connector::Record;
use serde_json::Value;

/// The parts of a text: `length` characters each (characters, not bytes).
pub fn parts(text: &str, length: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(length.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

/// The text a split reads from a record ("" when empty).
pub fn text_of(record: &Record, split: &Split) -> String {
    match record.get(&split.field) {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
