//! One mapping's plan: its passes (lowered once, `lower.rs`) and what the plan shows of them,
//! read off those passes; the dependencies and the clauses no pass executes.

use super::direction::{self, Direction, OwnChanges};
use super::{
    lower, BlankRef, CompanyPlan, CoupleGroup, CreateValue, Edge, FieldOverride, FieldStep,
    LeftOutLine, MappingPlan, OptionsPlan, OwnChangesPlan, Policies, Schedule, SplitPlan,
};
use crate::analysis::{Arrow, Dependency, DependencyKind, Mapping, MappingKind, Model, Side};
use crate::syntax::ast::{self, Clause, Operand};
use crate::syntax::printer;

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

pub(super) fn compile(
    model: &Model,
    m: &Mapping,
    stage: usize,
    deps: &[&Dependency],
) -> MappingPlan {
    let directions = lower::directions(model, m);
    let mut plan = MappingPlan {
        name: m.name.clone(),
        stage,
        kind: if m.is_options() { "options" } else { "table" },
        left: side_text(&m.left),
        direction: m.direction,
        right: side_text(&m.right),
        when: m.when_setting().map(|s| s.name.clone()),
        enabled: model.enabled(m),
        not_served: model.not_served(&m.name).map(|l| l.reason.clone()),
        left_out: model
            .lines_left_out(&m.name)
            .map(|l| LeftOutLine {
                field: l.what.clone(),
                reason: l.reason.clone(),
            })
            .collect(),
        depends_on: depends_on(model, m, deps),
        filters: Vec::new(),
        company: company_plans(model, m),
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
        blank: None,
        own_changes: Vec::new(),
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

/// The company scope of each side of a table mapping whose system has one.
fn company_plans(model: &Model, m: &Mapping) -> Vec<CompanyPlan> {
    if m.is_options() {
        return Vec::new();
    }
    [&m.left, &m.right]
        .into_iter()
        .flatten()
        .filter_map(|side| {
            let sys = model.systems.get(&side.system)?;
            let column = sys.company_column(&side.table)?;
            let pred = super::filter::company(column, "<company>");
            Some(CompanyPlan {
                system: side.system.clone(),
                table: side.table.clone(),
                column: column.to_string(),
                odata: pred.to_odata(sys.kind)?,
                store: pred.to_sql(sys.kind),
            })
        })
        .collect()
}

fn options_plan(m: &Mapping, o: &ast::OptionsDecl, plan: &mut MappingPlan) {
    plan.schedule = o.schedule.as_ref().map(|s| Schedule {
        every: s.every.raw.clone(),
        every_seconds: s.every.seconds,
        idle: s.idle.as_ref().map(|d| d.raw.clone()),
    });
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
        create_missing: o.create_missing.is_some(),
        also: o.also.iter().map(printer::field_ref).collect(),
        also_fields: o
            .also
            .iter()
            .map(|r| {
                let side = Side {
                    system: r.system.name.clone(),
                    table: r.table.name.clone(),
                };
                (side, r.field.name.clone())
            })
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
        through: None,
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
    plan.own_changes = plan.directions.iter().map(|d| own_changes(d)).collect();
}

fn own_changes(d: &Direction) -> OwnChangesPlan {
    let one_way = match d.own_changes {
        OwnChanges::Read(Some(line)) => d.steps.iter().find(|s| s.line == line).map(|s| {
            let s = &s.shown;
            format!("{} -> {}", s.source, s.target)
        }),
        _ => None,
    };
    OwnChangesPlan {
        reads: d.source_side.system.clone(),
        left_out: d.own_changes == OwnChanges::LeftOut,
        one_way,
    }
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
            Clause::Blank(b) => plan.blank = Some(blank_of(b)),
            _ => {}
        }
    }
}

fn blank_of(b: &ast::BlankClause) -> BlankRef {
    BlankRef {
        system: b.target.system.name.clone(),
        table: b.target.table.name.clone(),
        field: b.target.field.name.clone(),
    }
}

/// The mapping's `blank is` clause, for lookups through it.
pub(super) fn blank_ref(m: &Mapping) -> Option<BlankRef> {
    match &m.kind {
        MappingKind::Table(decl) => decl.clauses.iter().find_map(|c| match c {
            Clause::Blank(b) => Some(blank_of(b)),
            _ => None,
        }),
        MappingKind::Options(_) => None,
    }
}

fn depends_on(model: &Model, m: &Mapping, deps: &[&Dependency]) -> Vec<Edge> {
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
fn is_parent_lookup(model: &Model, m: &Mapping, target_field: &str) -> bool {
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
