//! `--option-sets`: choice values from Dataverse's Metadata API turn `integer` columns into
//! `option` columns; a shared `option_set` name is kept only where the fields agree.

use super::model::PulledCatalog;
use super::OptionSetValues;
use std::collections::BTreeMap;

/// Turns listed `integer` columns into `option` columns; returns how many it changed.
pub fn apply_option_sets(
    catalog: &mut PulledCatalog,
    sets: &BTreeMap<String, BTreeMap<String, OptionSetValues>>,
) -> usize {
    let mut applied = 0;
    for table in &mut catalog.tables {
        let Some(columns) = sets.get(&table.name) else {
            continue;
        };
        for field in &mut table.fields {
            let Some(values) = columns.get(&field.name) else {
                continue;
            };
            if !matches!(field.ty, "integer" | "option") || values.options.is_empty() {
                continue;
            }
            // Labels are map keys: make them unique and non-empty.
            let mut options: Vec<(String, i64)> = Vec::new();
            for (label, value) in &values.options {
                let mut label = label.trim().to_string();
                if label.is_empty() {
                    label = value.to_string();
                }
                if options.iter().any(|(l, _)| *l == label) {
                    label = format!("{label} ({value})");
                }
                options.push((label, *value));
            }
            field.ty = "option";
            field.options = options;
            field.option_set = values.name.clone();
            applied += 1;
        }
    }
    applied
}

/// Keeps `option_set` only where two or more fields share the name with identical options.
pub(super) fn settle_option_sets(catalog: &mut PulledCatalog) {
    let mut uses: BTreeMap<String, Vec<Vec<(String, i64)>>> = BTreeMap::new();
    for t in &catalog.tables {
        for f in &t.fields {
            if let Some(set) = &f.option_set {
                uses.entry(set.clone()).or_default().push(f.options.clone());
            }
        }
    }
    for t in &mut catalog.tables {
        for f in &mut t.fields {
            if let Some(set) = &f.option_set {
                let lists = &uses[set];
                if lists.len() < 2 || lists.iter().any(|l| *l != lists[0]) {
                    f.option_set = None;
                }
            }
        }
    }
}
