//! The execution plan: mappings in dependency stages, with everything a reviewer needs to know
//! what will run — filters and their pushed-down queries, field steps, lookups, deferred patches.

pub mod direction;
pub mod filter;
pub mod graph;
mod lower;
mod render;
pub mod select;

pub use render::{render_dot, render_mermaid, render_text};

pub use lower::literal_json;

use crate::analysis::{
    Arrow, DeletePolicy, DependencyKind, MappingKind, MissingPolicy, Model, Side,
};
use crate::syntax::ast::{self, Clause, Operand};
use crate::syntax::printer;
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
    pub direction: &'static str,
    pub right: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// False when its `when` setting is off: the mapping does not run.
    pub enabled: bool,
    pub depends_on: Vec<Edge>,
    pub filters: Vec<FilterPlan>,
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
    #[serde(skip)]
    pub arrow: Arrow,
    /// What the engine executes: one pass per direction (none for option mappings). The
    /// fields above that describe passes are read off these.
    #[serde(skip)]
    pub directions: Vec<Arc<Direction>>,
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
            mappings.push(compile_mapping(model, m, dense(stage_of[i]), deps));
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
            };
            (m.name.clone(), target)
        })
        .collect()
}

fn side_text(side: &Option<Side>) -> String {
    side.as_ref()
        .map(|s| {
            let quote = |n: &str| {
                printer::ident(&ast::Ident {
                    name: n.into(),
                    quoted: false,
                    span: Default::default(),
                })
            };
            format!("{}.{}", quote(&s.system), quote(&s.table))
        })
        .unwrap_or_default()
}

fn compile_mapping(
    model: &Model,
    m: &crate::analysis::Mapping,
    stage: usize,
    deps: &[&crate::analysis::Dependency],
) -> MappingPlan {
    let directions = lower::directions(model, m);
    let mut plan = MappingPlan {
        name: m.name.clone(),
        stage,
        kind: if m.is_options() { "options" } else { "table" },
        left: side_text(&m.left),
        direction: m.direction.as_str(),
        right: side_text(&m.right),
        when: m.when_setting().map(|s| s.name.clone()),
        enabled: model.enabled(m),
        depends_on: depends_on(model, m, deps),
        filters: Vec::new(),
        couple_by: Vec::new(),
        steps: Vec::new(),
        create_values: Vec::new(),
        policies: Policies {
            missing: m.policies.missing,
            conflict: (m.direction == Arrow::Both).then(|| "log".to_string()),
            delete: m.policies.delete,
        },
        schedule: None,
        keys: Vec::new(),
        watermarks: Vec::new(),
        options: None,
        couple_via: None,
        split: None,
        arrow: m.direction,
        directions,
    };
    match &m.kind {
        MappingKind::Options(o) => options_plan(m, o, &mut plan),
        MappingKind::Table(decl) => {
            shown_passes(&mut plan);
            described_clauses(decl, &mut plan);
        }
    }
    plan
}

fn options_plan(m: &crate::analysis::Mapping, o: &ast::OptionsDecl, plan: &mut MappingPlan) {
    let (Some(left), Some(right)) = (&m.left, &m.right) else {
        return;
    };
    plan.options = Some(OptionsPlan {
        key_field: o.left.field.name.clone(),
        option_field: o.right.field.name.clone(),
        pairs: o
            .pairs
            .iter()
            .map(|p| (p.code.value.clone(), p.label.value.clone()))
            .collect(),
        left: left.clone(),
        right: right.clone(),
    });
    let (source, target) = if m.direction == Arrow::Backward {
        (&o.right, &o.left)
    } else {
        (&o.left, &o.right)
    };
    plan.steps.push(FieldStep {
        direction: m.direction.as_str(),
        source: printer::field_ref(source),
        transforms: Vec::new(),
        target: printer::field_ref(target),
        via: None,
        modifiers: Vec::new(),
        when: None,
    });
}

/// What the plan shows of the passes, read off the passes the engine executes.
fn shown_passes(plan: &mut MappingPlan) {
    let Some(first) = plan.directions.first().cloned() else {
        return;
    };
    plan.filters = first.filters.clone();
    plan.couple_by = first
        .couple_by_as_written()
        .into_iter()
        .enumerate()
        .map(|(i, (pairs, ignore_case))| CoupleGroup {
            priority: i + 1,
            pairs,
            ignore_case,
        })
        .collect();
    plan.policies = Policies {
        missing: first.missing,
        conflict: first.conflict_text(),
        delete: first.delete,
    };
    // Both directions' steps and create values, in the order they were written.
    let mut steps: Vec<&direction::Step> = plan
        .directions
        .iter()
        .flat_map(|d| d.steps.iter())
        .collect();
    steps.sort_by_key(|s| s.line);
    let steps: Vec<FieldStep> = steps.into_iter().map(|s| s.shown.clone()).collect();
    let mut created: Vec<&(u32, CreateValue)> = plan
        .directions
        .iter()
        .flat_map(|d| d.create_shown.iter())
        .collect();
    created.sort_by_key(|(at, _)| *at);
    let created: Vec<CreateValue> = created.into_iter().map(|(_, c)| c.clone()).collect();
    let split = plan.directions.iter().find_map(|d| split_plan(d));
    plan.steps = steps;
    plan.create_values = created;
    plan.split = split;
}

fn split_plan(d: &Direction) -> Option<SplitPlan> {
    let sp = d.split.as_ref()?;
    let qualified = |system: &str, name: &str| {
        let ident = ast::Ident {
            name: name.into(),
            quoted: false,
            span: Default::default(),
        };
        format!("{system}.{}", printer::ident(&ident))
    };
    Some(SplitPlan {
        source: qualified(&d.source_side.system, &sp.field),
        every: sp.length,
        into: qualified(&d.target_side.system, &sp.into),
        numbered: sp
            .numbered
            .as_ref()
            .map(|n| qualified(&d.target_side.system, n)),
        steps: sp.steps.iter().map(|s| s.shown.clone()).collect(),
    })
}

/// The clauses the plan describes that are no part of a pass: schedule, overrides, `couple via`.
fn described_clauses(decl: &ast::MappingDecl, plan: &mut MappingPlan) {
    for clause in &decl.clauses {
        match clause {
            Clause::Schedule(s) => {
                plan.schedule = Some(Schedule {
                    every: s.every.raw.clone(),
                    every_seconds: s.every.seconds,
                    idle: s.idle.as_ref().map(|d| d.raw.clone()),
                })
            }
            Clause::Key(k) => plan.keys.push(FieldOverride {
                system: k.system.name.clone(),
                field: k.field.name.clone(),
            }),
            Clause::Watermark(k) => plan.watermarks.push(FieldOverride {
                system: k.system.name.clone(),
                field: k.field.name.clone(),
            }),
            Clause::CoupleVia(c) => plan.couple_via = Some(c.mapping.name.clone()),
            _ => {}
        }
    }
}

fn depends_on(
    model: &Model,
    m: &crate::analysis::Mapping,
    deps: &[&crate::analysis::Dependency],
) -> Vec<Edge> {
    let mut edges: Vec<Edge> = Vec::new();
    for d in deps.iter().filter(|d| d.kind != DependencyKind::Deferred) {
        let kind = match d.kind {
            DependencyKind::After if d.reason == "couple via" => "couple via",
            DependencyKind::After => "after",
            _ if is_parent_lookup(model, m, &d.reason) => "parent",
            _ => "via",
        };
        let field = (d.kind != DependencyKind::After).then(|| d.reason.clone());
        if !edges
            .iter()
            .any(|e| e.mapping == d.to && e.kind == kind && e.field == field)
        {
            edges.push(Edge {
                mapping: d.to.clone(),
                kind,
                field,
            });
        }
    }
    edges
}

/// A document line refers to its header: a lookup from a key field of a table whose key ends
/// in a line number (`"Document No."` of a Sales Invoice Line) is a child -> parent relation.
fn is_parent_lookup(model: &Model, m: &crate::analysis::Mapping, target_field: &str) -> bool {
    let MappingKind::Table(decl) = &m.kind else {
        return false;
    };
    let keys = |side: &Option<Side>| -> Vec<String> {
        side.as_ref()
            .and_then(|s| {
                model
                    .systems
                    .get(&s.system)?
                    .table(&s.table)
                    .map(|t| t.key.clone())
            })
            .filter(|k| k.len() > 1 && k.last().is_some_and(|f| f.to_lowercase().contains("line")))
            .unwrap_or_default()
    };
    let (lk, rk) = (keys(&m.left), keys(&m.right));
    decl.clauses.iter().any(|c| match c {
        Clause::Fields(f) => f.lines.iter().any(|l| match (&l.left, &l.right) {
            (Operand::Field(a), Operand::Field(b)) if l.via.is_some() => {
                (b.name == target_field && lk.contains(&a.name))
                    || (a.name == target_field && rk.contains(&b.name))
            }
            _ => false,
        }),
        _ => false,
    })
}

/// A predicate in the language's own syntax, for filters coupler evaluates locally.
pub(crate) fn describe_pred(p: &Pred) -> String {
    use filter::{Cmp, FValue};
    let val = |v: &FValue| match v {
        FValue::Null => "null".to_string(),
        FValue::Bool(b) => b.to_string(),
        FValue::Number(n) => n.normalize().to_string(),
        FValue::Option { label, .. } => ast::quote_str(label),
        FValue::Text(s) | FValue::Date(s) | FValue::DateTime(s) | FValue::Guid(s) => {
            ast::quote_str(s)
        }
    };
    let name = |f: &filter::Target| {
        printer::ident(&ast::Ident {
            name: f.field.clone(),
            quoted: false,
            span: Default::default(),
        })
    };
    match p {
        Pred::And { parts } => parts
            .iter()
            .map(describe_pred)
            .collect::<Vec<_>>()
            .join(" and "),
        Pred::Or { parts } => format!(
            "({})",
            parts
                .iter()
                .map(describe_pred)
                .collect::<Vec<_>>()
                .join(" or ")
        ),
        Pred::Not { inner } => format!("not ({})", describe_pred(inner)),
        Pred::Compare { field, cmp, value } => {
            let op = match cmp {
                Cmp::Eq => "==",
                Cmp::Ne => "!=",
                Cmp::Lt => "<",
                Cmp::Le => "<=",
                Cmp::Gt => ">",
                Cmp::Ge => ">=",
            };
            format!("{} {op} {}", name(field), val(value))
        }
        Pred::In {
            field,
            negated,
            values,
        } => format!(
            "{} {}in ({})",
            name(field),
            if *negated { "not " } else { "" },
            values.iter().map(val).collect::<Vec<_>>().join(", ")
        ),
    }
}
