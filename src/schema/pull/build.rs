//! Step 2: the CSDL model mapped to a [`PulledCatalog`] of one system kind.

use super::csdl::{Csdl, EntityType, NavigationProperty, Property};
use super::model::{PulledCatalog, PulledField, PulledTable};
use super::options::{apply_option_sets, settle_option_sets};
use super::render::header;
use super::select::{candidates, derived_types, keep_only, table_names, Candidate};
use super::targets::{Resolved, Targets};
use super::{PullError, PullOptions};
use crate::schema::SystemKind;
use std::collections::{BTreeSet, HashMap};

fn edm_type(ty: &str) -> Option<&'static str> {
    Some(match ty {
        "Edm.String" => "text",
        "Edm.Guid" => "guid",
        "Edm.Byte" | "Edm.SByte" | "Edm.Int16" | "Edm.Int32" => "integer",
        "Edm.Int64" => "bigint",
        "Edm.Decimal" | "Edm.Double" | "Edm.Single" => "decimal",
        "Edm.Boolean" => "boolean",
        "Edm.Date" => "date",
        "Edm.DateTimeOffset" => "datetime",
        "Edm.TimeOfDay" => "time",
        "Edm.Duration" => "duration",
        "Edm.Binary" | "Edm.Stream" => "blob",
        _ => return None,
    })
}

/// `_x0020_` -> ` ` (XML name encoding, as Business Central writes enum members).
pub fn decode_xml_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find("_x") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let decoded = after
            .get(..5)
            .filter(|s| s.ends_with('_'))
            .and_then(|s| u32::from_str_radix(&s[..4], 16).ok())
            .and_then(char::from_u32);
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[5..];
            }
            None => {
                out.push_str("_x");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Dataverse columns the platform stamps: never a mapping's target.
const DATAVERSE_SYSTEM_STAMPS: [&str; 9] = [
    "createdon",
    "createdby",
    "createdonbehalfby",
    "modifiedon",
    "modifiedby",
    "modifiedonbehalfby",
    "versionnumber",
    "overriddencreatedon",
    "importsequencenumber",
];

/// `_parentcustomerid_value` -> `parentcustomerid`.
fn lookup_value_name(property: &str) -> Option<&str> {
    property
        .strip_prefix('_')
        .and_then(|p| p.strip_suffix("_value"))
        .filter(|p| !p.is_empty())
}

/// Maps a CSDL model to a catalog of `kind`.
pub fn build_catalog(
    csdl: &Csdl,
    kind: SystemKind,
    options: &PullOptions,
) -> Result<PulledCatalog, PullError> {
    // First set per type wins.
    let mut set_of: HashMap<&str, &str> = HashMap::new();
    for (set, ty) in &csdl.entity_sets {
        set_of.entry(ty.as_str()).or_insert(set.as_str());
    }
    let mut header_notes = Vec::new();
    let mut candidates = candidates(csdl, kind, &mut header_notes)?;
    let derived = derived_types(csdl, &candidates);
    let all: Vec<&EntityType> = candidates.iter().map(|c| c.et).collect();
    let all_types = table_names(csdl, &all);
    keep_only(&mut candidates, &options.only, &set_of)?;
    let cx = Tables {
        csdl,
        kind,
        targets: Targets {
            derived,
            table_of: candidates
                .iter()
                .map(|c| (c.et.qname.as_str(), c.table.clone()))
                .collect(),
            all_types,
        },
    };
    let mut tables = candidates
        .iter()
        .map(|c| {
            let mut table = cx.table(c)?;
            table.api = set_of.get(c.et.qname.as_str()).map(|s| s.to_string());
            Ok(table)
        })
        .collect::<Result<Vec<_>, PullError>>()?;
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    let mut catalog = PulledCatalog {
        system: kind,
        header: Vec::new(),
        tables,
    };
    let applied = apply_option_sets(&mut catalog, &options.option_sets);
    settle_option_sets(&mut catalog);
    catalog.header = header(kind, options, applied, &catalog);
    catalog.header.extend(header_notes);
    Ok(catalog)
}

/// What every table of one pull is built with.
struct Tables<'a> {
    csdl: &'a Csdl,
    kind: SystemKind,
    targets: Targets<'a>,
}

/// One table's fields as they are built: what was renamed, left out, or lost its targets.
#[derive(Default)]
struct Fields {
    fields: Vec<PulledField>,
    renamed: HashMap<String, String>,
    skipped: Vec<String>,
    dropped_targets: BTreeSet<String>,
}

impl Tables<'_> {
    /// One table (without `api:`, which the caller knows); key fields first, then document order.
    fn table(&self, c: &Candidate<'_>) -> Result<PulledTable, PullError> {
        let (et, inh) = (c.et, &c.inh);
        let single_navs: Vec<&NavigationProperty> = inh
            .navigation
            .iter()
            .copied()
            .filter(|n| !n.collection)
            .collect();
        let prop_names: BTreeSet<&str> = inh.properties.iter().map(|p| p.name.as_str()).collect();
        let mut built = Fields::default();
        for p in &inh.properties {
            self.field(p, &single_navs, &prop_names, &mut built);
        }
        let key: Vec<String> = inh
            .key
            .iter()
            .map(|k| built.renamed.get(k).cloned().unwrap_or_else(|| k.clone()))
            .collect();
        for k in &key {
            if !built.fields.iter().any(|f| f.name == *k) {
                return Err(PullError::new(
                    format!(
                        "entity type `{}`: key property `{k}` is not among its (catalogued) properties",
                        et.qname
                    ),
                    Some(et.line),
                ));
            }
        }
        let mut ordered: Vec<PulledField> = key
            .iter()
            .filter_map(|k| built.fields.iter().find(|f| f.name == *k).cloned())
            .collect();
        ordered.extend(built.fields.into_iter().filter(|f| !key.contains(&f.name)));
        let (modified_on, modified_by) = stamps(self.kind, &ordered);
        let mut notes = Vec::new();
        if !built.skipped.is_empty() {
            notes.push(format!(
                "Not catalogued (no catalog type): {}.",
                built.skipped.join(", ")
            ));
        }
        if !built.dropped_targets.is_empty() {
            notes.push(format!(
                "Lookups to tables outside this catalog were dropped: {}.",
                built
                    .dropped_targets
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(PulledTable {
            name: c.table.clone(),
            api: None,
            key,
            modified_on,
            modified_by,
            fields: ordered,
            notes,
        })
    }

    /// One property as a field, or as a skipped note when it has no catalog type.
    fn field(
        &self,
        p: &Property,
        single_navs: &[&NavigationProperty],
        prop_names: &BTreeSet<&str>,
        built: &mut Fields,
    ) {
        let mut ty_name = p.ty.clone();
        if let Some(under) = self.csdl.type_definitions.get(&ty_name) {
            ty_name = under.clone();
        }
        let (ty, enum_options) = if p.collection {
            (None, None)
        } else if let Some(e) = self.csdl.enums.get(&ty_name) {
            (Some("option"), Some(e))
        } else {
            (edm_type(&ty_name), None)
        };
        let Some(mut ty) = ty else {
            built.skipped.push(format!(
                "{} ({})",
                p.name,
                if p.collection {
                    format!("Collection({})", p.ty)
                } else {
                    p.ty.clone()
                }
            ));
            return;
        };
        let mut name = p.name.clone();
        // Navigation properties that refer through this property.
        let mut navs: Vec<&NavigationProperty> = single_navs
            .iter()
            .copied()
            .filter(|n| n.constraints.iter().any(|(dep, _)| *dep == p.name))
            .collect();
        if self.kind == SystemKind::Dataverse {
            if let Some(column) = lookup_value_name(&p.name) {
                if !prop_names.contains(column) && ty == "guid" {
                    name = column.to_string();
                    built.renamed.insert(p.name.clone(), name.clone());
                    ty = "lookup";
                    if navs.is_empty() {
                        // No referential constraint: the navigation property named like the
                        // column (`ownerid`; `msdyn_Project` for `msdyn_project`).
                        navs.extend(
                            single_navs
                                .iter()
                                .copied()
                                .filter(|n| n.name.eq_ignore_ascii_case(column)),
                        );
                    }
                }
            }
        }
        let Resolved {
            lookup,
            nav,
            missing,
        } = self.targets.resolve(&navs);
        let note = if missing.is_empty() {
            (ty == "lookup" && lookup.is_empty())
                .then(|| "target unknown: no navigation property refers to it".to_string())
        } else {
            built.dropped_targets.extend(missing.iter().cloned());
            Some(format!(
                "lookup target{} not in this catalog: {}",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", ")
            ))
        };
        let options_list: Vec<(String, i64)> = enum_options
            .map(|e| {
                e.members
                    .iter()
                    .map(|(n, v)| (decode_xml_name(n), *v))
                    .collect()
            })
            .unwrap_or_default();
        let read_only = p.read_only
            || match self.kind {
                SystemKind::Dataverse => DATAVERSE_SYSTEM_STAMPS.contains(&name.as_str()),
                SystemKind::BusinessCentral => name == "lastModifiedDateTime",
            };
        built.fields.push(PulledField {
            api: (self.kind == SystemKind::BusinessCentral).then(|| p.name.clone()),
            name,
            ty,
            length: if ty == "text" { p.max_length } else { None },
            options: options_list,
            option_set: enum_options.map(|e| e.name.clone()),
            lookup,
            // What a Dataverse lookup is written through (`nav@odata.bind`). Business Central
            // writes references by id or through `api_ref`, so its catalogs leave it out.
            nav: match self.kind {
                SystemKind::Dataverse => nav,
                SystemKind::BusinessCentral => Vec::new(),
            },
            read_only,
            note,
        });
    }
}

/// The table's modified-on and modified-by fields, where the system has them.
fn stamps(kind: SystemKind, fields: &[PulledField]) -> (Option<String>, Option<String>) {
    let has = |name: &str| {
        fields
            .iter()
            .any(|f| f.name == name)
            .then(|| name.to_string())
    };
    match kind {
        SystemKind::Dataverse => (has("modifiedon"), has("modifiedby")),
        SystemKind::BusinessCentral => (has("lastModifiedDateTime"), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_xml_names() {
        assert_eq!(decode_xml_name("_x0020_"), " ");
        assert_eq!(decode_xml_name("Credit_x0020_Memo"), "Credit Memo");
        assert_eq!(decode_xml_name("a_xZZ"), "a_xZZ");
        assert_eq!(decode_xml_name("plain"), "plain");
    }

    #[test]
    fn lookup_value_names() {
        assert_eq!(lookup_value_name("_modifiedby_value"), Some("modifiedby"));
        assert_eq!(lookup_value_name("__value"), None);
        assert_eq!(lookup_value_name("modifiedby"), None);
    }
}
