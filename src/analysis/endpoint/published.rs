//! What a profile says its Business Central endpoint publishes beyond API v2.0 (custom API
//! pages): entity sets for tables and properties for fields, merged into the system's catalog
//! for that profile only.

use super::super::Model;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Table name -> what the endpoint publishes for it.
#[derive(Debug, Clone, Default)]
pub struct Published {
    pub tables: BTreeMap<String, PublishedTable>,
}

#[derive(Debug, Clone, Default)]
pub struct PublishedTable {
    /// The entity set, for a table API v2.0 has none for.
    pub entity_set: Option<String>,
    /// Field name -> API property.
    pub fields: BTreeMap<String, String>,
}

/// Merges `published` into the catalog of `system` (names the catalog does not have are
/// reported by `unknown`).
pub fn publish(model: &mut Model, system: &str, published: &Published) {
    if published.tables.is_empty() {
        return;
    }
    let Some(sys) = model.systems.get_mut(system) else {
        return;
    };
    let Some(catalog) = sys.catalog.as_mut() else {
        return;
    };
    let catalog = Arc::make_mut(catalog);
    for (name, p) in &published.tables {
        let Some(table) = catalog.tables.get_mut(name) else {
            continue;
        };
        if let Some(set) = &p.entity_set {
            table.api = Some(set.clone());
        }
        for (field, property) in &p.fields {
            if let Some(f) = table.fields.get_mut(field) {
                f.api = Some(property.clone());
            }
        }
    }
}

/// The tables and fields `published` names that the catalog of `system` does not have.
pub fn unknown(model: &Model, system: &str, published: &Published) -> Vec<String> {
    let mut out = Vec::new();
    let Some(sys) = model.systems.get(system) else {
        return out;
    };
    for (name, p) in &published.tables {
        match sys.table(name) {
            None => out.push(format!("table `{name}`")),
            Some(t) => out.extend(
                p.fields
                    .keys()
                    .filter(|f| !t.fields.contains_key(*f))
                    .map(|f| format!("field `{name}`.`{f}`")),
            ),
        }
    }
    out
}
