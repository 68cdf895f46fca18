//! The one lowering of a checked table mapping into the passes the engine executes, one per
//! direction (left to right first). The plan's rendered parts are read off the result.

use super::describe::describe_pred;
use super::direction::{
    ConflictWinner, Direction, OwnChanges, Split, Step, StepSource, ThroughRef,
};
use super::filter::{self, Pred};
use super::{CreateValue, FieldStep, FilterPlan};
use crate::analysis::Arrow;
use crate::analysis::{
    ConflictPolicy, Mapping, MappingKind, Model, Pipeline, Side, SideName, SystemKind,
};
use crate::syntax::ast::{self, Clause, LitKind, ModifierKind, Operand};
use crate::syntax::printer;
use serde_json::Value;
use std::sync::Arc;

fn literal_json(l: &ast::Literal) -> Value {
    match &l.kind {
        LitKind::Str(s) => Value::String(s.clone()),
        LitKind::Num(raw, _) => serde_json::from_str(raw).unwrap_or(Value::Null),
        LitKind::Bool(b) => Value::Bool(*b),
        LitKind::Null => Value::Null,
    }
}

/// What lowering one mapping reads.
struct Lx<'a> {
    model: &'a Model,
    m: &'a Mapping,
    decl: &'a ast::MappingDecl,
    forward: bool,
}

/// The passes of a table mapping, in execution order (left to right first).
pub fn directions(model: &Model, m: &Mapping) -> Vec<Arc<Direction>> {
    let MappingKind::Table(decl) = &m.kind else {
        return Vec::new();
    };
    let (Some(left), Some(right)) = (&m.left, &m.right) else {
        return Vec::new();
    };
    let mut out: Vec<Direction> = Vec::new();
    for forward in [true, false] {
        let flows = if forward {
            m.direction.flows_forward()
        } else {
            m.direction.flows_backward()
        };
        if flows {
            let lx = Lx {
                model,
                m,
                decl,
                forward,
            };
            let (source, target) = if forward {
                (left, right)
            } else {
                (right, left)
            };
            out.push(lx.direction(source, target));
        }
    }
    let own = own_changes_left_out(&out);
    out.into_iter()
        .zip(own)
        .map(|(mut d, own)| {
            d.own_changes = own;
            Arc::new(d)
        })
        .collect()
}

/// Business Central's loop prevention (`IsModifiedByFilterNeeded` in CRM Integration Table
/// Synch.): a pass leaves out what the integration user changed only in a bidirectional mapping
/// whose every field read from the source also flows back into it. A value that only flows out
/// of a side can change there because of what the integration wrote (server logic, totals), and
/// a one-way mapping has no way back that could loop; both must read those changes.
fn own_changes_left_out(dirs: &[Direction]) -> Vec<OwnChanges> {
    dirs.iter()
        .enumerate()
        .map(|(i, d)| {
            if dirs.len() != 2 {
                return OwnChanges::Read(None);
            }
            let other = &dirs[1 - i];
            let one_way = d.steps.iter().find(|s| {
                matches!(s.source, StepSource::Field(_))
                    && !other.steps.iter().any(|o| o.line == s.line)
            });
            match one_way {
                Some(s) => OwnChanges::Read(Some(s.line)),
                None => OwnChanges::LeftOut,
            }
        })
        .collect()
}

fn kind(model: &Model, s: &Side) -> SystemKind {
    model
        .systems
        .get(&s.system)
        .map(|x| x.kind)
        .unwrap_or(SystemKind::Dataverse)
}

impl Lx<'_> {
    fn direction(&self, source_side: &Side, target_side: &Side) -> Direction {
        let (model, m) = (self.model, self.m);
        let p = &m.policies;
        let mut d = Direction {
            mapping: m.name.clone(),
            arrow: if self.forward {
                Arrow::Forward
            } else {
                Arrow::Backward
            },
            source: if self.forward {
                SideName::Left
            } else {
                SideName::Right
            },
            source_kind: kind(model, source_side),
            target_kind: kind(model, target_side),
            source_side: source_side.clone(),
            target_side: target_side.clone(),
            steps: Vec::new(),
            filters: Vec::new(),
            source_filter: None,
            source_guards: Vec::new(),
            target_filter: None,
            couple_by: Vec::new(),
            create_values: Vec::new(),
            create_shown: Vec::new(),
            missing: p.missing,
            conflict: p.conflict.as_ref().map(|c| match c {
                ConflictPolicy::Log => ConflictWinner::Nobody,
                ConflictPolicy::Wins(s) if *s == source_side.system => ConflictWinner::Source,
                ConflictPolicy::Wins(_) => ConflictWinner::Target,
            }),
            delete: p.delete,
            bidirectional: m.direction == crate::analysis::Arrow::Both,
            source_fields: Vec::new(),
            borrowed: None,
            owner_reads_target: false,
            read_all: false,
            split: None,
            own_changes: OwnChanges::Read(None),
        };
        for clause in &self.decl.clauses {
            self.clause(&mut d, clause);
        }
        d.source_fields = source_fields(model, &d);
        d
    }

    fn clause(&self, d: &mut Direction, clause: &Clause) {
        match clause {
            Clause::Where(w) => {
                let on_source = w.system.name == d.source_side.system;
                let side = if on_source {
                    &d.source_side
                } else {
                    &d.target_side
                };
                let f = filter_plan(self.model, side, w);
                if on_source {
                    // Value-set tests are the engine's: what they leave out is reported.
                    d.source_filter = f.rest.clone();
                    d.source_guards.extend(f.guards.iter().cloned());
                } else {
                    d.target_filter = Some(f.predicate.clone());
                }
                d.filters.push(f);
            }
            Clause::Couple(c) => {
                let pairs = c
                    .pairs
                    .iter()
                    .map(|p| {
                        let (l, r) = (p.left.name.clone(), p.right.name.clone());
                        if self.forward {
                            (l, r)
                        } else {
                            (r, l)
                        }
                    })
                    .collect();
                d.couple_by.push((pairs, c.ignore_case));
            }
            Clause::CreateValues(c) if c.system.name == d.target_side.system => {
                for v in &c.values {
                    let shown = CreateValue {
                        system: c.system.name.clone(),
                        field: v.field.name.clone(),
                        value: v.value.source_text(),
                    };
                    d.create_shown.push((v.field.span.start, shown));
                    d.create_values
                        .push((v.field.name.clone(), literal_json(&v.value)));
                }
            }
            Clause::Fields(f) => {
                let condition = match &f.condition {
                    // A condition reads the source record: in the other direction the block
                    // has no lines (the checker proved it).
                    Some(c) if c.system.name != d.source_side.system => return,
                    Some(c) => Some(filter::resolve(self.model, &d.source_side, &c.expr)),
                    None => None,
                };
                let when = f
                    .condition
                    .as_ref()
                    .map(|c| format!("{}: {}", c.system.name, printer::expr(&c.expr)));
                let steps = self.steps(&f.lines, condition.as_ref(), when.as_ref());
                d.steps.extend(steps);
            }
            Clause::CoupleVia(c) => self.couple_via(d, c),
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
                    steps: self.steps(&sp.body.lines, None, None),
                });
            }
            _ => {}
        }
    }

    fn couple_via(&self, d: &mut Direction, c: &ast::CoupleVia) {
        let Some(owner) = self.model.mappings.get(&c.mapping.name) else {
            return;
        };
        let side = if owner.left.as_ref() == Some(&d.source_side) {
            SideName::Left
        } else if owner.right.as_ref() == Some(&d.source_side) {
            SideName::Right
        } else {
            return;
        };
        d.borrowed = Some((c.mapping.name.clone(), side));
        d.owner_reads_target = match side.other() {
            SideName::Left => owner.direction.flows_forward(),
            SideName::Right => owner.direction.flows_backward(),
        };
    }

    /// The steps of field lines that flow in this direction.
    fn steps(
        &self,
        lines: &[ast::FieldLine],
        condition: Option<&Pred>,
        when: Option<&String>,
    ) -> Vec<Step> {
        let mut steps = Vec::new();
        for line in lines {
            let flows = if self.forward {
                line.arrow.dir.flows_forward()
            } else {
                line.arrow.dir.flows_backward()
            };
            let (src, tgt) = if self.forward {
                (&line.left, &line.right)
            } else {
                (&line.right, &line.left)
            };
            let Operand::Field(target) = tgt else {
                continue;
            };
            if !flows {
                continue;
            }
            let has = |k| line.modifiers.iter().any(|m| m.kind == Some(k));
            steps.push(Step {
                source: match src {
                    Operand::Field(f) => StepSource::Field(f.name.clone()),
                    Operand::Const(l) => StepSource::Const(literal_json(l)),
                },
                target: target.name.clone(),
                transforms: self.pipeline(line),
                via: line.via.as_ref().map(|v| v.name.clone()),
                through: line.through.as_ref().map(|t| Arc::new(self.through(t))),
                not_null: has(ModifierKind::NotNull),
                clear_on_fail: has(ModifierKind::ClearOnFail),
                deferred: has(ModifierKind::Deferred),
                parent: has(ModifierKind::Parent),
                condition: condition.cloned(),
                shown: self.shown(line, when),
                line: line.span.start,
            });
        }
        steps
    }

    fn through(&self, t: &ast::Through) -> ThroughRef {
        let side = Side {
            system: t.table.system.name.clone(),
            table: t.table.table.name.clone(),
        };
        ThroughRef {
            filter: t
                .filter
                .as_ref()
                .map(|e| filter::resolve(self.model, &side, e)),
            system: side.system,
            table: side.table,
            from: t.from.name.clone(),
            to: t.to.name.clone(),
            shown: printer::through(t).trim_start().to_string(),
        }
    }

    /// The line's transforms as the checker compiled them.
    fn pipeline(&self, line: &ast::FieldLine) -> Pipeline {
        match self.m.pipelines.get(&line.span) {
            Some(p) => p.clone(),
            // The checker reported the call that did not compile; no plan runs such a set.
            None => Arc::default(),
        }
    }

    /// The step as the plan shows it: operands qualified by the system names as written.
    fn shown(&self, line: &ast::FieldLine, when: Option<&String>) -> FieldStep {
        let left = operand_text(&self.decl.left.system.name, &line.left);
        let right = operand_text(&self.decl.right.system.name, &line.right);
        let (source, target) = if self.forward {
            (left, right)
        } else {
            (right, left)
        };
        FieldStep {
            direction: if self.forward { "->" } else { "<-" },
            source,
            transforms: line.transforms.iter().map(printer::call).collect(),
            target,
            via: line.via.as_ref().map(|v| v.name.clone()),
            through: line
                .through
                .as_ref()
                .map(|t| printer::through(t).trim_start().to_string()),
            modifiers: line
                .modifiers
                .iter()
                .filter_map(|m| m.kind.map(ModifierKind::as_str))
                .collect(),
            when: when.cloned(),
        }
    }
}

fn operand_text(system: &str, o: &Operand) -> String {
    match o {
        Operand::Field(i) => format!("{system}.{}", printer::ident(i)),
        Operand::Const(l) => l.source_text(),
    }
}

/// A `where` resolved once: the predicate the engine evaluates and what the plan shows of it.
fn filter_plan(model: &Model, side: &Side, w: &ast::WhereClause) -> FilterPlan {
    let kind = kind(model, side);
    let pred = filter::resolve(model, side, &w.expr);
    let (guards, rest) = pred.split_value_sets();
    let (odata, local) = match &rest {
        Some(r) => r.split_pushdown(kind),
        None => (None, None),
    };
    FilterPlan {
        system: w.system.name.clone(),
        expression: printer::expr(&w.expr),
        odata,
        local: local.map(|p| describe_pred(&p)),
        store: rest
            .as_ref()
            .map(|r| r.to_sql(kind))
            .unwrap_or_else(|| "1".into()),
        value_sets: guards.iter().map(describe_pred).collect(),
        guards,
        rest,
        predicate: pred,
    }
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
    for g in &d.source_guards {
        g.fields().into_iter().for_each(&mut add);
    }
    for (pairs, _) in &d.couple_by {
        pairs.iter().for_each(|(s, _)| add(s));
    }
    fields
}
