//! Step 3: the pulled catalog written as YAML, in the layout of the shipped catalogs.

use super::model::PulledCatalog;
use super::PullOptions;
use crate::schema::SystemKind;
use std::fmt::Write as _;

pub(super) fn header(
    kind: SystemKind,
    options: &PullOptions,
    applied: usize,
    catalog: &PulledCatalog,
) -> Vec<String> {
    let mut h = vec![format!(
        "{} schema catalog pulled by `coupler schema pull` from the OData $metadata (CSDL) of",
        match kind {
            SystemKind::Dataverse => "Dataverse",
            SystemKind::BusinessCentral => "Business Central",
        }
    )];
    h.push(format!(
        "  {}",
        options.source.as_deref().unwrap_or("a $metadata document")
    ));
    if !options.only.is_empty() {
        h.push(format!("Tables: only {}.", options.only.join(", ")));
    }
    h.push(String::new());
    match kind {
        SystemKind::Dataverse => {
            h.push("Table names are the entity type names (logical names); `api:` is the entity set name.".into());
            h.push("Lookup columns: `_x_value` properties become the column `x` (`type: lookup`), with the".into());
            h.push("targets of the navigation properties that refer to them.".into());
            if applied > 0 {
                h.push(format!("Choice values of {applied} column(s) come from the Metadata API (EntityDefinitions(...)/Attributes)."));
            } else {
                h.push("Choice (picklist), state and status columns are Edm.Int32 in $metadata, so they are".into());
                h.push("`integer` here: turn them into `type: option` with their values (maker portal, or".into());
                h.push("`coupler schema pull --option-sets` against the live endpoint).".into());
            }
            h.push("read_only: Core.Computed / Core.Permissions=Read annotations and the system stamps".into());
            h.push("(createdon, createdby, modifiedon, modifiedby, versionnumber, ...).".into());
        }
        SystemKind::BusinessCentral => {
            h.push("Names are the API's: tables are entity type names (`customer`), fields are API property".into());
            h.push("names, and `api:` repeats them. The AL names (Customer, \"No.\") are not in $metadata; you".into());
            h.push("may rename tables and fields to AL names, keeping `api:` as it is.".into());
            h.push("$metadata has only Edm.String: every string is `text`; make it `code` where the AL field".into());
            h.push("is Code[n]. Enum options are the API's member names and values (`_x0020_` is ' ').".into());
            h.push("read_only: Core.Computed / Core.Permissions=Read annotations and lastModifiedDateTime.".into());
        }
    }
    let no_length = catalog
        .tables
        .iter()
        .flat_map(|t| &t.fields)
        .filter(|f| f.ty == "text" && f.length.is_none())
        .count();
    if no_length > 0 {
        h.push(format!(
            "{no_length} text field(s) have no MaxLength in $metadata and so no `length`; add it by hand."
        ));
    }
    h.push("See docs/schema-catalog.md for the format.".into());
    h
}

/// A YAML scalar: plain when safe, else double-quoted.
fn scalar(s: &str) -> String {
    const RESERVED: [&str; 12] = [
        "true", "false", "yes", "no", "on", "off", "null", "y", "n", "~", "nan", "inf",
    ];
    let plain = !s.is_empty()
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn comment_line(out: &mut String, indent: &str, text: &str) {
    let text = text.replace(['\n', '\r'], " ");
    if text.is_empty() {
        let _ = writeln!(out, "{indent}#");
    } else {
        let _ = writeln!(out, "{indent}# {text}");
    }
}

/// `nav: name` when every target is written through the same navigation property, else
/// `nav: { target: name, ... }`.
fn nav(nav: &[(String, String)]) -> Option<String> {
    let (_, first) = nav.first()?;
    if nav.iter().all(|(_, n)| n == first) {
        return Some(format!("nav: {}", scalar(first)));
    }
    let per: Vec<String> = nav
        .iter()
        .map(|(t, n)| format!("{}: {}", scalar(t), scalar(n)))
        .collect();
    Some(format!("nav: {{ {} }}", per.join(", ")))
}

/// Writes the catalog as YAML, in the layout of the shipped catalogs.
pub fn render(catalog: &PulledCatalog) -> String {
    let mut out = String::new();
    for line in &catalog.header {
        comment_line(&mut out, "", line);
    }
    if !catalog.header.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "system: {}", catalog.system.as_str());
    let _ = writeln!(out, "tables:");
    for t in &catalog.tables {
        out.push('\n');
        let _ = writeln!(out, "  {}:", scalar(&t.name));
        if let Some(api) = &t.api {
            let _ = writeln!(out, "    api: {}", scalar(api));
        }
        match t.key.as_slice() {
            [one] => {
                let _ = writeln!(out, "    key: {}", scalar(one));
            }
            many => {
                let list: Vec<String> = many.iter().map(|k| scalar(k)).collect();
                let _ = writeln!(out, "    key: [ {} ]", list.join(", "));
            }
        }
        if let Some(m) = &t.modified_on {
            let _ = writeln!(out, "    modified_on: {}", scalar(m));
        }
        if let Some(m) = &t.modified_by {
            let _ = writeln!(out, "    modified_by: {}", scalar(m));
        }
        for n in &t.notes {
            comment_line(&mut out, "    ", n);
        }
        let _ = writeln!(out, "    fields:");
        for f in &t.fields {
            let mut parts = vec![format!("type: {}", f.ty)];
            if let Some(l) = f.length {
                parts.push(format!("length: {l}"));
            }
            if f.ty == "option" {
                let opts: Vec<String> = f
                    .options
                    .iter()
                    .map(|(l, v)| format!("{}: {v}", scalar(l)))
                    .collect();
                parts.push(format!("options: {{ {} }}", opts.join(", ")));
            }
            if let Some(set) = &f.option_set {
                parts.push(format!("option_set: {}", scalar(set)));
            }
            match f.lookup.as_slice() {
                [] => {}
                [one] => parts.push(format!("lookup: {}", scalar(one))),
                many => {
                    let list: Vec<String> = many.iter().map(|k| scalar(k)).collect();
                    parts.push(format!("lookup: [ {} ]", list.join(", ")));
                }
            }
            if let Some(nav) = nav(&f.nav) {
                parts.push(nav);
            }
            if f.read_only {
                parts.push("read_only: true".into());
            }
            if let Some(api) = &f.api {
                parts.push(format!("api: {}", scalar(api)));
            }
            let _ = write!(out, "      {}: {{ {} }}", scalar(&f.name), parts.join(", "));
            if let Some(note) = &f.note {
                let _ = write!(out, "   # {}", note.replace(['\n', '\r'], " "));
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_yaml_would_misread() {
        assert_eq!(scalar("account"), "account");
        assert_eq!(scalar(" "), "\" \"");
        assert_eq!(scalar("No."), "\"No.\"");
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("1abc"), "\"1abc\"");
        assert_eq!(scalar("a\"b"), "\"a\\\"b\"");
    }

    #[test]
    fn nav_is_one_name_or_one_per_target() {
        let pair = |t: &str, n: &str| (t.to_string(), n.to_string());
        assert_eq!(nav(&[]), None);
        assert_eq!(
            nav(&[pair("systemuser", "ownerid"), pair("team", "ownerid")]).as_deref(),
            Some("nav: ownerid")
        );
        assert_eq!(
            nav(&[pair("account", "p_account"), pair("contact", "p_contact")]).as_deref(),
            Some("nav: { account: p_account, contact: p_contact }")
        );
    }
}
