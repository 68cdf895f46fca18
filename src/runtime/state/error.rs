//! What can go wrong with the state store. The messages are the ones a consultant reads on
//! `coupler run` / `status`; the variants let callers tell a busy state from a broken one.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create `{}`: {source}", dir.display())]
    CreateDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open lock `{}`: {source}", lock.display())]
    OpenLock {
        lock: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "another coupler run is using the state `{}`; wait for it to finish (only one run at a time may change a profile's state)",
        path.display()
    )]
    Busy { path: PathBuf },
    #[error("cannot open state `{}`: {source}", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("state `{}`: {source}", path.display())]
    Setup {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "state `{}` was written by a newer coupler (schema {version}, this one knows {known}); upgrade coupler",
        path.display()
    )]
    Newer {
        path: PathBuf,
        version: i64,
        known: i64,
    },
    #[error("state migration {step}: {source}")]
    Migration {
        step: usize,
        source: rusqlite::Error,
    },
    #[error("state store: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A JSON column (pending creates) that does not read back.
    #[error("state store: {what}: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },
}

/// `Result` of the state store.
pub type Res<T> = Result<T, StateError>;

/// The SQL error of a query, as a state error (`.map_err(err)` at each query).
pub(super) fn err(e: rusqlite::Error) -> StateError {
    StateError::Sql(e)
}
