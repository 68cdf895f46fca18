//! A reference field's navigation property: the name a Dataverse lookup is written through
//! (`msdyn_Project@odata.bind`), which is not the column's logical name (`msdyn_project`) and
//! differs per target on a polymorphic lookup (`parentcustomerid_account`,
//! `parentcustomerid_contact`).

use indexmap::IndexMap;
use serde::Deserialize;

/// `nav: msdyn_Project` (one name for every target) or
/// `nav: { account: parentcustomerid_account, contact: parentcustomerid_contact }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Nav {
    One(String),
    /// Lookup target table -> navigation property.
    PerTarget(IndexMap<String, String>),
}

impl Nav {
    /// The navigation property for references to `target`.
    pub fn for_target(&self, target: &str) -> Option<&str> {
        match self {
            Nav::One(name) => Some(name),
            Nav::PerTarget(map) => map.get(target).map(String::as_str),
        }
    }

    /// Problems of a field's `nav:` against its `lookup:` targets and whether it is a
    /// reference at all.
    pub(super) fn problems(&self, field: &str, lookup: &[String], reference: bool) -> Vec<String> {
        let mut problems = Vec::new();
        if !reference {
            problems.push(format!(
                "field `{field}`: `nav` is only for reference fields (a `lookup` type or `lookup:` targets)"
            ));
        }
        match self {
            Nav::One(name) if name.trim().is_empty() => {
                problems.push(format!("field `{field}`: `nav` is empty"));
            }
            Nav::One(_) => {}
            Nav::PerTarget(map) => {
                for (target, name) in map {
                    if !lookup.contains(target) {
                        problems.push(format!(
                            "field `{field}`: `nav` names target `{target}`, which is not among its `lookup` targets"
                        ));
                    }
                    if name.trim().is_empty() {
                        problems.push(format!(
                            "field `{field}`: `nav` for target `{target}` is empty"
                        ));
                    }
                }
            }
        }
        problems
    }
}
