//! The clauses that shape which target records a source record gives: conditional field blocks
//! (`fields when`), one-to-many splits (`split ... every N into ...`), and `couple via`, which
//! borrows another mapping's couplings.

use super::fields::{self, Flows};
use super::scope::{head_span, resolve_mapping, MappingCx};
use super::{filters, Cx, Dependency, DependencyKind, SideOf};
use crate::diagnostic::{codes, Diagnostic};
use crate::syntax::ast::{self, Clause, Direction, LitKind, MissingPolicy, Policy};
use crate::transform::Ty;

/// `fields when SYSTEM: EXPR { ... }`: the condition is a filter on the source side, so every
/// line must flow from that system.
pub(crate) fn check_conditional(
    cx: &mut Cx<'_>,
    mcx: &MappingCx<'_>,
    cond: &ast::FieldsWhen,
    flows: Flows,
) {
    let Some(side) = mcx.side_of(cx, &cond.system) else {
        return;
    };
    let from_left = matches!(side, SideOf::Left(_));
    let s = side.side().clone();
    filters::check_expr(cx, &s, &cond.expr);
    super::value_sets::check_condition_placement(cx, &cond.expr);
    let against = if from_left {
        flows.backward
    } else {
        flows.forward
    };
    if against {
        cx.report(
            Diagnostic::new(
                codes::CONDITION_AGAINST_FLOW,
                cond.system.span,
                format!(
                    "the lines of `fields when {}:` must flow from `{}`",
                    cond.system.name, cond.system.name
                ),
            )
            .label("the condition reads this system's records")
            .help(format!(
                "a condition tests the source record: keep only lines that write to the other system here (arrows from `{}`)",
                cond.system.name
            )),
        );
    }
}

/// `split FIELD every N into FIELD [numbered FIELD] { ... }`.
pub(crate) fn check_split(cx: &mut Cx<'_>, mcx: &MappingCx<'_>, split: &ast::SplitClause) {
    let dir = mcx.decl.arrow.dir;
    if dir == Direction::Both {
        cx.report(
            Diagnostic::new(
                codes::SPLIT_ONE_WAY,
                head_span(cx, split.span),
                format!("`split` needs a one-way mapping; `{}` is `<->`", mcx.name()),
            )
            .label("one record here, several there")
            .with_label(mcx.decl.arrow.span, "synchronizes both ways")
            .help("several target records cannot be merged back into one: make the mapping `->` or `<-`"),
        );
        return;
    }
    let (source, target) = if dir == Direction::Forward {
        (&mcx.left, &mcx.right)
    } else {
        (&mcx.right, &mcx.left)
    };
    // The block's lines: the same rules as a fields block (direction, targets, types).
    fields::check_fields(cx, mcx, &split.body);
    check_split_targets(cx, mcx, split);
    let (Some(source), Some(target)) = (source.clone(), target.clone()) else {
        return;
    };
    let length = match &split.every.kind {
        LitKind::Num(raw, _) => raw.parse::<usize>().ok().filter(|n| *n > 0),
        _ => None,
    };
    let Some(length) = length else {
        cx.report(
            Diagnostic::new(
                codes::SPLIT_LENGTH,
                split.every.span,
                "a split length is a whole number of characters above 0",
            )
            .label("not a positive whole number")
            .help("write the target field's length, e.g. `every 100`"),
        );
        return;
    };
    if let Some(f) = cx.resolve_field(&source, &split.field) {
        if !matches!(f.ty(), Ty::Text { .. } | Ty::Code { .. }) {
            cx.report(
                Diagnostic::new(
                    codes::TYPE_MISMATCH,
                    split.field.span,
                    format!(
                        "`{}` ({}) cannot be split: only text is",
                        split.field.name,
                        f.ty().describe()
                    ),
                )
                .label("not text")
                .help("split a text field of the source side"),
            );
        }
    }
    if let Some(f) = cx.resolve_field(&target, &split.into) {
        if f.read_only {
            fields::report_read_only(cx, &target, &split.into);
        } else if !matches!(f.ty(), Ty::Text { .. } | Ty::Code { .. }) {
            cx.report(
                Diagnostic::new(
                    codes::TYPE_MISMATCH,
                    split.into.span,
                    format!(
                        "`{}` ({}) cannot hold a part of a text",
                        split.into.name,
                        f.ty().describe()
                    ),
                )
                .label("not text")
                .help("name a text field of the target side"),
            );
        } else if let Some(max) = f.ty().max_len().filter(|max| (*max as usize) < length) {
            cx.report(
                Diagnostic::new(
                    codes::SPLIT_LENGTH,
                    split.every.span,
                    format!(
                        "parts of {length} characters do not fit `{}` ({max} characters)",
                        split.into.name
                    ),
                )
                .label(format!("{length} characters"))
                .with_label(split.into.span, format!("holds {max}"))
                .help(format!("write `every {max}`")),
            );
        }
    }
    if let Some(n) = &split.numbered {
        if let Some(f) = cx.resolve_field(&target, n) {
            if f.ty() != Ty::Integer {
                cx.report(
                    Diagnostic::new(
                        codes::TYPE_MISMATCH,
                        n.span,
                        format!(
                            "`{}` ({}) cannot number the extra records",
                            n.name,
                            f.ty().describe()
                        ),
                    )
                    .label("not an integer")
                    .help("name the integer field that orders the records, such as a line number"),
                );
            }
        }
    }
}

/// `couple via M`: M pairs the same tables; this mapping never couples or creates.
pub(crate) fn check_couple_via(cx: &mut Cx<'_>, mcx: &MappingCx<'_>, c: &ast::CoupleVia) {
    if resolve_mapping(cx, &c.mapping).is_none() {
        return;
    }
    if mcx.primary {
        cx.model.dependencies.push(Dependency {
            from: mcx.name().to_string(),
            to: c.mapping.name.clone(),
            kind: DependencyKind::After,
            reason: "couple via".into(),
            span: c.mapping.span,
        });
    }
    let Some(other) = cx.model.mappings.get(&c.mapping.name).cloned() else {
        return;
    };
    let same = |a: &Option<super::Side>, b: &Option<super::Side>| a == b;
    let pairs_same = other.option_fields.is_none()
        && ((same(&other.left, &mcx.left) && same(&other.right, &mcx.right))
            || (same(&other.left, &mcx.right) && same(&other.right, &mcx.left)));
    if c.mapping.name == mcx.name() || !pairs_same {
        if mcx.left.is_none() || mcx.right.is_none() {
            return;
        }
        let what = match (&other.left, &other.right) {
            _ if c.mapping.name == mcx.name() => "is this mapping".to_string(),
            (Some(l), Some(r)) if other.option_fields.is_none() => format!("pairs {l} with {r}"),
            _ => "is not a table mapping".to_string(),
        };
        cx.report(
            Diagnostic::new(
                codes::VIA_WRONG_TABLES,
                c.mapping.span,
                format!(
                    "`couple via {}`: `{}` {what}",
                    c.mapping.name, c.mapping.name
                ),
            )
            .label("its couplings are borrowed here")
            .with_label(other.name_span, "declared here")
            .help("`couple via` names another mapping between the same two tables"),
        );
        return;
    }
    // The owner must have couplings of its own, and borrowed couplings are only read one way:
    // the owner's stamps are not this mapping's to move.
    let owner_borrows = match &other.kind {
        super::MappingKind::Table(decl) => decl
            .clauses
            .iter()
            .any(|c| matches!(c, Clause::CoupleVia(_))),
        super::MappingKind::Options(_) => false,
    };
    if owner_borrows || mcx.decl.arrow.dir == Direction::Both {
        let (message, label) = if owner_borrows {
            (
                format!(
                    "`{}` borrows its couplings too: `couple via` names the mapping that owns them",
                    c.mapping.name
                ),
                "has no couplings of its own",
            )
        } else {
            (
                format!(
                    "`couple via` needs a one-way mapping; `{}` is `<->`",
                    mcx.name()
                ),
                "borrowed couplings are only read one way",
            )
        };
        cx.report(
            Diagnostic::new(codes::BORROWED_COUPLINGS, c.span, message)
                .label(label)
                .with_label(other.name_span, "the other mapping")
                .help("name the mapping that creates the couplings, in a `->` or `<-` mapping"),
        );
        return;
    }
    for clause in &mcx.decl.clauses {
        let bad = match clause {
            Clause::Couple(_) => Some("`couple by`"),
            Clause::Policy(p) => match &p.policy {
                Policy::Missing(MissingPolicy::Create) => Some("`on missing: create`"),
                Policy::Delete(ast::DeletePolicy::Restore) => Some("`on delete: restore`"),
                Policy::Delete(ast::DeletePolicy::Uncouple) => Some("`on delete: uncouple`"),
                _ => None,
            },
            Clause::Split(_) => Some("`split`"),
            _ => None,
        };
        if let Some(what) = bad {
            cx.report(
                Diagnostic::new(
                    codes::BORROWED_COUPLINGS,
                    head_span(cx, clause.span()),
                    format!(
                        "{what} cannot go with `couple via {}`: the couplings are `{}`'s",
                        c.mapping.name, c.mapping.name
                    ),
                )
                .label(format!("{what} here"))
                .with_label(c.span, "borrows the couplings")
                .help(format!(
                    "this mapping only updates records `{}` coupled; remove {what}, or drop `couple via` to give the mapping couplings of its own",
                    c.mapping.name
                )),
            );
        }
    }
}

/// The split writes its `into` field (main and extra records) and its `numbered` field (extra
/// records): a field line that writes them too would be overwritten without a word.
fn check_split_targets(cx: &mut Cx<'_>, mcx: &MappingCx<'_>, split: &ast::SplitClause) {
    let forward = mcx.decl.arrow.dir == Direction::Forward;
    let target_of = |line: &ast::FieldLine| -> Option<ast::Ident> {
        let target = if forward { &line.right } else { &line.left };
        match target {
            ast::Operand::Field(f) => Some(f.clone()),
            ast::Operand::Const(_) => None,
        }
    };
    let mut clashes: Vec<(ast::Ident, &ast::Ident, &str)> = Vec::new();
    for clause in &mcx.decl.clauses {
        if let Clause::Fields(f) = clause {
            for line in &f.lines {
                if let Some(t) = target_of(line).filter(|t| t.name == split.into.name) {
                    clashes.push((t, &split.into, "the split writes its first part here"));
                }
            }
        }
    }
    for line in &split.body.lines {
        let Some(t) = target_of(line) else { continue };
        if t.name == split.into.name {
            clashes.push((t, &split.into, "the split writes each part here"));
        } else if let Some(n) = split.numbered.as_ref().filter(|n| n.name == t.name) {
            clashes.push((t, n, "the split numbers the extra records here"));
        }
    }
    for (line_target, split_field, why) in clashes {
        cx.report(
            Diagnostic::new(
                codes::TARGET_TWICE,
                line_target.span,
                format!(
                    "field `{}` is written by a field line and by the split",
                    line_target.name
                ),
            )
            .label("written here")
            .with_label(split_field.span, why)
            .help("remove the field line: the split gives the field its value"),
        );
    }
}
