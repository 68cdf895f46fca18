//! Extending option sets: the embedded Dataverse's `InsertOptionValue` (Metadata API action:
//! EntityLogicalName, AttributeLogicalName, Label, optional Value; the answer is the new value).
//! Values Dataverse chooses start at the publisher's option value prefix times 10,000 — for the
//! default publisher 100,000,000 — so a new value is the next free one from there.

use super::error::Res;
use super::{EmbeddedError, EmbeddedSystem, SystemKind};
use crate::schema::{FieldType, Table};
use indexmap::IndexMap;
use std::collections::HashMap;

/// Added values by (table, field): (label, value), in the order they were added.
pub(super) type Added = HashMap<(String, String), Vec<(String, i64)>>;

/// The first value Dataverse gives a new option of the default publisher.
const FIRST_NEW_VALUE: i64 = 100_000_000;

impl EmbeddedSystem {
    fn added(&self) -> std::sync::MutexGuard<'_, Added> {
        self.added_options.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the values added in earlier runs.
    pub(super) fn load_added_options(&self) -> Res<()> {
        let conn = self.lock();
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS \"__options\" (tbl TEXT NOT NULL, field TEXT NOT NULL, label TEXT NOT NULL, value INTEGER NOT NULL);",
        )?;
        let mut stmt =
            conn.prepare("SELECT tbl, field, label, value FROM \"__options\" ORDER BY rowid")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut added = self.added();
        for row in rows {
            let (t, f, l, v) = row?;
            added.entry((t, f)).or_default().push((l, v));
        }
        Ok(())
    }

    /// `table` with the values added to its option sets.
    pub(super) fn with_added_options(&self, name: &str, table: &Table) -> Table {
        let mut table = table.clone();
        for ((t, f), values) in self.added().iter() {
            if t != name {
                continue;
            }
            if let Some(field) = table.fields.get_mut(f) {
                let options = field.options.get_or_insert_with(IndexMap::new);
                for (l, v) in values {
                    options.insert(l.clone(), *v);
                }
            }
        }
        table
    }

    /// The values added to one option set.
    pub fn added_option_values(&self, table: &str, field: &str) -> Vec<(String, i64)> {
        self.added()
            .get(&(table.to_string(), field.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Adds a value to an option set, refusing a label or value it has already (as Dataverse does).
    pub fn insert_option(
        &self,
        table: &str,
        field: &str,
        label: &str,
        value: Option<i64>,
    ) -> Res<i64> {
        let t = self.table(table)?;
        let f = t
            .fields
            .get(field)
            .filter(|f| f.ty == FieldType::Option && self.kind == SystemKind::Dataverse)
            .ok_or_else(|| EmbeddedError::NotAnOptionSet {
                entity: table.into(),
                attribute: field.into(),
            })?;
        let options = f.options.clone().unwrap_or_default();
        let duplicate = |what: String| EmbeddedError::DuplicateOption {
            entity: table.into(),
            attribute: field.into(),
            what,
        };
        if options.keys().any(|l| l.eq_ignore_ascii_case(label)) {
            return Err(duplicate(format!("labelled '{label}'")));
        }
        let value = match value {
            Some(v) if options.values().any(|x| *x == v) => {
                return Err(duplicate(format!("of value {v}")))
            }
            Some(v) => v,
            None => options
                .values()
                .copied()
                .filter(|v| *v >= FIRST_NEW_VALUE)
                .max()
                .map_or(FIRST_NEW_VALUE, |m| m + 1),
        };
        self.lock().execute(
            "INSERT INTO \"__options\" (tbl, field, label, value) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![table, field, label, value],
        )?;
        self.added()
            .entry((table.to_string(), field.to_string()))
            .or_default()
            .push((label.to_string(), value));
        Ok(value)
    }
}
