//! schemas/dynamics-365-sales.yaml against the Dataverse tables as Microsoft's entity reference
//! describes them (tests/servers/api/dataverse/).

use super::description::entity_sets;
use coupler::schema::{Catalog, FieldType};
use std::path::Path;

fn catalog() -> Catalog {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/dynamics-365-sales.yaml");
    Catalog::parse(&std::fs::read_to_string(path).expect("catalog")).expect("catalog parses")
}

/// The navigation property the connector binds `field` to `target` through: the catalog's
/// `nav`, else Dataverse's convention for system lookups (src/runtime/connectors/dataverse.rs).
fn bound_through(name: &str, f: &coupler::schema::Field, target: &str) -> String {
    match f.nav_for(target) {
        Some(n) => n.to_string(),
        None if f.lookup.len() > 1 && name != "ownerid" => format!("{name}_{target}"),
        None => name.to_string(),
    }
}

/// `IsValidForCreate` / `IsValidForUpdate`: a column the reference takes on create only (or on
/// update only) is marked so in the catalog, unless the catalog makes it read-only, and only
/// those are.
fn write_flags(at: &str, f: &coupler::schema::Field, p: &serde_json::Value) -> Vec<String> {
    let mut wrong = Vec::new();
    for (flag, ours) in [
        ("create_only", f.create_only),
        ("update_only", f.update_only),
    ] {
        let theirs = p[flag] == true;
        if theirs && !ours && !f.read_only {
            wrong.push(format!("{at}: {flag} in the reference, not in the catalog"));
        } else if ours && !theirs {
            wrong.push(format!("{at}: {flag} in the catalog, not in the reference"));
        }
    }
    wrong
}

/// Every catalog column is in the reference (or named as added by Business Central's
/// solution); text lengths agree; every lookup the catalog lets be written binds through the
/// navigation property the reference names for each target; a column the reference makes
/// read-only is read-only in the catalog; dates are dates and date-times date-times, the
/// DateOnly/UserLocal columns (Edm.DateTimeOffset on the API) `date` with `user_local`.
#[test]
fn every_dataverse_column_agrees_with_the_entity_reference() {
    let sets = entity_sets("dataverse");
    let mut wrong: Vec<String> = Vec::new();
    for (tname, table) in &catalog().tables {
        let Some(set) = &table.api else { continue };
        let Some(d) = sets.get(set) else {
            wrong.push(format!(
                "`{tname}`: no recorded table for entity set `{set}`"
            ));
            continue;
        };
        let in_list = |key: &str, name: &str| {
            d[key].as_array().is_some_and(|l| {
                l.iter().any(|m| {
                    m.as_str() == Some(name)
                        || m["name"].as_str() == Some(name)
                        || m.get(name).is_some()
                })
            })
        };
        for (fname, f) in &table.fields {
            let at = format!("`{tname}`.`{fname}`");
            let reference = d["lookups"]
                .get(fname.as_str())
                .or_else(|| d["properties"].get(fname.as_str()));
            if let Some(p) = reference {
                wrong.extend(write_flags(&at, f, p));
            }
            if let Some(l) = d["lookups"].get(fname.as_str()) {
                if f.ty != FieldType::Lookup {
                    wrong.push(format!(
                        "{at}: a lookup in the reference, {:?} in the catalog",
                        f.ty
                    ));
                    continue;
                }
                for target in &f.lookup {
                    match l["targets"].get(target.as_str()) {
                        None => wrong.push(format!("{at}: the reference has no target `{target}`")),
                        Some(nav) => match nav.as_str() {
                            Some(nav) if !f.read_only => {
                                let ours = bound_through(fname, f, target);
                                if ours != nav {
                                    wrong.push(format!("{at}: binds `{target}` through `{ours}`, the reference's navigation property is `{nav}`"));
                                }
                            }
                            _ => {}
                        },
                    }
                }
                continue;
            }
            if let Some(p) = d["properties"].get(fname.as_str()) {
                if p["read_only"] == true && !f.read_only {
                    wrong.push(format!(
                        "{at}: read-only in the reference, writable in the catalog"
                    ));
                }
                let user_local = p["format"] == "DateOnly" && p["behavior"] == "UserLocal";
                let want = match p["type"].as_str() {
                    Some("date") => Some((FieldType::Date, false)),
                    Some("datetime") if user_local => Some((FieldType::Date, true)),
                    Some("datetime") => Some((FieldType::Datetime, false)),
                    _ => None,
                };
                let have = (f.ty, f.user_local);
                if let Some(want) = want.filter(|w| *w != have) {
                    wrong.push(format!(
                        "{at}: {have:?} (type, user_local) in the catalog, the reference says {want:?}"
                    ));
                } else if want.is_none()
                    && (f.user_local || matches!(f.ty, FieldType::Date | FieldType::Datetime))
                {
                    wrong.push(format!(
                        "{at}: a {:?} in the catalog, a {} in the reference",
                        f.ty, p["type"]
                    ));
                }
                if f.ty == FieldType::Text {
                    if let (Some(a), Some(b)) = (f.length, p["length"].as_u64()) {
                        if u64::from(a) != b {
                            wrong.push(format!(
                                "{at}: length {a} in the catalog, {b} in the reference"
                            ));
                        }
                    }
                }
                continue;
            }
            if !in_list("not_properties", fname) && !in_list("missing", fname) {
                wrong.push(format!("{at}: not in the reference"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} disagreements:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
