//! schemas/business-central.yaml against the Business Central API v2.0 pages as
//! microsoft/BCApps defines them (tests/servers/api/business-central/).

use super::description::{entity_sets, enum_values, enums};
use coupler::schema::{Catalog, FieldType};
use serde_json::Value;
use std::path::Path;

fn catalog() -> Catalog {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/business-central.yaml");
    Catalog::parse(&std::fs::read_to_string(path).expect("catalog")).expect("catalog parses")
}

/// The BC field a property is bound to, in the base table (buffers copy most fields by name).
fn bound_to(p: &Value) -> Option<&str> {
    p["base_field"].as_str().or_else(|| p["field"].as_str())
}

fn type_agrees(ty: FieldType, api: &str) -> bool {
    use FieldType::*;
    matches!(
        (ty, api),
        (Code | Text, "string")
            | (Decimal, "decimal")
            | (Integer, "integer")
            | (Boolean, "boolean")
            | (Date, "date")
            | (Datetime, "datetime")
            | (Guid, "guid")
            | (Option, "enum")
            | (Dateformula, "string" | "dateformula")
    )
}

/// Every `api:` and `api_ref:` binding of the catalog is a property of the recorded page, bound
/// to that field, of an agreeing type; a property the page marks read-only is read-only in the
/// catalog; a field the page does expose is not left without a binding; option labels reach
/// the API's enum values.
#[test]
fn every_business_central_binding_agrees_with_the_api_pages() {
    let sets = entity_sets("business-central");
    let enums = enums();
    let mut wrong: Vec<String> = Vec::new();
    for (tname, table) in &catalog().tables {
        let Some(set) = &table.api else { continue };
        let Some(page) = sets.get(set) else {
            wrong.push(format!(
                "`{tname}`: no recorded page for entity set `{set}`"
            ));
            continue;
        };
        let props = page["properties"].as_object().expect("properties");
        for (fname, f) in &table.fields {
            let at = format!("`{tname}`.`{fname}`");
            if let Some(r) = &f.api_ref {
                match props.get(r.as_str()) {
                    Some(p) if p["type"] == "guid" => {}
                    _ => wrong.push(format!(
                        "{at}: api_ref `{r}` is no guid property of `{set}`"
                    )),
                }
                continue;
            }
            let Some(api) = &f.api else {
                // A computed property (`computed:`) equals the field only sometimes.
                let exposed = props
                    .iter()
                    .find(|(_, p)| bound_to(p) == Some(fname) && p["computed"].is_null());
                if let Some((pname, _)) = exposed {
                    wrong.push(format!(
                        "{at}: no binding, but `{set}`.`{pname}` is bound to it"
                    ));
                }
                continue;
            };
            let Some(p) = props.get(api) else {
                wrong.push(format!("{at}: `{set}` has no property `{api}`"));
                continue;
            };
            let system = matches!(fname.as_str(), "SystemId" | "SystemModifiedAt");
            // A property the page computes (no table field) may stand for a read-only field.
            let computed = !p["computed"].is_null() && f.read_only;
            if !system && !computed && bound_to(p) != Some(fname) {
                wrong.push(format!(
                    "{at}: `{set}`.`{api}` is bound to `{}`",
                    bound_to(p).unwrap_or("?")
                ));
            }
            let ty = p["type"].as_str().unwrap_or_default();
            if !type_agrees(f.ty, ty) {
                wrong.push(format!(
                    "{at}: {:?} in the catalog, `{ty}` in the API",
                    f.ty
                ));
            }
            if p["editable"] == false && !f.read_only && !f.api_read_only && fname != "SystemId" {
                wrong.push(format!(
                    "{at}: `{set}`.`{api}` is read-only, the catalog lets it be written"
                ));
            }
            let lcy = p["blank_reads_as_local_currency"] == true;
            if lcy != f.api_local_currency {
                wrong.push(format!(
                    "{at}: `{set}`.`{api}` {} a blank as the local currency's code, the catalog's `api_local_currency` is {}",
                    if lcy { "shows" } else { "does not show" },
                    f.api_local_currency
                ));
            }
            if f.ty == FieldType::Option {
                let Some(e) = p["enum"].as_str().and_then(|e| enums.get(e)) else {
                    wrong.push(format!("{at}: the enum of `{set}`.`{api}` is not recorded"));
                    continue;
                };
                let values = enum_values(e);
                for label in f.options.iter().flat_map(|o| o.keys()) {
                    let json = f.api_value(label);
                    if !values.contains(&json) {
                        wrong.push(format!(
                            "{at}: option `{label}` travels as `{json}`, which `{set}`.`{api}` does not have ({values:?})"
                        ));
                    }
                }
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

/// A page with no modification stamp (the line pages) is read through its documents: the
/// catalog says through which field, and has no stamp bound for it.
#[test]
fn pages_without_a_stamp_are_read_through_their_documents() {
    let sets = entity_sets("business-central");
    for (tname, table) in &catalog().tables {
        let Some(page) = table.api.as_ref().and_then(|s| sets.get(s)) else {
            continue;
        };
        let stamped = page["properties"]["lastModifiedDateTime"].is_object();
        let demanded = page["requires_filter"]
            .as_array()
            .is_some_and(|r| !r.is_empty());
        assert_eq!(
            table.api_read_through.is_some(),
            !stamped || demanded,
            "`{tname}`: api_read_through"
        );
        if let Some(by) = &table.api_read_through {
            let f = &table.fields[by.as_str()];
            let r = f.api_ref.as_deref().map(String::as_str);
            let allowed: Vec<&str> = page["requires_filter"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            assert!(
                r.is_some_and(|r| allowed.contains(&r)),
                "`{tname}`.`{by}`: {r:?} not in {allowed:?}"
            );
        }
    }
}

/// An entity set that also lists rows of another kind (`also_lists:` in the recorded page:
/// salesInvoices and its drafts) is read through an `api_filter` that leaves out every status
/// only those rows have.
#[test]
fn tables_of_mixed_entity_sets_leave_the_other_rows_out() {
    let sets = entity_sets("business-central");
    let mut wrong = Vec::new();
    let mut seen = 0;
    for (tname, table) in &catalog().tables {
        let Some(set) = &table.api else { continue };
        let Some(also) = sets
            .get(set)
            .map(|d| &d["also_lists"])
            .filter(|a| !a.is_null())
        else {
            continue;
        };
        seen += 1;
        let filter = table.api_filter.as_deref().unwrap_or_default();
        for status in also["status"].as_array().into_iter().flatten() {
            let want = format!("status ne '{}'", status.as_str().unwrap_or_default());
            if !filter.contains(&want) {
                wrong.push(format!(
                    "`{tname}` reads `{set}`, which also lists {}: its api_filter `{filter}` lacks `{want}`",
                    also["what"]
                ));
            }
        }
    }
    assert!(
        seen > 0,
        "no recorded page lists other rows (salesInvoices does)"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
