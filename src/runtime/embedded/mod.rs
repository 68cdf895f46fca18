//! The embedded system kind: one SQLite database per system, holding the tables of its schema
//! catalog and behaving like the real system — it stamps modified-on and modified-by on every
//! write, generates keys, checks types and lengths, keeps tombstones of deleted records, and
//! evaluates pushed-down filters.
//!
//! `open` creates the database and loads the seed; `read` and `write` are the system's own
//! operations (also used by `coupler show` / `put`); `rules` is what the real system does on its
//! own (defaults, number series, base units); `connector` serves the engine through [`Connector`].

mod codec;
mod connector;
mod contact_company;
mod error;
mod open;
mod option_sets;
mod organization;
mod read;
mod rules;
mod seed;
mod sql;
mod write;

pub use error::{EmbeddedError, SeedError};

use crate::schema::SystemKind;
use crate::schema::{Catalog, Table};
use error::Res;
use rusqlite::Connection;
use std::sync::{Arc, Mutex};

#[cfg(doc)]
use crate::runtime::connector::Connector;

pub struct EmbeddedSystem {
    pub name: String,
    pub kind: SystemKind,
    pub catalog: Arc<Catalog>,
    conn: Mutex<Connection>,
    /// Option values added to option sets (InsertOptionValue), by (table, field); kept in the
    /// database too, so a later run sees them.
    added_options: Mutex<option_sets::Added>,
    integration_user: String,
}

/// The field that identifies records: Dataverse's primary key, Business Central's SystemId.
pub fn id_field(kind: SystemKind, table: &Table) -> String {
    if kind == SystemKind::BusinessCentral && table.fields.contains_key("SystemId") {
        "SystemId".into()
    } else {
        table.key.first().cloned().unwrap_or_else(|| "id".into())
    }
}

impl EmbeddedSystem {
    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A catalog table, with the option values added to its option sets.
    fn table(&self, name: &str) -> Res<Table> {
        let table = self
            .catalog
            .table(name)
            .ok_or_else(|| EmbeddedError::UnknownTable {
                system: self.name.clone(),
                table: name.to_string(),
            })?;
        Ok(self.with_added_options(name, table))
    }
}
