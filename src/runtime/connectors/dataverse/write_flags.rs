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

/// An update's fields as sent. A changed create-only column fails the update, naming it and
/// the value wanted; a blank one is left out: Dataverse fills such a column itself when the
/// record is made (an invoice's currency is the base currency when none is given), so a blank
/// wanted value is no change anybody made, and refusing it would block the record's other
/// columns (an invoice's totals) for good.
pub(super) fn check_update(
    t: &Table,
    set: &str,
    fields: &Map<String, Value>,
) -> Result<Map<String, Value>, ConnectorError> {
    let create_only = |name: &str| t.fields.get(name).is_some_and(|f| f.create_only);
    let fixed: Vec<String> = fields
        .iter()
        .filter(|(name, v)| create_only(name) && !is_blank(v))
        .map(|(name, v)| format!("`{name}` (now {v})"))
        .collect();
    if !fixed.is_empty() {
        return Err(ConnectorError::new(format!(
            "{} of {set} can be set only when the record is created (Dataverse: not valid for update), and the value changed; nothing of the record was written: change it back in the source, or `coupler uncouple` the pair and couple or create it anew",
            fixed.join(", ")
        )));
    }
    Ok(fields
        .iter()
        .filter(|(name, _)| !create_only(name))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect())
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
