//! What the engine executes for one mapping and direction, compiled once from the checked model:
//! field steps with their compiled transforms, filters, match groups, create values, policies.

use crate::analysis::{Mapping, MappingKind, Model, Side, SystemKind};
use crate::plan::filter::{self, Pred};
use crate::runtime::state::SideName;
use crate::syntax::ast::{
    self, Clause, ConflictPolicy, DeletePolicy, LitKind, MissingPolicy, ModifierKind, Operand,
    Policy,
};
use crate::transform::{self, Arg, Function};
use serde_json::Value;
use std::sync::Arc;

/// One field step of a direction.
pub struct Step {
    pub source: StepSource,
    pub target: String,
    pub transforms: Vec<Box<dyn Function>>,
    pub via: Option<String>,
    pub not_null: bool,
    pub clear_on_fail: bool,
    pub deferred: bool,
    /// `[parent]`: a lookup that finds nothing holds the record until its parent is coupled.
    pub parent: bool,
    /// `fields when`: the step applies to the source records that match.
    pub condition: Option<Pred>,
}

/// `split`: the rest of a long source text on extra target records.
pub struct Split {
    pub field: String,
    pub length: usize,
    pub into: String,
    pub numbered: Option<String>,
    /// The fields of each extra record.
    pub steps: Vec<Step>,
}

pub enum StepSource {
    Field(String),
    Const(Value),
}

/// Everything one pass (source side -> target side) of a mapping needs.
pub struct Direction {
    pub mapping: String,
    /// `->` (left to right) or `<-`.
    pub arrow: &'static str,
    pub source: SideName,
    pub source_side: Side,
    pub target_side: Side,
    pub source_kind: SystemKind,
    pub target_kind: SystemKind,
    pub steps: Vec<Step>,
    pub source_filter: Option<Pred>,
    pub target_filter: Option<Pred>,
    /// Match groups in priority order: (source field, target field) pairs, and case-insensitivity.
    pub couple_by: Vec<(Vec<(String, String)>, bool)>,
    pub create_values: Vec<(String, Value)>,
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
}

pub fn literal_json(l: &ast::Literal) -> Value {
    match &l.kind {
        LitKind::Str(s) => Value::String(s.clone()),
        LitKind::Num(raw, _) => serde_json::from_str(raw).unwrap_or(Value::Null),
        LitKind::Bool(b) => Value::Bool(*b),
        LitKind::Null => Value::Null,
    }
}

fn lit_arg(l: &ast::Literal) -> Arg {
    match &l.kind {
        LitKind::Str(s) => Arg::Str(s.clone()),
        LitKind::Num(_, d) => Arg::Num(*d),
        LitKind::Bool(b) => Arg::Bool(*b),
        LitKind::Null => Arg::Null,
    }
}

fn compile_calls(calls: &[ast::Call]) -> Vec<Box<dyn Function>> {
    calls
        .iter()
        .filter_map(|c| {
            let args: Vec<Arg> = match &c.map {
                Some(entries) => vec![Arg::Map(
                    entries
                        .iter()
                        .map(|e| (lit_arg(&e.from), lit_arg(&e.to)))
                        .collect(),
                )],
                None => c.args.iter().map(lit_arg).collect(),
            };
            // The checker proved every call compiles.
            transform::compile(&c.name.name, &args).ok()
        })
        .collect()
}

/// The passes of a table mapping, in execution order (left to right first).
pub fn directions(model: &Model, m: &Mapping) -> Vec<Arc<Direction>> {
    let MappingKind::Table(decl) = &m.kind else {
        return Vec::new();
    };
    let (Some(left), Some(right)) = (&m.left, &m.right) else {
        return Vec::new();
    };
    let kind = |s: &Side| {
        model
            .systems
            .get(&s.system)
            .map(|x| x.kind)
            .unwrap_or(SystemKind::Dataverse)
    };
    let mut out = Vec::new();
    for (forward, flows) in [
        (true, m.direction.flows_forward()),
        (false, m.direction.flows_backward()),
    ] {
        if !flows {
            continue;
        }
        let (source, source_side, target_side) = if forward {
            (SideName::Left, left.clone(), right.clone())
        } else {
            (SideName::Right, right.clone(), left.clone())
        };
        let mut d = Direction {
            mapping: m.name.clone(),
            arrow: if forward { "->" } else { "<-" },
            source,
            source_kind: kind(&source_side),
            target_kind: kind(&target_side),
            source_side,
            target_side,
            steps: Vec::new(),
            source_filter: None,
            target_filter: None,
            couple_by: Vec::new(),
            create_values: Vec::new(),
            missing: MissingPolicy::Create,
            conflict: None,
            delete: DeletePolicy::Ignore,
            bidirectional: m.direction == ast::Direction::Both,
            source_fields: Vec::new(),
            borrowed: None,
            owner_reads_target: false,
            read_all: false,
            split: None,
        };
        if d.bidirectional {
            d.conflict = Some(ConflictWinner::Nobody);
        }
        for clause in &decl.clauses {
            match clause {
                Clause::Where(w) => {
                    let pred = filter::resolve(
                        model,
                        if w.system.name == d.source_side.system {
                            &d.source_side
                        } else {
                            &d.target_side
                        },
                        &w.expr,
                    );
                    if w.system.name == d.source_side.system {
                        d.source_filter = Some(pred);
                    } else {
                        d.target_filter = Some(pred);
                    }
                }
                Clause::Couple(c) => {
                    let pairs = c
                        .pairs
                        .iter()
                        .map(|p| {
                            if forward {
                                (p.left.name.clone(), p.right.name.clone())
                            } else {
                                (p.right.name.clone(), p.left.name.clone())
                            }
                        })
                        .collect();
                    d.couple_by.push((pairs, c.ignore_case));
                }
                Clause::CreateValues(c) if c.system.name == d.target_side.system => {
                    for v in &c.values {
                        d.create_values
                            .push((v.field.name.clone(), literal_json(&v.value)));
                    }
                }
                Clause::Policy(p) => match &p.policy {
                    Policy::Missing(x) => d.missing = *x,
                    Policy::Conflict(ConflictPolicy::Log) => {
                        d.conflict = Some(ConflictWinner::Nobody)
                    }
                    Policy::Conflict(ConflictPolicy::Wins(s)) => {
                        d.conflict = Some(if s.name == d.source_side.system {
                            ConflictWinner::Source
                        } else {
                            ConflictWinner::Target
                        })
                    }
                    Policy::Delete(x) => d.delete = *x,
                },
                Clause::Fields(f) => {
                    let condition = match &f.condition {
                        // A condition reads the source record: in the other direction the
                        // block has no lines (the checker proved it).
                        Some(c) if c.system.name != d.source_side.system => continue,
                        Some(c) => Some(filter::resolve(model, &d.source_side, &c.expr)),
                        None => None,
                    };
                    d.steps
                        .extend(compile_lines(&f.lines, forward, condition.as_ref()));
                }
                Clause::CoupleVia(c) => {
                    let side = model.mappings.get(&c.mapping.name).and_then(|o| {
                        if o.left.as_ref() == Some(&d.source_side) {
                            Some(SideName::Left)
                        } else if o.right.as_ref() == Some(&d.source_side) {
                            Some(SideName::Right)
                        } else {
                            None
                        }
                    });
                    if let Some(side) = side {
                        d.borrowed = Some((c.mapping.name.clone(), side));
                        let owner = &model.mappings[&c.mapping.name].direction;
                        d.owner_reads_target = match side.other() {
                            SideName::Left => owner.flows_forward(),
                            SideName::Right => owner.flows_backward(),
                        };
                    }
                }
                Clause::Watermark(w)
                    if w.system.name == d.source_side.system
                        && !w.field.quoted
                        && w.field.name == "none" =>
                {
                    d.read_all = true;
                }
                Clause::Split(sp) => {
                    d.split = Some(Split {
                        field: sp.field.name.clone(),
                        length: sp.length(),
                        into: sp.into.name.clone(),
                        numbered: sp.numbered.as_ref().map(|n| n.name.clone()),
                        steps: compile_lines(&sp.body.lines, forward, None),
                    });
                }
                _ => {}
            }
        }
        d.source_fields = source_fields(model, &d);
        out.push(Arc::new(d));
    }
    out
}

/// The steps of field lines that flow in this direction.
fn compile_lines(lines: &[ast::FieldLine], forward: bool, condition: Option<&Pred>) -> Vec<Step> {
    let mut steps = Vec::new();
    for line in lines {
        let flows = if forward {
            line.arrow.dir.flows_forward()
        } else {
            line.arrow.dir.flows_backward()
        };
        if !flows {
            continue;
        }
        let (src, tgt) = if forward {
            (&line.left, &line.right)
        } else {
            (&line.right, &line.left)
        };
        let Operand::Field(target) = tgt else {
            continue;
        };
        let has = |k| line.modifiers.iter().any(|m| m.kind == Some(k));
        steps.push(Step {
            source: match src {
                Operand::Field(f) => StepSource::Field(f.name.clone()),
                Operand::Const(l) => StepSource::Const(literal_json(l)),
            },
            target: target.name.clone(),
            transforms: compile_calls(&line.transforms),
            via: line.via.as_ref().map(|v| v.name.clone()),
            not_null: has(ModifierKind::NotNull),
            clear_on_fail: has(ModifierKind::ClearOnFail),
            deferred: has(ModifierKind::Deferred),
            parent: has(ModifierKind::Parent),
            condition: condition.cloned(),
        });
    }
    steps
}

fn source_fields(model: &Model, d: &Direction) -> Vec<String> {
    let mut fields: Vec<String> = Vec::new();
    let mut add = |f: &str| {
        if !fields.iter().any(|x| x == f) {
            fields.push(f.to_string());
        }
    };
    if let Some(t) = model
        .systems
        .get(&d.source_side.system)
        .and_then(|s| s.table(&d.source_side.table))
    {
        t.key.iter().for_each(|k| add(k));
        if let Some(m) = &t.modified_on {
            add(m);
        }
    }
    let splits = d.split.iter().flat_map(|sp| sp.steps.iter());
    for s in d.steps.iter().chain(splits) {
        if let StepSource::Field(f) = &s.source {
            add(f);
        }
        if let Some(c) = &s.condition {
            c.fields().into_iter().for_each(&mut add);
        }
    }
    if let Some(sp) = &d.split {
        add(&sp.field);
    }
    if let Some(p) = &d.source_filter {
        p.fields().into_iter().for_each(&mut add);
    }
    for (pairs, _) in &d.couple_by {
        pairs.iter().for_each(|(s, _)| add(s));
    }
    fields
}
