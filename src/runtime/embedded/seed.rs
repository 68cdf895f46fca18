//! Loading an embedded system from its seed: a JSON file, or a folder of them, whose top-level
//! object maps a table name to an array of records.

use super::EmbeddedSystem;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

pub fn load(system: &EmbeddedSystem, seed: &Path) -> Result<(), String> {
    let files = seed_files(seed)?;
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read seed `{}`: {e}", file.display()))?;
        let doc: Value = serde_json::from_str(&text).map_err(|e| {
            format!(
                "seed `{}` is not valid JSON: {e} (line {}, column {})",
                file.display(),
                e.line(),
                e.column()
            )
        })?;
        let Value::Object(tables) = doc else {
            return Err(format!(
                "seed `{}`: the top level must be an object of table name -> array of records",
                file.display()
            ));
        };
        for (table, records) in tables {
            let Value::Array(records) = records else {
                return Err(format!(
                    "seed `{}`: `{table}` must be an array of records",
                    file.display()
                ));
            };
            for (i, rec) in records.into_iter().enumerate() {
                let Value::Object(fields) = rec else {
                    return Err(format!(
                        "seed `{}`: `{table}`[{i}] is not an object",
                        file.display()
                    ));
                };
                put_seed(system, &table, fields)
                    .map_err(|e| format!("seed `{}`: `{table}`[{i}]: {e}", file.display()))?;
            }
        }
    }
    Ok(())
}

fn put_seed(
    system: &EmbeddedSystem,
    table: &str,
    fields: Map<String, Value>,
) -> Result<(), String> {
    system.put_as(table, fields, "seed", true).map(|_| ())
}

fn seed_files(seed: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(seed)
        .map_err(|e| format!("cannot read seed `{}`: {e}", seed.display()))?;
    if meta.is_file() {
        return Ok(vec![seed.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(seed)
        .map_err(|e| format!("cannot read seed folder `{}`: {e}", seed.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "seed folder `{}` has no .json files",
            seed.display()
        ));
    }
    Ok(files)
}
