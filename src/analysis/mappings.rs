//! Table mappings: the header, and every clause but the field lines (see `fields.rs`).

use super::scope::{head_span, resolve_mapping, MappingCx};
use super::{blank, blocks, declarations, fields, filters, Cx, Dependency, DependencyKind, SideOf};
use crate::diagnostic::{codes, suggest, Diagnostic};
use crate::source::Span;
use crate::syntax::ast::{self, Clause, ConflictPolicy, Direction, Policy};
use crate::transform::Ty;
use std::collections::HashMap;

pub(crate) fn check_mapping(cx: &mut Cx<'_>, m: &ast::MappingDecl) {
    let primary = cx
        .model
        .mappings
        .get(&m.name.name)
        .is_some_and(|r| r.span == m.span);
    let left = cx.resolve_side(&m.left.system, &m.left.table);
    let right = cx.resolve_side(&m.right.system, &m.right.table);
    if m.left.system.name == m.right.system.name
        && cx.model.systems.contains_key(&m.left.system.name)
    {
        cx.report(
            Diagnostic::new(
                codes::SAME_SYSTEM,
                m.right.system.span,
                format!(
                    "mapping `{}` pairs system `{}` with itself",
                    m.name.name, m.left.system.name
                ),
            )
            .label("same system as the left side")
            .with_label(m.left.system.span, "left side")
            .help("a mapping pairs a table of one system with an entity of the other"),
        );
    }
    if primary {
        declarations::set_sides(cx, &m.name.name, left.clone(), right.clone());
    }
    let mcx = MappingCx {
        decl: m,
        left,
        right,
        primary,
    };
    check_duplicate_clauses(cx, m);
    let mut has_conflict_policy = false;
    let mut flows = fields::Flows::default();
    for clause in &m.clauses {
        match clause {
            Clause::Where(w) => {
                if let Some(s) = mcx.side_of(cx, &w.system) {
                    let side = s.side().clone();
                    filters::check_expr(cx, &side, &w.expr);
                    super::value_sets::check_where_placement(cx, &w.expr);
                }
            }
            Clause::Couple(c) => check_couple(cx, &mcx, c),
            Clause::After(a) => check_after(cx, &mcx, a),
            Clause::Fields(f) => {
                let block = fields::check_fields(cx, &mcx, f);
                match &f.condition {
                    Some(cond) => blocks::check_conditional(cx, &mcx, cond, block),
                    None => {
                        flows.forward |= block.forward;
                        flows.backward |= block.backward;
                    }
                }
            }
            Clause::Split(s) => blocks::check_split(cx, &mcx, s),
            Clause::CoupleVia(c) => blocks::check_couple_via(cx, &mcx, c),
            Clause::CreateValues(c) => check_create_values(cx, &mcx, c),
            Clause::Policy(p) => {
                if let Policy::Conflict(c) = &p.policy {
                    has_conflict_policy = true;
                    check_conflict_policy(cx, &mcx, c, p.span);
                }
            }
            Clause::Schedule(_) => {}
            Clause::Key(k) => check_override(cx, &mcx, k, false),
            Clause::Watermark(k) => check_override(cx, &mcx, k, true),
            Clause::When(w) => check_when(cx, w),
            Clause::Blank(b) => blank::check_blank(cx, &mcx, b),
        }
    }
    check_flows(cx, m, flows);
    if m.arrow.dir == Direction::Both && !has_conflict_policy {
        cx.report(
            Diagnostic::new(
                codes::NO_CONFLICT_POLICY,
                m.name.span,
                format!("bidirectional mapping `{}` has no conflict policy", m.name.name),
            )
            .label("both sides may change the same record")
            .with_label(m.arrow.span, "synchronizes both ways")
            .help(format!(
                "say who wins when both sides changed since the last run: `on conflict: {} wins`, `on conflict: {} wins` or `on conflict: log`",
                m.left.system.name, m.right.system.name
            )),
        );
    }
}

/// Clauses that may appear once (per system, where they name one).
fn check_duplicate_clauses(cx: &mut Cx<'_>, m: &ast::MappingDecl) {
    let mut seen: HashMap<String, Span> = HashMap::new();
    for clause in &m.clauses {
        let key = match clause {
            Clause::Fields(f) if f.condition.is_none() => "fields".to_string(),
            Clause::Fields(_) => continue,
            Clause::Split(_) => "split".into(),
            Clause::CoupleVia(_) => "couple via".into(),
            Clause::Where(w) => format!("where {}", w.system.name),
            Clause::Policy(p) => match p.policy {
                Policy::Missing(_) => "on missing".into(),
                Policy::Conflict(_) => "on conflict".into(),
                Policy::Delete(_) => "on delete".into(),
            },
            Clause::Schedule(_) => "schedule".into(),
            Clause::Key(k) => format!("key {}", k.system.name),
            Clause::Watermark(k) => format!("watermark {}", k.system.name),
            Clause::CreateValues(c) => format!("on create {}", c.system.name),
            Clause::When(_) => "when".into(),
            Clause::Blank(_) => "blank".into(),
            Clause::Couple(_) | Clause::After(_) => continue,
        };
        let span = clause.span();
        if let Some(first) = seen.get(&key) {
            let help = if key.starts_with("where") {
                "combine the conditions with `and` in one `where` clause".to_string()
            } else {
                format!("keep one `{key}` clause")
            };
            cx.report(
                Diagnostic::new(
                    codes::DUPLICATE_CLAUSE,
                    head_span(cx, span),
                    format!("`{key}` is given twice in mapping `{}`", m.name.name),
                )
                .label("given again here")
                .with_label(head_span(cx, *first), "first given here")
                .help(help),
            );
        } else {
            seen.insert(key, span);
        }
    }
}

fn check_couple(cx: &mut Cx<'_>, mcx: &MappingCx<'_>, c: &ast::CoupleClause) {
    for pair in &c.pairs {
        let left = mcx
            .left
            .as_ref()
            .and_then(|s| cx.resolve_field(s, &pair.left));
        let right = mcx
            .right
            .as_ref()
            .and_then(|s| cx.resolve_field(s, &pair.right));
        if let (Some(l), Some(r)) = (left, right) {
            let (lt, rt) = (l.ty(), r.ty());
            let comparable =
                super::types::assignable(&lt, &rt) || super::types::assignable(&rt, &lt);
            if !comparable || matches!(lt, Ty::Lookup) || matches!(rt, Ty::Lookup) {
                cx.report(
                    Diagnostic::new(
                        codes::COUPLE_TYPE,
                        pair.span,
                        format!("cannot match `{}` ({}) with `{}` ({})", pair.left.name, lt.describe(), pair.right.name, rt.describe()),
                    )
                    .label("values of these fields are never equal")
                    .help("couple by fields that hold the same kind of value, such as a code and a text, or two numbers"),
                );
            }
        }
    }
}

fn check_after(cx: &mut Cx<'_>, mcx: &MappingCx<'_>, a: &ast::AfterClause) {
    for name in &a.names {
        if resolve_mapping(cx, name).is_some() && mcx.primary {
            cx.model.dependencies.push(Dependency {
                from: mcx.name().to_string(),
                to: name.name.clone(),
                kind: DependencyKind::After,
                reason: "after".into(),
                span: name.span,
            });
        }
    }
}

fn check_conflict_policy(cx: &mut Cx<'_>, mcx: &MappingCx<'_>, c: &ConflictPolicy, span: Span) {
    let m = mcx.decl;
    if m.arrow.dir != Direction::Both {
        cx.report(
            Diagnostic::new(
                codes::CONFLICT_ON_ONE_WAY,
                span,
                format!(
                    "mapping `{}` synchronizes one way: it cannot have update conflicts",
                    m.name.name
                ),
            )
            .label("only `<->` mappings have conflicts")
            .with_label(m.arrow.span, "one-way mapping")
            .help("remove the `on conflict` clause, or make the mapping `<->`"),
        );
        return;
    }
    if let ConflictPolicy::Wins(system) = c {
        mcx.side_of(cx, system);
    }
}

fn check_create_values(cx: &mut Cx<'_>, mcx: &MappingCx<'_>, c: &ast::CreateValues) {
    let Some(side) = mcx.side_of(cx, &c.system) else {
        return;
    };
    let (side, is_left) = match side {
        SideOf::Left(s) => (s.clone(), true),
        SideOf::Right(s) => (s.clone(), false),
    };
    let dir = mcx.decl.arrow.dir;
    let receives = if is_left {
        dir.flows_backward()
    } else {
        dir.flows_forward()
    };
    if !receives {
        cx.report(
            Diagnostic::new(
                codes::ARROW_AGAINST_MAPPING,
                c.system.span,
                format!(
                    "records are never created in `{}` by mapping `{}`",
                    c.system.name,
                    mcx.name()
                ),
            )
            .label(format!(
                "the mapping writes only to the other side ({})",
                dir.as_str()
            ))
            .with_label(mcx.decl.arrow.span, "direction of the mapping")
            .help("name the system the mapping creates records in"),
        );
        return;
    }
    let mut seen: HashMap<&str, Span> = HashMap::new();
    for a in &c.values {
        if let Some(first) = seen.insert(&a.field.name, a.field.span) {
            cx.report(
                Diagnostic::new(
                    codes::TARGET_TWICE,
                    a.field.span,
                    format!("`{}` is set twice on create", a.field.name),
                )
                .label("set again here")
                .with_label(first, "first set here")
                .help("keep one value"),
            );
            continue;
        }
        let Some(field) = cx.resolve_field(&side, &a.field) else {
            continue;
        };
        if field.read_only {
            fields::report_read_only(cx, &side, &a.field);
            continue;
        }
        filters::check_value(cx, &side, &a.field, &field, &a.value, None);
    }
}

fn check_override(cx: &mut Cx<'_>, mcx: &MappingCx<'_>, k: &ast::FieldOverride, watermark: bool) {
    let Some(side) = mcx.side_of(cx, &k.system).map(|s| s.side().clone()) else {
        return;
    };
    // `watermark SYSTEM: none`: every run reads every record of that side, so that side must
    // be one the mapping reads.
    if watermark && !k.field.quoted && k.field.name == "none" {
        let dir = mcx.decl.arrow.dir;
        let reads = if k.system.name == mcx.decl.left.system.name {
            dir.flows_forward()
        } else {
            dir.flows_backward()
        };
        if !reads {
            cx.report(
                Diagnostic::new(
                    codes::WATERMARK_ON_TARGET,
                    k.system.span,
                    format!(
                        "`watermark {}: none` names the side mapping `{}` writes, never reads",
                        k.system.name,
                        mcx.name()
                    ),
                )
                .label("only written here")
                .with_label(mcx.decl.arrow.span, "data flows this way")
                .help("name the side the records are read from: `watermark SOURCE: none`"),
            );
        }
        return;
    }
    let Some(field) = cx.resolve_field(&side, &k.field) else {
        return;
    };
    if watermark && !matches!(field.ty(), Ty::DateTime | Ty::Date | Ty::Integer) {
        cx.report(
            Diagnostic::new(
                codes::TYPE_MISMATCH,
                k.field.span,
                format!("`{}` ({}) cannot be a watermark", k.field.name, field.ty().describe()),
            )
            .label("not a date-time")
            .help("a watermark is the field stamped on every change: a date-time such as `modifiedon` or `SystemModifiedAt`"),
        );
    }
}

fn check_when(cx: &mut Cx<'_>, w: &ast::WhenClause) {
    match cx.model.settings.get(&w.setting.name) {
        Some(value) if !matches!(value.kind, ast::LitKind::Bool(_)) => {
            let vspan = value.span;
            cx.report(
                Diagnostic::new(
                    codes::TYPE_MISMATCH,
                    w.setting.span,
                    format!("setting `{}` is not `true` or `false`", w.setting.name),
                )
                .label("used as a switch here")
                .with_label(vspan, "set here")
                .help("a `when` clause needs a boolean setting"),
            );
        }
        Some(_) => {}
        None => {
            let help =
                suggest::help_for(&w.setting.name, cx.model.settings.keys()).unwrap_or_else(|| {
                    format!("declare it: `settings {{ {} = true }}`", w.setting.name)
                });
            cx.report(
                Diagnostic::new(
                    codes::UNKNOWN_SETTING,
                    w.setting.span,
                    format!("unknown setting `{}`", w.setting.name),
                )
                .label("not declared in a `settings` block")
                .help(help),
            );
        }
    }
}

/// Business Central's rule: the mapping's direction needs at least one field flowing that way.
fn check_flows(cx: &mut Cx<'_>, m: &ast::MappingDecl, flows: fields::Flows) {
    let dir = m.arrow.dir;
    let missing: Vec<(&str, &str)> = [
        (dir.flows_forward() && !flows.forward, "->"),
        (dir.flows_backward() && !flows.backward, "<-"),
    ]
    .into_iter()
    .filter(|(missing, _)| *missing)
    .map(|(_, arrow)| {
        let towards = if arrow == "->" {
            m.right.system.name.as_str()
        } else {
            m.left.system.name.as_str()
        };
        (arrow, towards)
    })
    .collect();
    for (arrow, towards) in missing {
        cx.report(
            Diagnostic::new(
                codes::NO_FIELD_IN_DIRECTION,
                m.name.span,
                format!(
                    "mapping `{}` synchronizes `{arrow}` but no field flows to `{towards}`",
                    m.name.name
                ),
            )
            .label("nothing would be written")
            .with_label(m.arrow.span, format!("direction `{}`", dir.as_str()))
            .help(format!(
                "add a field line with `{arrow}` or `<->`, or change the mapping's arrow"
            )),
        );
    }
}
