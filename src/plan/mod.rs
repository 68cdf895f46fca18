//! The execution plan: mappings in dependency stages, with everything a reviewer needs to know
//! what will run — filters and their pushed-down queries, field steps, lookups, deferred patches.

pub(crate) mod describe;
pub mod direction;
pub mod filter;
pub mod graph;
mod lower;
mod mapping;
mod render;
pub mod select;

pub use render::{render_dot, render_mermaid, render_text};

use crate::analysis::{Arrow, DeletePolicy, DependencyKind, MissingPolicy, Model, Side};
use direction::{Direction, LookupTarget};
use filter::Pred;
use graph::DepGraph;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Mapping names per stage, in execution order; the mappings of one stage are independent.
    pub stages: Vec<Vec<String>>,
    /// Every mapping in execution order.
    pub mappings: Vec<MappingPlan>,
    /// Deferred lookups, patched once both mappings ran.
    pub patches: Vec<Patch>,
    /// The mappings values are looked up through (`via`), selected or not.
    #[serde(skip)]
    pub lookups: HashMap<String, LookupTarget>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MappingPlan {
    pub name: String,
    /// 1-based stage.
    pub stage: usize,
    pub kind: &'static str,
    pub left: String,
    pub direction: Arrow,
    pub right: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// False when its `when` setting is off, or the profile's endpoint does not serve it: the
    /// mapping does not run.
    pub enabled: bool,
    /// Why the profile's endpoint does not serve the mapping, when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_served: Option<String>,
    /// Field lines the profile's endpoint does not serve: neither read nor written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<LeftOutLine>,
    pub depends_on: Vec<Edge>,
    pub filters: Vec<FilterPlan>,
    /// The company scope of each scoped side (`company COLUMN` on its system).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub company: Vec<CompanyPlan>,
    pub couple_by: Vec<CoupleGroup>,
    pub steps: Vec<FieldStep>,
    pub create_values: Vec<CreateValue>,
    pub policies: Policies,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    pub keys: Vec<FieldOverride>,
    pub watermarks: Vec<FieldOverride>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<OptionsPlan>,
    /// `couple via M`: the mapping whose couplings this one updates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub couple_via: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitPlan>,
    /// `blank is S.T.F`: what a blank key of the other side stands for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blank: Option<BlankRef>,
    /// Loop prevention per pass: whether its reads leave out what the integration user changed.
    pub own_changes: Vec<OwnChangesPlan>,
    /// What the engine executes: one pass per direction (none for option mappings). The
    /// fields above that describe passes are read off these.
    #[serde(skip)]
    pub directions: Vec<Arc<Direction>>,
}

/// Loop prevention of one pass, as Business Central decides it.
#[derive(Debug, Clone, Serialize)]
pub struct OwnChangesPlan {
    /// The system the pass reads.
    pub reads: String,
    /// True: incremental reads leave out what the integration user changed.
    pub left_out: bool,
    /// Why they are read in a bidirectional mapping: a field that flows only out of `reads`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub one_way: Option<String>,
}

/// `blank is SYSTEM.TABLE.FIELD`: a blank key of the mapping's other side stands for the record
/// that field of the table's (one) row names; that record stands for a blank key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlankRef {
    pub system: String,
    pub table: String,
    pub field: String,
}

impl std::fmt::Display for BlankRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.system, self.table, self.field)
    }
}

/// A field line the profile's endpoint does not serve.
#[derive(Debug, Clone, Serialize)]
pub struct LeftOutLine {
    pub field: String,
    pub reason: String,
}

/// One source record, several target records: the rest of a long text on extra records.
#[derive(Debug, Clone, Serialize)]
pub struct SplitPlan {
    pub source: String,
    pub every: usize,
    pub into: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numbered: Option<String>,
    /// The fields of each extra record (the part itself goes to `into`).
    pub steps: Vec<FieldStep>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Edge {
    pub mapping: String,
    /// `via`, `after`, or `parent` (a lookup on a key field: lines after their header).
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A side's company scope: every read takes this company's records and those of no company,
/// every write stamps the company. The company is the profile's (`company_id`).
#[derive(Debug, Clone, Serialize)]
pub struct CompanyPlan {
    pub system: String,
    pub table: String,
    pub column: String,
    /// The `$filter` part, with `<company>` for the profile's company id.
    pub odata: String,
    /// The embedded store's predicate, likewise.
    pub store: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FilterPlan {
    pub system: String,
    /// The filter as written.
    pub expression: String,
    /// The OData `$filter` the endpoint evaluates (dataverse, business_central).
    pub odata: Option<String>,
    /// What coupler evaluates itself after reading, when the API cannot.
    pub local: Option<String>,
    /// The predicate of the embedded store, as SQL.
    pub store: String,
    pub predicate: Pred,
    /// Value-set tests (`Code is iso4217`): coupler checks them on each record read, and a record
    /// they leave out is skipped with the reason. Never part of `$filter` or `store`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub value_sets: Vec<String>,
    #[serde(skip)]
    pub guards: Vec<Pred>,
    /// The filter without its value-set tests: what the endpoint or store is given.
    #[serde(skip)]
    pub rest: Option<Pred>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CoupleGroup {
    pub priority: usize,
    pub pairs: Vec<(String, String)>,
    pub ignore_case: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldStep {
    /// `->` or `<-`: a `<->` line gives one step each way.
    pub direction: &'static str,
    pub source: String,
    pub transforms: Vec<String>,
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// `through T(FROM -> TO where ...)`, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub through: Option<String>,
    pub modifiers: Vec<&'static str>,
    /// `fields when SYSTEM: EXPR`: the step applies to the source records that match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CreateValue {
    pub system: String,
    pub field: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Policies {
    /// `create` or `skip` (uncoupled source records).
    pub missing: MissingPolicy,
    /// `log`, or `SYSTEM wins`; None for one-way mappings.
    pub conflict: Option<String>,
    pub delete: DeletePolicy,
}

#[derive(Debug, Clone, Serialize)]
pub struct Schedule {
    pub every: String,
    pub every_seconds: u64,
    pub idle: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldOverride {
    pub system: String,
    pub field: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OptionsPlan {
    pub key_field: String,
    pub option_field: String,
    pub pairs: Vec<(String, String)>,
    /// `create missing`: a code with no label becomes a new option value.
    pub create_missing: bool,
    /// `also`: the option sets that get the same new values, `system.table.field`.
    pub also: Vec<String>,
    /// The same, resolved: (side, option field).
    #[serde(skip)]
    pub also_fields: Vec<(Side, String)>,
    /// The code table's side.
    #[serde(skip)]
    pub left: Side,
    /// The option set's side.
    #[serde(skip)]
    pub right: Side,
}

#[derive(Debug, Clone, Serialize)]
pub struct Patch {
    pub mapping: String,
    pub field: String,
    pub via: String,
    /// The patch runs once this (1-based) stage finished.
    pub after_stage: usize,
}

impl Plan {
    pub fn contains(&self, mapping: &str) -> bool {
        self.mapping(mapping).is_some()
    }

    pub fn mapping(&self, name: &str) -> Option<&MappingPlan> {
        self.mappings.iter().find(|m| m.name == name)
    }
}

/// Compiles a checked model (no errors) into a plan, optionally restricted to a selection.
pub fn compile(model: &Model, selection: Option<&BTreeSet<usize>>) -> Plan {
    let graph = DepGraph::build(model);
    let stage_of = graph.stages();
    let names: Vec<&String> = model.mappings.keys().collect();
    let included = |i: usize| selection.is_none_or(|s| s.contains(&i));
    // Renumber stages densely over the selection, keeping their order.
    let used: BTreeSet<usize> = (0..names.len())
        .filter(|&i| included(i))
        .map(|i| stage_of[i])
        .collect();
    let dense = |s: usize| used.iter().position(|&u| u == s).unwrap_or(0) + 1;
    let mut stages: Vec<Vec<String>> = vec![Vec::new(); used.len()];
    for (i, name) in names.iter().enumerate() {
        if included(i) {
            stages[dense(stage_of[i]) - 1].push((*name).clone());
        }
    }
    // Dependencies by mapping, so compiling stays linear in the size of the set.
    let mut deps_of: std::collections::HashMap<&str, Vec<&crate::analysis::Dependency>> =
        std::collections::HashMap::new();
    for d in &model.dependencies {
        deps_of.entry(d.from.as_str()).or_default().push(d);
    }
    let mut mappings = Vec::new();
    let mut patches = Vec::new();
    for stage in &stages {
        for name in stage {
            let i = graph.index[name].index();
            let m = &model.mappings[name.as_str()];
            let deps = deps_of
                .get(name.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default();
            mappings.push(mapping::compile(model, m, dense(stage_of[i]), deps));
            for d in deps.iter().filter(|d| d.kind == DependencyKind::Deferred) {
                let target_stage = graph
                    .index
                    .get(&d.to)
                    .map(|n| stage_of[n.index()])
                    .unwrap_or(0);
                let after = stage_of[i].max(target_stage);
                patches.push(Patch {
                    mapping: name.clone(),
                    field: d.reason.clone(),
                    via: d.to.clone(),
                    after_stage: if used.contains(&after) {
                        dense(after)
                    } else {
                        stages.len()
                    },
                });
            }
        }
    }
    let lookups = lookup_targets(model);
    Plan {
        stages,
        mappings,
        patches,
        lookups,
    }
}

/// Every mapping of the set as a lookup target: a step's `via`, or a record held last run for
/// a lookup, may go through a mapping outside the selection.
fn lookup_targets(model: &Model) -> HashMap<String, LookupTarget> {
    let system = |s: &Option<Side>| s.as_ref().map(|s| s.system.clone());
    model
        .mappings
        .values()
        .map(|m| {
            let target = LookupTarget {
                left_system: system(&m.left).unwrap_or_default(),
                option_system: system(&m.right).filter(|_| m.is_options()),
                blank: mapping::blank_ref(m),
            };
            (m.name.clone(), target)
        })
        .collect()
}
