//! Named value sets a filter can test a value against (`where bc: Code is iso4217`): standard
//! code lists kept as data with their provenance in `schemas/value-sets/`.

/// ISO 4217 currency codes (see the file's header for where the list comes from).
const ISO4217: &str = include_str!("../../schemas/value-sets/iso4217.txt");

/// A named set of values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueSet {
    pub name: &'static str,
    /// What the set is, for messages and the plan.
    pub title: &'static str,
    text: &'static str,
}

pub const ALL: [ValueSet; 1] = [ValueSet {
    name: "iso4217",
    title: "ISO 4217 currency codes",
    text: ISO4217,
}];

/// The value set of that name (names are case-sensitive, as written in the language).
pub fn find(name: &str) -> Option<ValueSet> {
    ALL.iter().copied().find(|s| s.name == name)
}

impl ValueSet {
    /// The codes of the set.
    pub fn values(self) -> impl Iterator<Item = &'static str> {
        self.text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
    }

    /// Whether `value` is a code of the set, ignoring case: the codes are upper case, and a
    /// system that stores `usd` means USD (CURRENCY couples them ignoring case too).
    pub fn contains(self, value: &str) -> bool {
        self.values().any(|v| v.eq_ignore_ascii_case(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso4217_holds_standard_codes_only() {
        let s = find("iso4217").unwrap();
        assert!(s.contains("USD") && s.contains("EUR") && s.contains("DKK"));
        assert!(s.contains("usd") && !s.contains("BTC") && !s.contains(""));
        assert!(s.values().all(|v| v.len() == 3));
    }
}
