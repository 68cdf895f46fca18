//! Step 2: the CSDL model mapped to a [`PulledCatalog`] of one system kind.

use super::csdl::{Csdl, EntityType, NavigationProperty, Property};
use super::model::{PulledCatalog, PulledField, PulledTable};
use super::render::header;
use super::{OptionSetValues, PullError, PullOptions};
use crate::schema::SystemKind;
use std::collections::{BTreeMap, BTreeSet, HashMap};

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

struct Inherited<'a> {
    key: Vec<String>,
    properties: Vec<&'a Property>,
    navigation: Vec<&'a NavigationProperty>,
}

/// An entity type's key, properties and navigation properties, base types first.
fn flatten<'a>(csdl: &'a Csdl, et: &'a EntityType) -> Inherited<'a> {
    let by_name: HashMap<&str, &EntityType> = csdl
        .entity_types
        .iter()
        .map(|t| (t.qname.as_str(), t))
        .collect();
    let mut chain = vec![et];
    let mut seen = BTreeSet::from([et.qname.as_str()]);
    let mut cur = et;
    while let Some(base) = cur.base.as_deref().and_then(|b| by_name.get(b)) {
        if !seen.insert(base.qname.as_str()) {
            break;
        }
        chain.push(base);
        cur = base;
    }
    chain.reverse();
    let mut out = Inherited {
        key: Vec::new(),
        properties: Vec::new(),
        navigation: Vec::new(),
    };
    for t in chain {
        if !t.key.is_empty() {
            out.key = t.key.clone();
        }
        out.properties.extend(t.properties.iter());
        out.navigation.extend(t.navigation.iter());
    }
    out
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
    let mut candidates = candidates(csdl, &mut header_notes)?;
    let derived = derived_types(csdl, &candidates);
    keep_only(&mut candidates, &options.only, &set_of)?;
    let cx = Tables {
        csdl,
        kind,
        derived,
        table_of: candidates
            .iter()
            .map(|(et, _)| (et.qname.as_str(), et.name.as_str()))
            .collect(),
        all_types: csdl
            .entity_types
            .iter()
            .map(|et| (et.qname.as_str(), et.name.as_str()))
            .collect(),
    };
    let mut tables = candidates
        .iter()
        .map(|(et, inh)| {
            let mut table = cx.table(et, inh)?;
            table.api = set_of.get(et.qname.as_str()).map(|s| s.to_string());
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

/// Candidate tables: concrete entity types with a key, one per name (the others are noted).
fn candidates<'a>(
    csdl: &'a Csdl,
    header_notes: &mut Vec<String>,
) -> Result<Vec<(&'a EntityType, Inherited<'a>)>, PullError> {
    let mut candidates = Vec::new();
    let mut names_taken: BTreeSet<&str> = BTreeSet::new();
    for et in &csdl.entity_types {
        if et.is_abstract {
            continue;
        }
        let inh = flatten(csdl, et);
        if inh.key.is_empty() {
            continue;
        }
        if !names_taken.insert(et.name.as_str()) {
            header_notes.push(format!(
                "Entity type `{}` (line {}) is left out: another namespace has a type of the same name.",
                et.qname, et.line
            ));
            continue;
        }
        candidates.push((et, inh));
    }
    if candidates.is_empty() {
        return Err(PullError::new(
            "the $metadata document has no entity type with a key",
            None,
        ));
    }
    Ok(candidates)
}

/// Abstract base type -> the concrete candidate types derived from it, in document order.
fn derived_types<'a>(
    csdl: &'a Csdl,
    candidates: &[(&'a EntityType, Inherited<'a>)],
) -> HashMap<&'a str, Vec<&'a str>> {
    let by_qname: HashMap<&str, &EntityType> = csdl
        .entity_types
        .iter()
        .map(|t| (t.qname.as_str(), t))
        .collect();
    let mut derived: HashMap<&str, Vec<&str>> = HashMap::new();
    for (et, _) in candidates {
        let mut seen = BTreeSet::new();
        let mut cur = *et;
        while let Some(base) = cur.base.as_deref().and_then(|b| by_qname.get(b)) {
            if !seen.insert(base.qname.as_str()) {
                break;
            }
            if base.is_abstract {
                derived
                    .entry(base.qname.as_str())
                    .or_default()
                    .push(et.qname.as_str());
            }
            cur = base;
        }
    }
    derived
}

/// `--only`: keeps the candidates named by table name or entity set name.
fn keep_only(
    candidates: &mut Vec<(&EntityType, Inherited<'_>)>,
    only: &[String],
    set_of: &HashMap<&str, &str>,
) -> Result<(), PullError> {
    if only.is_empty() {
        return Ok(());
    }
    let mut wanted = BTreeSet::new();
    for w in only {
        let found = candidates
            .iter()
            .find(|(et, _)| et.name == *w || set_of.get(et.qname.as_str()).is_some_and(|s| s == w));
        let Some((et, _)) = found else {
            let mut all: Vec<&str> = candidates.iter().map(|(e, _)| e.name.as_str()).collect();
            all.extend(set_of.values().copied());
            let hint = crate::diagnostic::suggest::did_you_mean(w, all.iter().copied())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(PullError::new(
                format!("`--only {w}`: the $metadata has no entity type or entity set `{w}`{hint}"),
                None,
            ));
        };
        wanted.insert(et.qname.clone());
    }
    candidates.retain(|(et, _)| wanted.contains(&et.qname));
    Ok(())
}

/// What every table of one pull is built with.
struct Tables<'a> {
    csdl: &'a Csdl,
    kind: SystemKind,
    /// Abstract base type -> its concrete candidate subtypes.
    derived: HashMap<&'a str, Vec<&'a str>>,
    /// Qualified name -> table name, for the tables of this catalog.
    table_of: HashMap<&'a str, &'a str>,
    /// Qualified name -> type name, for every entity type of the document.
    all_types: HashMap<&'a str, &'a str>,
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
    fn table(&self, et: &EntityType, inh: &Inherited<'_>) -> Result<PulledTable, PullError> {
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
            name: et.name.clone(),
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
        let mut targets: Vec<&str> = single_navs
            .iter()
            .filter(|n| n.constraints.iter().any(|(dep, _)| *dep == p.name))
            .map(|n| n.target.as_str())
            .collect();
        if self.kind == SystemKind::Dataverse {
            if let Some(column) = lookup_value_name(&p.name) {
                if !prop_names.contains(column) && ty == "guid" {
                    name = column.to_string();
                    built.renamed.insert(p.name.clone(), name.clone());
                    ty = "lookup";
                    if targets.is_empty() {
                        targets.extend(
                            single_navs
                                .iter()
                                .filter(|n| n.name == column)
                                .map(|n| n.target.as_str()),
                        );
                    }
                }
            }
        }
        let (lookup, missing) = self.lookup_tables(&targets);
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
            read_only,
            note,
        });
    }

    /// The tables of this catalog that lookup targets name (an abstract target, like
    /// Dataverse's `principal`, means its concrete subtypes), and the targets outside it.
    fn lookup_tables(&self, targets: &[&str]) -> (Vec<String>, Vec<String>) {
        let mut lookup: Vec<String> = Vec::new();
        let mut missing: Vec<String> = Vec::new();
        for t in targets {
            let expanded: Vec<&str> = match self.derived.get(t) {
                Some(subtypes) if !self.table_of.contains_key(t) => subtypes.clone(),
                _ => vec![t],
            };
            for q in expanded {
                match self.table_of.get(q) {
                    Some(table) => {
                        if !lookup.iter().any(|l| l == table) {
                            lookup.push(table.to_string());
                        }
                    }
                    None => {
                        let shown = self
                            .all_types
                            .get(q)
                            .copied()
                            .unwrap_or_else(|| q.rsplit('.').next().unwrap_or(q))
                            .to_string();
                        if !missing.contains(&shown) {
                            missing.push(shown);
                        }
                    }
                }
            }
        }
        (lookup, missing)
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
fn settle_option_sets(catalog: &mut PulledCatalog) {
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
