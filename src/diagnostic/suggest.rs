//! Did-you-mean: offers a known name only when it is close to what was written.

/// The closest candidate, if any is close enough to be a likely typo.
pub fn did_you_mean<'a, I>(written: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lowered = written.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let cand_lower = candidate.to_lowercase();
        // A difference in case alone is the closest possible match.
        let distance = if cand_lower == lowered {
            0
        } else if lowered.len() >= 3 && cand_lower.starts_with(&lowered) {
            // An abbreviation (`trunc` for `truncate`).
            1
        } else {
            strsim::damerau_levenshtein(&lowered, &cand_lower) + 1
        };
        let limit = (written.chars().count().max(3) / 3).max(1) + 1;
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// `did you mean `X`?` help text.
pub fn help_for(
    written: &str,
    candidates: impl IntoIterator<Item = impl AsRef<str>>,
) -> Option<String> {
    let owned: Vec<String> = candidates
        .into_iter()
        .map(|c| c.as_ref().to_string())
        .collect();
    did_you_mean(written, owned.iter().map(String::as_str)).map(|s| format!("did you mean `{s}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_close_names_only() {
        let names = ["Name", "No.", "Phone No.", "E-Mail"];
        assert_eq!(did_you_mean("Nmae", names), Some("Name"));
        assert_eq!(did_you_mean("name", names), Some("Name"));
        assert_eq!(did_you_mean("Phone No", names), Some("Phone No."));
        assert_eq!(did_you_mean("Address", names), None);
    }
}
