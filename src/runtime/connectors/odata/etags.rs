//! The `@odata.etag` of every record read or written, so that an update says which version it
//! changes (`If-Match: <etag>`): a change made in between is a 412, a conflict, never a silent
//! overwrite.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;

/// Etags by (table, id).
#[derive(Debug, Default)]
pub struct Etags(Mutex<HashMap<(String, String), String>>);

impl Etags {
    /// Keeps the etag of `row` (a record as read, or as a write answered it); a row without
    /// one makes the version unknown.
    pub fn keep(&self, table: &str, id: &str, row: &Map<String, Value>) {
        match row.get("@odata.etag").and_then(Value::as_str) {
            Some(etag) => {
                self.map()
                    .insert((table.to_string(), id.to_string()), etag.to_string());
            }
            None => self.forget(table, id),
        }
    }

    pub fn get(&self, table: &str, id: &str) -> Option<String> {
        self.map()
            .get(&(table.to_string(), id.to_string()))
            .cloned()
    }

    /// The record changed in a way whose new etag is not known (a write answered without it).
    pub fn forget(&self, table: &str, id: &str) {
        self.map().remove(&(table.to_string(), id.to_string()));
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
