//! A write answered without the record (204) is read back; what it wrote must be there. A
//! server (or a proxy) that answers "done" for a write it never carried out would otherwise
//! have coupler take old values as written: an edit lost without a word.

use crate::runtime::connector::Record;
use crate::runtime::values::same;
use crate::schema::{FieldType, Table};
use serde_json::{Map, Value};

/// The fields written that the record read back does not hold, as `name` (wrote …, reads …).
pub(super) fn unheld(t: &Table, written: &Map<String, Value>, back: &Record) -> Vec<String> {
    written
        .iter()
        .filter(|(name, v)| {
            let Some(f) = t.fields.get(*name) else {
                return false;
            };
            // A blank create-only or update-only column is Dataverse's to fill (an invoice's
            // base currency) or was never sent (a new record's totals).
            if (f.create_only || f.update_only) && is_blank(v) {
                return false;
            }
            let have = back.get(name);
            match f.ty {
                // Implied by the bound entity set, read from an annotation.
                FieldType::Entityname => false,
                FieldType::Lookup => !same_id(v, have),
                _ => !same(v, have),
            }
        })
        .map(|(name, v)| format!("`{name}` (wrote {v}, reads {})", back.get(name)))
        .collect()
}

fn same_id(a: &Value, b: &Value) -> bool {
    match (a.as_str(), b.as_str()) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => same(a, b),
    }
}

fn is_blank(v: &Value) -> bool {
    v.is_null() || v.as_str().is_some_and(str::is_empty)
}
