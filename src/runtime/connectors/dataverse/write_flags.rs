//! Columns Dataverse takes only on create (`IsValidForUpdate` false) or only on update
//! (`IsValidForCreate` false), as the catalog marks them (`create_only`, `update_only`).
//!
//! A create sends the update-only ones in a second request once the record exists (an
//! invoice's `totalamount`); an update never sends a create-only one: a value that changed
//! fails the record, since Dataverse would refuse it or drop it without a word.

use crate::runtime::connector::ConnectorError;
use crate::schema::Table;
use serde_json::{Map, Value};

/// A create's fields: what the create takes, and the update-only ones written after it. A
/// blank update-only value is a new record's own: nothing to send.
pub(super) fn split_create(
    t: &Table,
    fields: &Map<String, Value>,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut now = Map::new();
    let mut after = Map::new();
    for (name, v) in fields {
        let update_only = t.fields.get(name).is_some_and(|f| f.update_only);
        if !update_only {
            now.insert(name.clone(), v.clone());
        } else if !is_blank(v) {
            after.insert(name.clone(), v.clone());
        }
    }
    (now, after)
}

/// An update that would change a create-only column fails, naming it and the value wanted.
pub(super) fn check_update(
    t: &Table,
    set: &str,
    fields: &Map<String, Value>,
) -> Result<(), ConnectorError> {
    let fixed: Vec<String> = fields
        .iter()
        .filter(|(name, _)| t.fields.get(*name).is_some_and(|f| f.create_only))
        .map(|(name, v)| format!("`{name}` (now {v})"))
        .collect();
    if fixed.is_empty() {
        return Ok(());
    }
    Err(ConnectorError::new(format!(
        "{} of {set} can be set only when the record is created (Dataverse: not valid for update), and the value changed; nothing of the record was written: change it back in the source, or `coupler uncouple` the pair and couple or create it anew",
        fixed.join(", ")
    )))
}

/// Whether a create's fields hold a create-only column: sent again to the record it made, the
/// create would be an update of it.
pub(super) fn holds_create_only(t: &Table, fields: &Map<String, Value>) -> bool {
    fields
        .keys()
        .any(|name| t.fields.get(name).is_some_and(|f| f.create_only))
}

fn is_blank(v: &Value) -> bool {
    v.is_null() || v.as_str().is_some_and(str::is_empty)
}
