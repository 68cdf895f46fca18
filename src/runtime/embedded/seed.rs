//! Loading an embedded system from its seed: a JSON file, or a folder of them, whose top-level
//! object maps a table name to an array of records.

use super::{EmbeddedSystem, SeedError};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub fn load(system: &EmbeddedSystem, seed: &Path) -> Result<(), SeedError> {
    for file in seed_files(seed)? {
        let text = std::fs::read_to_string(&file).map_err(|source| SeedError::Read {
            path: file.clone(),
            source,
        })?;
        let doc: Value = serde_json::from_str(&text).map_err(|source| SeedError::Json {
            path: file.clone(),
            source,
        })?;
        let Value::Object(tables) = doc else {
            return Err(SeedError::NotAnObject { path: file });
        };
        for (table, records) in tables {
            load_table(system, &file, table, records)?;
        }
    }
    Ok(())
}

fn load_table(
    system: &EmbeddedSystem,
    file: &Path,
    table: String,
    records: Value,
) -> Result<(), SeedError> {
    let Value::Array(records) = records else {
        return Err(SeedError::NotAnArray {
            path: file.to_path_buf(),
            table,
        });
    };
    for (index, rec) in records.into_iter().enumerate() {
        let Value::Object(fields) = rec else {
            return Err(SeedError::RecordNotAnObject {
                path: file.to_path_buf(),
                table,
                index,
            });
        };
        // Seeds are the system's own data: read-only fields are written too.
        if let Err(e) = system.put_as(&table, fields, "seed", true) {
            return Err(SeedError::Record {
                path: file.to_path_buf(),
                table,
                index,
                source: Box::new(e),
            });
        }
    }
    Ok(())
}

fn seed_files(seed: &Path) -> Result<Vec<PathBuf>, SeedError> {
    let meta = std::fs::metadata(seed).map_err(|source| SeedError::Read {
        path: seed.to_path_buf(),
        source,
    })?;
    if meta.is_file() {
        return Ok(vec![seed.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(seed)
        .map_err(|source| SeedError::ReadFolder {
            path: seed.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(SeedError::NoFiles {
            path: seed.to_path_buf(),
        });
    }
    Ok(files)
}
