//! What can go wrong in an embedded system. The messages are the ones a real system would give
//! (a rejected write) or name the file at fault (opening, seeding).

use crate::runtime::values::ValueError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("embedded store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("cannot create `{}`: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open `{}`: {source}", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// The connection settings (journal mode, timeouts) were refused.
    #[error("`{}`: {source}", path.display())]
    Configure {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// The lock that makes the first use of a database (creating it, loading its seed) one
    /// process's job.
    #[error("cannot lock `{}`: {source}", path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot move the loaded seed into `{}`: {source}", path.display())]
    PlaceSeed {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error("system `{system}` has no table `{table}`")]
    UnknownTable { system: String, table: String },
    /// A written field the table does not have.
    #[error("`{0}` is not a field of this table")]
    UnknownField(String),
    /// A looked-up field the table does not have.
    #[error("`{field}` is not a field of `{table}`")]
    UnknownFieldOf { field: String, table: String },
    #[error("field `{0}` is read-only")]
    ReadOnly(String),
    /// Dataverse creates a currency only for a code of its list of ISO currencies.
    #[error("The currency code '{0}' is not a valid ISO currency code: Dataverse creates a currency only for a code of its list of ISO currencies (isocurrencycode)")]
    UnknownCurrencyCode(String),
    #[error(transparent)]
    Value(#[from] ValueError),
    #[error("primary key field `{0}` needs a value")]
    KeyNeedsValue(String),
    #[error("a record with the same key already exists in `{0}`")]
    DuplicateKey(String),
    #[error("no record `{id}` in `{table}`")]
    NoRecord { id: String, table: String },
    #[error("no record `{id}` in `{table}` (deleted?)")]
    NoRecordToUpdate { id: String, table: String },
    #[error("a unit group needs `baseuomname`: Dataverse creates its base unit from it")]
    UnitGroupWithoutBase,
    /// InsertOptionValue on a field without an option set.
    #[error("`{entity}.{attribute}` is not an option set (choice) attribute")]
    NotAnOptionSet { entity: String, attribute: String },
    /// InsertOptionValue with a label or value the option set has already.
    #[error("the option set of `{entity}.{attribute}` already has an option {what}")]
    DuplicateOption {
        entity: String,
        attribute: String,
        what: String,
    },
}

/// A seed file or folder that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read seed `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read seed folder `{}`: {source}", path.display())]
    ReadFolder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("seed folder `{}` has no .json files", path.display())]
    NoFiles { path: PathBuf },
    #[error(
        "seed `{}` is not valid JSON: {source} (line {}, column {})",
        path.display(),
        source.line(),
        source.column()
    )]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "seed `{}`: the top level must be an object of table name -> array of records",
        path.display()
    )]
    NotAnObject { path: PathBuf },
    #[error("seed `{}`: `{table}` must be an array of records", path.display())]
    NotAnArray { path: PathBuf, table: String },
    #[error("seed `{}`: `{table}`[{index}] is not an object", path.display())]
    RecordNotAnObject {
        path: PathBuf,
        table: String,
        index: usize,
    },
    #[error("seed `{}`: `{table}`[{index}]: {source}", path.display())]
    Record {
        path: PathBuf,
        table: String,
        index: usize,
        source: Box<EmbeddedError>,
    },
}

pub type Res<T> = Result<T, EmbeddedError>;
