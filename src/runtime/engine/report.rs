//! What a run tells: per-record actions (for `--dry-run`) and per-mapping counters.

use crate::analysis::Arrow;
use crate::runtime::connector::Record;
use crate::runtime::state::Counts;
pub use crate::runtime::state::Leg;
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt;

/// What happened (or, in a dry run, would happen) to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Create,
    Update,
    Delete,
    Couple,
    Unchanged,
    Skip,
    Fail,
    Conflict,
    Uncouple,
    Restore,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Create => "create",
            ActionKind::Update => "update",
            ActionKind::Delete => "delete",
            ActionKind::Couple => "couple",
            ActionKind::Unchanged => "unchanged",
            ActionKind::Skip => "skip",
            ActionKind::Fail => "fail",
            ActionKind::Conflict => "conflict",
            ActionKind::Uncouple => "uncouple",
            ActionKind::Restore => "restore",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One record's fate, computed the same way for a dry run and a real one.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub mapping: String,
    pub direction: Leg,
    pub kind: ActionKind,
    pub source_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub field: String,
    pub old: Value,
    pub new: Value,
}

impl Change {
    /// The changes of `values`, each with its value in `old` (null when there is none: a create).
    pub fn list(values: &Map<String, Value>, old: Option<&Record>) -> Vec<Change> {
        values
            .iter()
            .map(|(k, v)| Change {
                field: k.clone(),
                old: old.map(|r| r.get(k).clone()).unwrap_or(Value::Null),
                new: v.clone(),
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MappingReport {
    pub mapping: String,
    pub direction: Leg,
    pub counts: Counts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: i64,
    /// The full run this run resumed as full, because it did not finish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_full: Option<i64>,
    pub dry_run: bool,
    pub mappings: Vec<MappingReport>,
}

impl RunReport {
    pub fn total(&self) -> Counts {
        let mut t = Counts::default();
        for m in &self.mappings {
            t.add(&m.counts);
        }
        t
    }

    pub fn failed(&self) -> bool {
        self.mappings
            .iter()
            .any(|m| m.counts.failed > 0 || m.error.is_some())
    }
}

/// Progress and per-record events, for the terminal and for `--dry-run`.
pub trait Observer: Send + Sync {
    /// The plan the run executes, as the engine received it.
    fn plan(&self, _plan: &crate::plan::Plan) {}
    fn started(&self, _mapping: &str, _direction: Arrow) {}
    fn progress(&self, _mapping: &str, _direction: Arrow, _records: u64) {}
    fn action(&self, _action: &Action) {}
    fn finished(&self, _report: &MappingReport) {}
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {}
