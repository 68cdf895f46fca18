//! Failed records as the state store keeps them: what failed, why (a kind the engine decides
//! on, and the message a consultant reads), since when and how often.

use crate::runtime::connector::ErrorKind;

/// Why a record failed. The engine decides on the kind, never on the message text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The endpoint did not answer in time or asked to slow down; a later run may succeed.
    Transient,
    /// The endpoint refused the record (validation, a required field, a bad value).
    Rejected,
    /// The target record no longer exists.
    Gone,
    /// The endpoint refused a change made on an outdated version (ETag).
    Conflict,
    /// The profile or the mapping does not fit the endpoint.
    Configuration,
    /// The endpoint refused the credentials.
    Authentication,
    /// A lookup found no coupled record.
    Lookup,
    /// Several uncoupled target records match: which one is meant is the consultant's call.
    Ambiguous,
    /// A value does not fit its target field.
    Value,
    /// Both sides changed since the last synchronization and nobody wins.
    UpdateConflict,
    /// The endpoint answered a batch without a result for this record.
    NoResult,
    /// Recorded before failures had kinds.
    Unknown,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Transient => "transient",
            FailureKind::Rejected => "rejected",
            FailureKind::Gone => "gone",
            FailureKind::Conflict => "conflict",
            FailureKind::Configuration => "configuration",
            FailureKind::Authentication => "authentication",
            FailureKind::Lookup => "lookup",
            FailureKind::Ambiguous => "ambiguous",
            FailureKind::Value => "value",
            FailureKind::UpdateConflict => "update-conflict",
            FailureKind::NoResult => "no-result",
            FailureKind::Unknown => "unknown",
        }
    }

    /// The kind stored as `as_str`; anything else reads as `Unknown`.
    pub fn parse(text: &str) -> FailureKind {
        const ALL: [FailureKind; 12] = [
            FailureKind::Transient,
            FailureKind::Rejected,
            FailureKind::Gone,
            FailureKind::Conflict,
            FailureKind::Configuration,
            FailureKind::Authentication,
            FailureKind::Lookup,
            FailureKind::Ambiguous,
            FailureKind::Value,
            FailureKind::UpdateConflict,
            FailureKind::NoResult,
            FailureKind::Unknown,
        ];
        ALL.into_iter()
            .find(|k| k.as_str() == text)
            .unwrap_or(FailureKind::Unknown)
    }
}

impl From<ErrorKind> for FailureKind {
    fn from(kind: ErrorKind) -> FailureKind {
        match kind {
            ErrorKind::Transient => FailureKind::Transient,
            ErrorKind::Rejected => FailureKind::Rejected,
            ErrorKind::Gone => FailureKind::Gone,
            ErrorKind::Conflict => FailureKind::Conflict,
            ErrorKind::Configuration => FailureKind::Configuration,
            ErrorKind::Authentication => FailureKind::Authentication,
        }
    }
}

/// One failed record of a run, as it is recorded.
#[derive(Clone, Copy, Debug)]
pub struct Failed<'a> {
    pub source: &'a str,
    pub target: Option<&'a str>,
    pub kind: FailureKind,
    pub message: &'a str,
}

/// A failed record as `coupler errors` lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Failure {
    pub mapping: String,
    pub direction: crate::analysis::Arrow,
    pub source_id: String,
    pub target_id: Option<String>,
    pub kind: FailureKind,
    pub message: String,
    pub first_seen: String,
    pub last_seen: String,
    pub attempts: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_back_as_they_are_stored() {
        for kind in [
            FailureKind::Transient,
            FailureKind::UpdateConflict,
            FailureKind::NoResult,
            FailureKind::Unknown,
        ] {
            assert_eq!(FailureKind::parse(kind.as_str()), kind);
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, serde_json::json!(kind.as_str()));
        }
        assert_eq!(FailureKind::parse("something else"), FailureKind::Unknown);
    }

    #[test]
    fn connector_kinds_keep_their_meaning() {
        assert_eq!(FailureKind::from(ErrorKind::Gone), FailureKind::Gone);
        assert_eq!(
            FailureKind::from(ErrorKind::Authentication),
            FailureKind::Authentication
        );
    }
}

/// Failures recorded before they had kinds read back with one after the migration.
#[cfg(test)]
mod migration {
    use crate::runtime::state::{migrations::MIGRATIONS, FailureKind, StateStore};
    use rusqlite::Connection;

    #[test]
    fn failures_of_an_older_state_get_their_kind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let old = Connection::open(&path).unwrap();
        for step in &MIGRATIONS[..4] {
            old.execute_batch(step).unwrap();
        }
        old.execute_batch(
            "PRAGMA user_version = 4;
             INSERT INTO failures (mapping, direction, source_id, target_id, message, first_seen, last_seen, attempts, run_id)
             VALUES ('CUST', '->', 'C1', 'a1', 'update conflict: both sides changed since the last synchronization', 't', 't', 1, 1),
                    ('CUST', '->', 'C2', NULL, '`ZK` has no coupled record in `SALESPEOPLE`', 't', 't', 1, 1);",
        )
        .unwrap();
        drop(old);
        let state = StateStore::open(&path, false).unwrap();
        let kinds: Vec<(String, FailureKind)> = state
            .failures(None)
            .unwrap()
            .into_iter()
            .map(|f| (f.source_id, f.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("C1".to_string(), FailureKind::UpdateConflict),
                ("C2".to_string(), FailureKind::Unknown)
            ]
        );
        assert_eq!(
            state
                .failure_kind("CUST", crate::analysis::Arrow::Forward, "C1")
                .unwrap(),
            Some(FailureKind::UpdateConflict)
        );
    }
}
