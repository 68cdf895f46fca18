//! What the engine executes for one mapping and direction: field steps with their compiled
//! transforms, filters, match groups, create values, policies, deferred lookups and `split`.
//! Built by the plan compiler (`lower.rs`); the serializable parts of a `MappingPlan` are read
//! off these same structures, so what `coupler plan` shows is what `coupler run` executes.

use super::filter::Pred;
use super::{CreateValue, FieldStep, FilterPlan};
pub use crate::analysis::policy::{DeletePolicy, MissingPolicy};
use crate::analysis::{Arrow, Pipeline, Side, SideName, SystemKind};
use serde_json::Value;

/// One field step of a direction.
#[derive(Debug)]
pub struct Step {
    pub source: StepSource,
    pub target: String,
    /// Compiled once by the checker; shared by both steps of a `<->` line.
    pub transforms: Pipeline,
    pub via: Option<String>,
    /// `through T(FROM -> TO where ...)`: the value exchanged within its system around the `via`.
    pub through: Option<std::sync::Arc<ThroughRef>>,
    pub not_null: bool,
    pub clear_on_fail: bool,
    pub deferred: bool,
    /// `[parent]`: a lookup that finds nothing holds the record until its parent is coupled.
    pub parent: bool,
    /// `fields when`: the step applies to the source records that match.
    pub condition: Option<Pred>,
    /// How the plan shows the step (the transforms as written).
    pub shown: FieldStep,
    /// Where the line was written: the plan lists the steps of both directions in this order.
    pub line: u32,
}

/// `through SYSTEM.TABLE(FROM -> TO where FILTER)`, resolved: the rows of the table the filter
/// keeps pair a FROM value with a TO value.
#[derive(Debug)]
pub struct ThroughRef {
    pub system: String,
    pub table: String,
    pub from: String,
    pub to: String,
    pub filter: Option<Pred>,
    /// As written (`through bc."Contact Business Relation"(...)`): names the clause in messages.
    pub shown: String,
}

/// `split`: the rest of a long source text on extra target records.
#[derive(Debug)]
pub struct Split {
    pub field: String,
    pub length: usize,
    pub into: String,
    pub numbered: Option<String>,
    /// The fields of each extra record.
    pub steps: Vec<Step>,
}

#[derive(Debug)]
pub enum StepSource {
    Field(String),
    Const(Value),
}

/// Everything one pass (source side -> target side) of a mapping needs.
#[derive(Debug)]
pub struct Direction {
    pub mapping: String,
    /// `Forward` (left to right) or `Backward`: a pass never runs `Both`.
    pub arrow: Arrow,
    pub source: SideName,
    pub source_side: Side,
    pub target_side: Side,
    pub source_kind: SystemKind,
    pub target_kind: SystemKind,
    pub steps: Vec<Step>,
    /// Every `where` of the mapping, as written; `source_filter` and `target_filter` are theirs.
    pub filters: Vec<FilterPlan>,
    pub source_filter: Option<Pred>,
    /// The source-side `where`'s value-set tests: a record read that fails one is skipped with
    /// the reason (counted, never silently left out).
    pub source_guards: Vec<Pred>,
    pub target_filter: Option<Pred>,
    /// Match groups in priority order: (source field, target field) pairs, and case-insensitivity.
    pub couple_by: Vec<(Vec<(String, String)>, bool)>,
    pub create_values: Vec<(String, Value)>,
    /// `create values` as the plan shows them, with where they were written.
    pub create_shown: Vec<(u32, CreateValue)>,
    pub missing: MissingPolicy,
    pub conflict: Option<ConflictWinner>,
    pub delete: DeletePolicy,
    pub bidirectional: bool,
    /// The source fields this pass reads: steps, filter, match fields and the key.
    pub source_fields: Vec<String>,
    /// `couple via M`: M's couplings, and the side of M this pass reads from.
    pub borrowed: Option<(String, SideName)>,
    /// `couple via M`, and M reads the side this pass writes: a user's edit there is M's to
    /// carry over first.
    pub owner_reads_target: bool,
    /// `watermark SOURCE: none`: every run reads every record and compares values.
    pub read_all: bool,
    pub split: Option<Split>,
    /// Whether the pass's change reads leave out what the integration user changed.
    pub own_changes: OwnChanges,
}

/// Loop prevention of one pass (see `lower::own_changes_left_out`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnChanges {
    /// Changes made by the integration user are left out of incremental reads.
    LeftOut,
    /// They are read: a one-way mapping (`None`), or the line of a field that flows only out of
    /// the source side.
    Read(Option<u32>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictWinner {
    Source,
    Target,
    /// Log the conflict, change nothing.
    Nobody,
}

impl Direction {
    pub fn target(&self) -> SideName {
        self.source.other()
    }

    pub fn has_deferred(&self) -> bool {
        self.steps.iter().any(|s| s.deferred)
    }

    /// The mapping whose couplings this pass reads and writes, and the side its source is.
    pub fn couplings(&self) -> (&str, SideName) {
        match &self.borrowed {
            Some((m, side)) => (m, *side),
            None => (&self.mapping, self.source),
        }
    }

    /// The conflict policy as the plan shows it: `log`, or `SYSTEM wins`.
    pub fn conflict_text(&self) -> Option<String> {
        self.conflict.map(|w| match w {
            ConflictWinner::Nobody => "log".to_string(),
            ConflictWinner::Source => format!("{} wins", self.source_side.system),
            ConflictWinner::Target => format!("{} wins", self.target_side.system),
        })
    }

    /// The match groups as written: (left field, right field) pairs.
    pub fn couple_by_as_written(&self) -> Vec<(Vec<(String, String)>, bool)> {
        let flip = self.source == SideName::Right;
        self.couple_by
            .iter()
            .map(|(pairs, ignore_case)| {
                let pairs = pairs
                    .iter()
                    .map(|(s, t)| {
                        if flip {
                            (t.clone(), s.clone())
                        } else {
                            (s.clone(), t.clone())
                        }
                    })
                    .collect();
                (pairs, *ignore_case)
            })
            .collect()
    }
}

/// What a `via` lookup through a mapping needs to know of it, resolved by the plan compiler.
#[derive(Debug, Clone)]
pub struct LookupTarget {
    /// The system of the mapping's left side: references from it are found on the left.
    pub left_system: String,
    /// For an option mapping: the system of its option set (labels match ignoring case).
    pub option_system: Option<String>,
    /// `blank is ...`: the record a blank reference of the other system stands for.
    pub blank: Option<super::BlankRef>,
}

impl LookupTarget {
    pub fn is_options(&self) -> bool {
        self.option_system.is_some()
    }

    /// Which side of the mapping holds references of `system`.
    pub fn side_of(&self, system: &str) -> SideName {
        if self.left_system == system {
            SideName::Left
        } else {
            SideName::Right
        }
    }
}
