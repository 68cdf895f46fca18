//! `blank is SYSTEM.TABLE.FIELD`: the record a blank key stands for, read once a run from the
//! one-row table that names it (Dataverse's organization and its base currency).

use super::error::{EngineError, Res};
use crate::plan::direction::LookupTarget;
use crate::plan::BlankRef;
use crate::runtime::connector::Connector;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// What a blank key stands for, per mapping; Err says why it is not known.
pub type Blanks = HashMap<String, Result<String, String>>;

/// Reads, once per distinct `blank is` target, the reference it names.
pub async fn load(
    targets: &HashMap<String, LookupTarget>,
    systems: &HashMap<String, Arc<dyn Connector>>,
) -> Blanks {
    let mut read: HashMap<String, Result<String, String>> = HashMap::new();
    let mut out = Blanks::new();
    for (mapping, t) in targets {
        let Some(b) = &t.blank else { continue };
        let key = b.to_string();
        if !read.contains_key(&key) {
            read.insert(key.clone(), read_one(b, systems).await);
        }
        out.insert(mapping.clone(), read[&key].clone());
    }
    out
}

async fn read_one(
    b: &BlankRef,
    systems: &HashMap<String, Arc<dyn Connector>>,
) -> Result<String, String> {
    let Some(connector) = systems.get(&b.system) else {
        return Err(format!("system `{}` is not bound in this run", b.system));
    };
    let rows = connector
        .find(&b.table, &[], false, None)
        .await
        .map_err(|e| format!("reading `{}.{}` failed: {e}", b.system, b.table))?;
    let value = rows.first().map(|r| r.get(&b.field).clone());
    match value {
        None => Err(format!("`{}.{}` has no record", b.system, b.table)),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(format!("`{b}` is empty")),
    }
}

/// Where `target` has a `blank is` rule: a blank value read on the blank side becomes the
/// record it stands for, and that record read on the other side becomes blank. None: the rule
/// does not apply, the value is looked up as usual.
pub fn through(
    blanks: &Blanks,
    via: &str,
    target: Option<&LookupTarget>,
    from_system: &str,
    value: &Value,
    field: &str,
) -> Res<Option<Value>> {
    let Some(b) = target.and_then(|t| t.blank.as_ref()) else {
        return Ok(None);
    };
    let known = blanks.get(via);
    if from_system != b.system {
        let blank = value.is_null() || value.as_str().is_some_and(str::is_empty);
        return match known {
            _ if !blank => Ok(None),
            Some(Ok(id)) => Ok(Some(Value::String(id.clone()))),
            Some(Err(why)) => Err(EngineError::BlankUnknown {
                field: field.to_string(),
                via: via.to_string(),
                blank: b.to_string(),
                why: why.clone(),
            }),
            None => Ok(None),
        };
    }
    match (known, value.as_str()) {
        (Some(Ok(id)), Some(v)) if v.eq_ignore_ascii_case(id) => {
            Ok(Some(Value::String(String::new())))
        }
        _ => Ok(None),
    }
}
