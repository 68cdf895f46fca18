//! Which entity types become tables, under which names and with which key.
//!
//! Types are told apart by qualified name (`microsoft.graph.user`, `microsoft.graph.security.user`;
//! aliases resolved by the parser). A table is named by its type's `Name`; when types of several
//! namespaces share a `Name`, the first in document order keeps it and the others are named by
//! their qualified name.

use super::csdl::{Csdl, EntityType, NavigationProperty, Property};
use super::PullError;
use crate::schema::SystemKind;
use std::collections::{BTreeSet, HashMap};

/// An entity type's key, properties and navigation properties, base types first.
pub(super) struct Inherited<'a> {
    pub key: Vec<String>,
    pub properties: Vec<&'a Property>,
    pub navigation: Vec<&'a NavigationProperty>,
}

/// A concrete entity type with a key, and its table name.
pub(super) struct Candidate<'a> {
    pub et: &'a EntityType,
    pub table: String,
    pub inh: Inherited<'a>,
}

fn by_qname(csdl: &Csdl) -> HashMap<&str, &EntityType> {
    csdl.entity_types
        .iter()
        .map(|t| (t.qname.as_str(), t))
        .collect()
}

/// The type and its base types, most derived first; a `BaseType` cycle ends the chain.
fn chain<'a>(types: &HashMap<&str, &'a EntityType>, et: &'a EntityType) -> Vec<&'a EntityType> {
    let mut chain = vec![et];
    let mut seen = BTreeSet::from([et.qname.as_str()]);
    let mut cur = et;
    while let Some(base) = cur.base.as_deref().and_then(|b| types.get(b)) {
        if !seen.insert(base.qname.as_str()) {
            break;
        }
        chain.push(base);
        cur = base;
    }
    chain
}

fn flatten<'a>(types: &HashMap<&str, &'a EntityType>, et: &'a EntityType) -> Inherited<'a> {
    let mut out = Inherited {
        key: Vec::new(),
        properties: Vec::new(),
        navigation: Vec::new(),
    };
    for t in chain(types, et).into_iter().rev() {
        if !t.key.is_empty() {
            out.key = t.key.clone();
        }
        out.properties.extend(t.properties.iter());
        out.navigation.extend(t.navigation.iter());
    }
    out
}

/// Dataverse keys every table by its primary id column, `<logical name>id` (`systemuserid`).
/// `systemuser` and `team` derive from the abstract `principal`, whose key is `ownerid` (the
/// id a lookup to either holds); such a type that inherits its key but declares its own
/// `<name>id` Guid is keyed by that. Activities (`email`: no `emailid`, key `activityid` from
/// `activitypointer`) keep the inherited key.
fn dataverse_key(et: &EntityType, inh: &mut Inherited<'_>) {
    if !et.key.is_empty() {
        return;
    }
    let own = format!("{}id", et.name);
    let declares = et
        .properties
        .iter()
        .any(|p| p.name == own && p.ty == "Edm.Guid" && !p.collection);
    if declares && inh.key != [own.clone()] {
        inh.key = vec![own];
    }
}

/// Table name per qualified type name, for every entity type of the document: candidates
/// first (document order), so a concrete type keeps its `Name` before an abstract namesake.
pub(super) fn table_names<'a>(
    csdl: &'a Csdl,
    candidates: &[&'a EntityType],
) -> HashMap<&'a str, String> {
    let mut taken: BTreeSet<&str> = BTreeSet::new();
    let mut names = HashMap::new();
    let rest = csdl
        .entity_types
        .iter()
        .filter(|et| !candidates.iter().any(|c| c.qname == et.qname));
    for et in candidates.iter().copied().chain(rest) {
        let name = if taken.insert(et.name.as_str()) {
            et.name.clone()
        } else {
            et.qname.clone()
        };
        names.entry(et.qname.as_str()).or_insert(name);
    }
    names
}

/// Candidate tables: concrete entity types with a key, named by [`table_names`]; a header note
/// for each type named by its qualified name.
pub(super) fn candidates<'a>(
    csdl: &'a Csdl,
    kind: SystemKind,
    header_notes: &mut Vec<String>,
) -> Result<Vec<Candidate<'a>>, PullError> {
    let types = by_qname(csdl);
    let mut found = Vec::new();
    for et in &csdl.entity_types {
        if et.is_abstract {
            continue;
        }
        let mut inh = flatten(&types, et);
        if inh.key.is_empty() {
            continue;
        }
        if kind == SystemKind::Dataverse {
            dataverse_key(et, &mut inh);
        }
        found.push((et, inh));
    }
    if found.is_empty() {
        return Err(PullError::new(
            "the $metadata document has no entity type with a key",
            None,
        ));
    }
    let ets: Vec<&EntityType> = found.iter().map(|(et, _)| *et).collect();
    let names = table_names(csdl, &ets);
    Ok(found
        .into_iter()
        .map(|(et, inh)| {
            let table = names[et.qname.as_str()].clone();
            if table != et.name {
                header_notes.push(format!(
                    "Entity type `{}` (line {}) is the table \"{table}\": another namespace's type is `{}`.",
                    et.qname, et.line, et.name
                ));
            }
            Candidate { et, table, inh }
        })
        .collect())
}

/// Abstract base type -> the concrete candidate types derived from it, in document order.
pub(super) fn derived_types<'a>(
    csdl: &'a Csdl,
    candidates: &[Candidate<'a>],
) -> HashMap<&'a str, Vec<&'a str>> {
    let types = by_qname(csdl);
    let mut derived: HashMap<&str, Vec<&str>> = HashMap::new();
    for c in candidates {
        for base in chain(&types, c.et).into_iter().skip(1) {
            if base.is_abstract {
                derived
                    .entry(base.qname.as_str())
                    .or_default()
                    .push(c.et.qname.as_str());
            }
        }
    }
    derived
}

/// `--only`: keeps the candidates named by table name, qualified type name or entity set name.
pub(super) fn keep_only(
    candidates: &mut Vec<Candidate<'_>>,
    only: &[String],
    set_of: &HashMap<&str, &str>,
) -> Result<(), PullError> {
    if only.is_empty() {
        return Ok(());
    }
    let mut wanted = BTreeSet::new();
    for w in only {
        let set = |c: &Candidate<'_>| set_of.get(c.et.qname.as_str()).copied();
        let found = candidates
            .iter()
            .find(|c| c.table == *w || c.et.qname == *w || set(c) == Some(w.as_str()));
        let Some(c) = found else {
            let mut all: Vec<&str> = candidates.iter().map(|c| c.table.as_str()).collect();
            all.extend(set_of.values().copied());
            let hint = crate::diagnostic::suggest::did_you_mean(w, all.iter().copied())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(PullError::new(
                format!("`--only {w}`: the $metadata has no entity type or entity set `{w}`{hint}"),
                None,
            ));
        };
        wanted.insert(c.et.qname.clone());
    }
    candidates.retain(|c| wanted.contains(&c.et.qname));
    Ok(())
}
