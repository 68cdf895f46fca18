//! Numbers that arrive as text (`"12.50"`, Edm.Decimal under `IEEE754Compatible=true`, CAP's
//! decimals) -> JSON numbers, read through `rust_decimal`, never through `f64` in our code.

use rust_decimal::Decimal;
use serde_json::{Number, Value};
use std::str::FromStr;

/// `s` as a JSON number: an integer when it is written as one, else the decimal as written;
/// None when it is not a number.
pub fn number(s: &str) -> Option<Value> {
    let s = s.trim();
    if let Ok(i) = s.parse::<i64>() {
        return Some(Value::from(i));
    }
    let d = Decimal::from_str(s)
        .or_else(|_| Decimal::from_scientific(s))
        .ok()?;
    Number::from_str(&d.to_string()).ok().map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_from_text() {
        assert_eq!(number("12"), Some(Value::from(12)));
        // Digit for digit: no f64 between the text and the JSON number.
        assert_eq!(number("12.50").unwrap().to_string(), "12.50");
        assert_eq!(number("12.000").unwrap().to_string(), "12.000");
        assert_eq!(
            number("12345678901234567.89").unwrap().to_string(),
            "12345678901234567.89"
        );
        assert_eq!(number("-0.1"), Some(serde_json::json!(-0.1)));
        assert_eq!(number("1e3"), Some(Value::from(1000)));
        assert_eq!(number("twelve"), None);
        assert_eq!(number(""), None);
    }
}
