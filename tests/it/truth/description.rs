//! Reading the recorded API description (`tests/servers/api/`, format in its README).

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/api")
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every entity set file of `service` (`business-central`, `dataverse`), by entity set name.
pub fn entity_sets(service: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(root().join(service)).expect("description folder") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !name.ends_with(".yaml") || name.starts_with("enums") {
            continue;
        }
        let v = yaml(&path);
        let set = v["entity_set"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no entity_set"));
        assert_eq!(format!("{set}.yaml"), name, "file name = entity set");
        let source = &v["source"];
        for key in ["repo", "path", "commit"] {
            assert!(
                source[key].as_str().is_some_and(|s| !s.is_empty()),
                "{name}: source.{key} (provenance) is missing"
            );
        }
        out.insert(set.to_string(), v);
    }
    out
}

/// Business Central's API enums, from every `enums*.yaml`.
pub fn enums() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("business-central")).expect("folder") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("enums") && name.ends_with(".yaml") {
            if let Some(m) = yaml(&path)["enums"].as_object() {
                out.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
    }
    out
}

/// The JSON values of an API enum.
pub fn enum_values(e: &Value) -> Vec<String> {
    e["values"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v["json"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}
