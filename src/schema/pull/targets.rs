//! Lookup targets: the navigation properties that refer through a property, resolved to the
//! tables of this catalog (an abstract target such as Dataverse's `principal` means its concrete
//! subtypes), with the navigation property per target table.

use super::csdl::NavigationProperty;
use std::collections::HashMap;

/// What a reference property's navigation properties come to in this catalog.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Resolved {
    /// Target tables, in navigation order.
    pub lookup: Vec<String>,
    /// (target table, navigation property), one per table of `lookup`.
    pub nav: Vec<(String, String)>,
    /// Targets outside this catalog, by table (or type) name.
    pub missing: Vec<String>,
}

/// What targets are resolved against.
pub(super) struct Targets<'a> {
    /// Abstract base type -> its concrete candidate subtypes.
    pub derived: HashMap<&'a str, Vec<&'a str>>,
    /// Qualified name -> table name, for the tables of this catalog.
    pub table_of: HashMap<&'a str, String>,
    /// Qualified name -> table name it would have, for every entity type of the document.
    pub all_types: HashMap<&'a str, String>,
}

impl Targets<'_> {
    pub fn resolve(&self, navs: &[&NavigationProperty]) -> Resolved {
        let mut out = Resolved::default();
        for n in navs {
            let t = n.target.as_str();
            let expanded: Vec<&str> = match self.derived.get(t) {
                Some(subtypes) if !self.table_of.contains_key(t) => subtypes.clone(),
                _ => vec![t],
            };
            for q in expanded {
                match self.table_of.get(q) {
                    Some(table) => {
                        if !out.lookup.contains(table) {
                            out.lookup.push(table.clone());
                            out.nav.push((table.clone(), n.name.clone()));
                        }
                    }
                    None => {
                        let shown = self
                            .all_types
                            .get(q)
                            .cloned()
                            .unwrap_or_else(|| q.rsplit('.').next().unwrap_or(q).to_string());
                        if !out.missing.contains(&shown) {
                            out.missing.push(shown);
                        }
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nav(name: &str, target: &str) -> NavigationProperty {
        NavigationProperty {
            name: name.into(),
            target: target.into(),
            collection: false,
            constraints: Vec::new(),
        }
    }

    #[test]
    fn an_abstract_target_is_its_subtypes_each_with_the_navigation_property() {
        let targets = Targets {
            derived: HashMap::from([("ns.principal", vec!["ns.systemuser", "ns.team"])]),
            table_of: HashMap::from([
                ("ns.systemuser", "systemuser".to_string()),
                ("ns.team", "team".to_string()),
                ("ns.account", "account".to_string()),
            ]),
            all_types: HashMap::from([("ns.businessunit", "businessunit".to_string())]),
        };
        let owner = nav("ownerid", "ns.principal");
        let unit = nav("owningbusinessunit", "ns.businessunit");
        let r = targets.resolve(&[&owner, &unit]);
        assert_eq!(r.lookup, ["systemuser", "team"]);
        assert_eq!(
            r.nav,
            [
                ("systemuser".to_string(), "ownerid".to_string()),
                ("team".to_string(), "ownerid".to_string())
            ]
        );
        assert_eq!(r.missing, ["businessunit"]);
    }
}
