//! Field lines: directions, targets, `via` lookups, modifiers and the typed transform pipeline.

use super::option_labels;
use super::scope::{resolve_mapping, MappingCx};
use super::{filters, through, types, Cx, Dependency, DependencyKind, Side};
use crate::diagnostic::{codes, suggest, Diagnostic};
use crate::schema::Field;
use crate::source::Span;
use crate::syntax::ast::{self, Direction, LitKind, ModifierKind, Operand};
use crate::transform::{self, Arg, CompileError, Function, Ty};
use std::collections::HashMap;

/// Which ways the lines of a block let data flow.
#[derive(Default, Clone, Copy)]
pub(crate) struct Flows {
    pub forward: bool,
    pub backward: bool,
}

/// One operand after resolution.
#[derive(Clone)]
enum Resolved {
    Field(Side, ast::Ident, Box<Field>),
    Const(ast::Literal),
    /// Unknown field or unresolved side: already reported, or nothing to check.
    Unknown,
}

pub(crate) fn check_fields(
    cx: &mut Cx<'_>,
    mcx: &MappingCx<'_>,
    block: &ast::FieldsBlock,
) -> Flows {
    let mut flows = Flows::default();
    // (written on the right side?, field name) -> first write.
    let mut written: HashMap<(bool, String), Span> = HashMap::new();
    for line in &block.lines {
        check_line(cx, mcx, line, &mut written, &mut flows);
    }
    flows
}

fn resolve_operand(cx: &mut Cx<'_>, side: &Option<Side>, op: &Operand) -> Resolved {
    match op {
        Operand::Const(l) => Resolved::Const(l.clone()),
        Operand::Field(name) => match side {
            Some(s) => match cx.resolve_field(s, name) {
                Some(f) => Resolved::Field(s.clone(), name.clone(), Box::new(f)),
                None => Resolved::Unknown,
            },
            None => Resolved::Unknown,
        },
    }
}

/// The line's arrow against the mapping's: one that does not fit is reported; the others add
/// to the directions the mapping's lines flow in.
fn check_arrow(cx: &mut Cx<'_>, mcx: &MappingCx<'_>, line: &ast::FieldLine, flows: &mut Flows) {
    let mapping_dir = mcx.decl.arrow.dir;
    let dir = line.arrow.dir;
    if !dir.fits(mapping_dir) {
        let fix = match mapping_dir {
            Direction::Forward => "`->`",
            Direction::Backward => "`<-`",
            Direction::Both => "`<->`",
        };
        cx.report(
            Diagnostic::new(
                codes::ARROW_AGAINST_MAPPING,
                line.arrow.span,
                format!(
                    "field arrow `{}` does not fit mapping `{}` ({})",
                    dir.as_str(),
                    mcx.name(),
                    mapping_dir.as_str()
                ),
            )
            .label(format!("`{}` here", dir.as_str()))
            .with_label(
                mcx.decl.arrow.span,
                format!("the mapping synchronizes `{}` only", mapping_dir.as_str()),
            )
            .help(format!(
                "write {fix}, or change the mapping's arrow to `<->`"
            )),
        );
    } else {
        flows.forward |= dir.flows_forward();
        flows.backward |= dir.flows_backward();
    }
}

/// `via M`: resolves the mapping and, on the primary mapping, records the dependency on it
/// (deferred for a `[deferred]` line). Whether `M` exists.
fn record_via(cx: &mut Cx<'_>, mcx: &MappingCx<'_>, line: &ast::FieldLine, v: &ast::Ident) -> bool {
    let dir = line.arrow.dir;
    let ok = resolve_mapping(cx, v).is_some();
    if ok && mcx.primary {
        let deferred = line
            .modifiers
            .iter()
            .any(|m| m.kind == Some(ModifierKind::Deferred));
        let target = match (&line.right, &line.left, dir) {
            (Operand::Field(r), _, Direction::Forward | Direction::Both) => r.name.clone(),
            (_, Operand::Field(l), _) => l.name.clone(),
            _ => String::new(),
        };
        cx.model.dependencies.push(Dependency {
            from: mcx.name().to_string(),
            to: v.name.clone(),
            kind: if deferred {
                DependencyKind::Deferred
            } else {
                DependencyKind::Via
            },
            reason: target,
            span: v.span,
        });
    }
    ok
}

/// A constant on the target side of a line's arrow.
fn report_constant_target(cx: &mut Cx<'_>, line: &ast::FieldLine, at: Span) {
    let dir = line.arrow.dir;
    let help = if dir == Direction::Both {
        "a constant can only be written one way: use `->` or `<-` with the constant on the source side".to_string()
    } else {
        format!(
            "put the constant on the source side of `{}`, or turn the arrow",
            dir.as_str()
        )
    };
    cx.report(
        Diagnostic::new(
            codes::CONSTANT_TARGET,
            at,
            "a constant cannot be written to",
        )
        .label("constant on the target side of the arrow")
        .with_label(line.arrow.span, "data flows this way")
        .help(help),
    );
}

fn check_line(
    cx: &mut Cx<'_>,
    mcx: &MappingCx<'_>,
    line: &ast::FieldLine,
    written: &mut HashMap<(bool, String), Span>,
    flows: &mut Flows,
) {
    let dir = line.arrow.dir;
    check_arrow(cx, mcx, line, flows);

    let left = resolve_operand(cx, &mcx.left, &line.left);
    let right = resolve_operand(cx, &mcx.right, &line.right);
    check_modifiers(cx, line);
    let functions = compile_transforms(cx, &line.transforms);
    let via_ok = match &line.via {
        Some(v) => record_via(cx, mcx, line, v),
        None => true,
    };
    // `through`: the exchanged value (its TO) is what the `via` looks up, not the operand.
    let exchanged = line.through.as_ref().map(|t| {
        let fields = [&left, &right].map(|r| match r {
            Resolved::Field(s, n, f) => Some((s, n, f.as_ref())),
            _ => None,
        });
        through::check_through(cx, line, t, fields)
    });
    if let (Some(v), true) = (&line.via, via_ok) {
        let skip = |r: &Resolved| match (r, &exchanged) {
            (_, Some(None)) => true,
            (Resolved::Field(s, _, _), Some(Some(system))) => s.system == *system,
            _ => false,
        };
        let pick = |r: &Resolved| {
            if skip(r) {
                Resolved::Unknown
            } else {
                r.clone()
            }
        };
        check_via(cx, v, &pick(&left), &pick(&right));
    }

    let mut const_reported = false;
    for forward in [true, false] {
        if (forward && !dir.flows_forward()) || (!forward && !dir.flows_backward()) {
            continue;
        }
        let (source, target) = if forward {
            (&left, &right)
        } else {
            (&right, &left)
        };
        let target_operand = if forward { &line.right } else { &line.left };
        match target {
            Resolved::Const(l) => {
                if !const_reported {
                    const_reported = true;
                    report_constant_target(cx, line, l.span);
                }
                continue;
            }
            Resolved::Unknown => continue,
            Resolved::Field(side, name, field) => {
                if field.read_only {
                    report_read_only(cx, side, name);
                    continue;
                }
                if let Operand::Field(_) = target_operand {
                    let key = (forward, name.name.clone());
                    if let Some(first) = written.get(&key) {
                        cx.report(
                            Diagnostic::new(
                                codes::TARGET_TWICE,
                                name.span,
                                format!("field `{}` of `{}` is written twice", name.name, side),
                            )
                            .label("written again here")
                            .with_label(*first, "first written here")
                            .help("a target field takes its value from one line; remove one, or map the other source to another field"),
                        );
                        continue;
                    }
                    written.insert(key, name.span);
                }
                if line.via.is_some() {
                    continue;
                }
                if let Resolved::Field(_, sname, sfield) = source {
                    option_labels::check(cx, (sname, sfield), (name, field), &line.transforms);
                }
                check_flow(
                    cx,
                    source,
                    side,
                    name,
                    field,
                    &line.transforms,
                    functions.as_deref(),
                );
            }
        }
    }
    // The plan takes the pipeline from here: each line's transforms compile once.
    if let (true, Some(f)) = (mcx.primary, functions) {
        if let Some(m) = cx.model.mappings.get_mut(mcx.name()) {
            m.pipelines.insert(line.span, std::sync::Arc::new(f));
        }
    }
}

pub(crate) fn report_read_only(cx: &mut Cx<'_>, side: &Side, name: &ast::Ident) {
    cx.report(
        Diagnostic::new(codes::READ_ONLY_TARGET, name.span, format!("field `{}` of `{}` is read-only", name.name, side))
            .label("cannot be written")
            .help("computed and system-stamped fields can be a source, never a target; turn the arrow or map another field"),
    );
}

fn check_modifiers(cx: &mut Cx<'_>, line: &ast::FieldLine) {
    let has = |k| line.modifiers.iter().find(|m| m.kind == Some(k));
    for kind in [
        ModifierKind::Deferred,
        ModifierKind::ClearOnFail,
        ModifierKind::Parent,
    ] {
        if let (Some(m), None) = (has(kind), &line.via) {
            cx.report(
                Diagnostic::new(codes::MODIFIER_NEEDS_VIA, m.span, format!("`{}` applies to lookups only", kind.as_str()))
                    .label("this line has no `via`")
                    .help("add `via MAPPING` to resolve the value through couplings, or remove the modifier"),
            );
        }
    }
    // A parent must be found: neither given up on (cleared) nor looked up later (deferred).
    for other in [ModifierKind::ClearOnFail, ModifierKind::Deferred] {
        if let (Some(a), Some(b)) = (has(ModifierKind::Parent), has(other)) {
            cx.report(
                Diagnostic::new(
                    codes::CONFLICTING_MODIFIERS,
                    b.span,
                    format!("`parent` and `{}` exclude each other", other.as_str()),
                )
                .label(format!("`{}` here", other.as_str()))
                .with_label(a.span, "the record waits for this one")
                .help("a record waits until its parent is coupled: remove one of the two"),
            );
        }
    }
    if let (Some(a), Some(b)) = (has(ModifierKind::NotNull), has(ModifierKind::ClearOnFail)) {
        cx.report(
            Diagnostic::new(
                codes::CONFLICTING_MODIFIERS,
                b.span,
                "`not null` and `clear on fail` exclude each other",
            )
            .label("clears the value when the lookup fails")
            .with_label(a.span, "never writes a null value")
            .help("keep one: `not null` keeps the old value, `clear on fail` empties it"),
        );
    }
}

/// Compiles the pipeline; None when any call is wrong (already reported).
fn compile_transforms(cx: &mut Cx<'_>, calls: &[ast::Call]) -> Option<Vec<Box<dyn Function>>> {
    let mut out = Vec::new();
    let mut ok = true;
    for call in calls {
        let args: Vec<Arg> = match &call.map {
            Some(entries) => vec![Arg::Map(
                entries
                    .iter()
                    .map(|e| (lit_arg(&e.from), lit_arg(&e.to)))
                    .collect(),
            )],
            None => call.args.iter().map(lit_arg).collect(),
        };
        match transform::compile(&call.name.name, &args) {
            Ok(f) => out.push(f),
            Err(CompileError::Unknown) => {
                ok = false;
                let names = transform::signatures().iter().map(|s| s.name);
                let help = suggest::help_for(&call.name.name, names).unwrap_or_else(|| {
                    let all: Vec<String> = transform::signatures()
                        .iter()
                        .map(|s| s.name.to_string())
                        .collect();
                    format!("the functions are {}", super::list(&all))
                });
                cx.report(
                    Diagnostic::new(
                        codes::UNKNOWN_FUNCTION,
                        call.name.span,
                        format!("unknown function `{}`", call.name.name),
                    )
                    .label("not a transform function")
                    .help(help),
                );
            }
            Err(CompileError::Arg(e)) => {
                ok = false;
                let span = match (e.arg, &call.map) {
                    (Some(i), None) => call.args.get(i).map(|a| a.span).unwrap_or(call.span),
                    (Some(i), Some(entries)) => entries.get(i).map(|a| a.span).unwrap_or(call.span),
                    _ => call.span,
                };
                let sig = transform::signature(&call.name.name)
                    .map(|s| format!("`{}{}`: {}", s.name, s.params, s.summary));
                cx.report(
                    Diagnostic::new(codes::BAD_ARGUMENT, span, e.message.clone())
                        .label("invalid argument")
                        .maybe_help(e.help.clone().or(sig)),
                );
            }
        }
    }
    ok.then_some(out)
}

fn lit_arg(l: &ast::Literal) -> Arg {
    match &l.kind {
        LitKind::Str(s) => Arg::Str(s.clone()),
        LitKind::Num(_, d) => Arg::Num(*d),
        LitKind::Bool(b) => Arg::Bool(*b),
        LitKind::Null => Arg::Null,
    }
}

/// Types one flow: source value -> transforms -> target field.
fn check_flow(
    cx: &mut Cx<'_>,
    source: &Resolved,
    target_side: &Side,
    target_name: &ast::Ident,
    target: &Field,
    calls: &[ast::Call],
    functions: Option<&[Box<dyn Function>]>,
) {
    let target_ty = target.ty();
    let (mut ty, source_span, source_desc) = match source {
        Resolved::Unknown => return,
        Resolved::Const(l) => {
            if calls.is_empty() {
                check_constant(cx, target_side, target_name, target, l);
                return;
            }
            (types::literal_ty(l), l.span, "the constant".to_string())
        }
        Resolved::Field(_, name, f) => (f.ty(), name.span, format!("`{}`", name.name)),
    };
    let Some(functions) = functions else {
        return;
    };
    let mut truncated = false;
    for (call, f) in calls.iter().zip(functions) {
        match f.output(&ty) {
            Ok(next) => {
                if matches!(call.name.name.as_str(), "truncate" | "substring") {
                    truncated = true;
                }
                ty = next;
            }
            Err(e) => {
                cx.report(
                    Diagnostic::new(codes::FUNCTION_TYPE, call.span, e.message.clone())
                        .label(format!("receives {}", ty.describe()))
                        .maybe_help(e.help.clone()),
                );
                return;
            }
        }
    }
    let reference = |t: &Ty| matches!(t, Ty::Lookup);
    if (reference(&target_ty) && !matches!(ty, Ty::Lookup | Ty::Guid | Ty::Any))
        || (reference(&ty) && !matches!(target_ty, Ty::Lookup | Ty::Guid | Ty::Any))
    {
        let (name, side) = match source {
            Resolved::Field(s, n, _) => (n.name.clone(), Some(s.clone())),
            _ => (String::new(), None),
        };
        let suggestion =
            side.and_then(|s| suggest_via(cx, &s, &name, target_side, &target_name.name));
        cx.report(
            Diagnostic::new(
                codes::LOOKUP_WITHOUT_VIA,
                target_name.span,
                format!(
                    "`{}` refers to another record: its value must be resolved with `via`",
                    if reference(&target_ty) {
                        &target_name.name
                    } else {
                        &name
                    }
                ),
            )
            .label(format!(
                "{} receives {}",
                target_ty.describe(),
                ty.describe()
            ))
            .with_label(source_span, "source")
            .help(match suggestion {
                Some(m) => format!(
                    "add `via {}` to resolve the value through that mapping's couplings",
                    m
                ),
                None => "add `via MAPPING`, naming the mapping that pairs the referenced tables"
                    .to_string(),
            }),
        );
        return;
    }
    if !types::assignable(&ty, &target_ty) {
        cx.report(
            Diagnostic::new(
                codes::TYPE_MISMATCH,
                target_name.span,
                format!(
                    "{source_desc} gives {}, but `{}` holds {}",
                    ty.describe(),
                    target_name.name,
                    target_ty.describe()
                ),
            )
            .label(format!("expects {}", target_ty.describe()))
            .with_label(source_span, ty.describe())
            .help(mismatch_help(&ty, &target_ty)),
        );
        return;
    }
    if let (Some(from), Some(to)) = (ty.max_len(), target_ty.max_len()) {
        if from > to && !truncated {
            cx.report(
                Diagnostic::new(
                    codes::MAY_TRUNCATE,
                    source_span,
                    format!("{source_desc} holds up to {from} characters, but `{}` only {to}", target_name.name),
                )
                .label(format!("up to {from} characters"))
                .with_label(target_name.span, format!("{to} characters"))
                .help(format!("add `| truncate({to})` to cut longer values on purpose; otherwise such records fail")),
            );
        }
    }
}

fn mismatch_help(from: &Ty, to: &Ty) -> String {
    match (from, to) {
        (Ty::Decimal, Ty::Integer) => {
            "round the value and map it to a decimal field, or choose an integer source".into()
        }
        (_, Ty::Boolean) => "map a boolean field, or write the constant `true` or `false`".into(),
        (Ty::Text { .. } | Ty::Code { .. }, Ty::Integer | Ty::Decimal) => {
            "text is not converted to numbers; map a numeric field".into()
        }
        (_, Ty::Date | Ty::DateTime) => "map a date or date-time field".into(),
        _ => format!(
            "map a field of type {} or transform the value",
            to.describe()
        ),
    }
}

/// A constant written to a field: option labels exist, the value fits the type and the length.
fn check_constant(
    cx: &mut Cx<'_>,
    side: &Side,
    name: &ast::Ident,
    field: &Field,
    l: &ast::Literal,
) {
    if field.ty() == Ty::Option {
        filters::check_option_literal(cx, side, name, field, l);
        return;
    }
    if field.ty() == Ty::Lookup && !matches!(l.kind, LitKind::Null) {
        cx.report(
            Diagnostic::new(codes::LOOKUP_WITHOUT_VIA, name.span, format!("`{}` refers to another record", name.name))
                .label("a constant cannot name a record here")
                .with_label(l.span, "constant")
                .help("resolve a code through couplings with `via MAPPING`, e.g. `'USD' -> transactioncurrencyid via CURRENCY`"),
        );
        return;
    }
    if let Some(why) = types::literal_misfit(l, field) {
        cx.report(
            Diagnostic::new(
                codes::TYPE_MISMATCH,
                l.span,
                format!(
                    "constant does not fit `{}` ({})",
                    name.name,
                    field.ty().describe()
                ),
            )
            .label(why)
            .with_label(name.span, "target"),
        );
        return;
    }
    if let (LitKind::Str(s), Some(max)) = (&l.kind, field.ty().max_len()) {
        let n = s.chars().count() as u32;
        if n > max {
            cx.report(
                Diagnostic::new(
                    codes::MAY_TRUNCATE,
                    l.span,
                    format!(
                        "constant has {n} characters, but `{}` holds {max}",
                        name.name
                    ),
                )
                .label(format!("{n} characters"))
                .with_label(name.span, format!("{max} characters"))
                .help("shorten the constant"),
            );
        }
    }
}

/// The tables a field may refer to on its own system.
fn references(f: &Field) -> &[String] {
    &f.lookup
}

/// Checks that `via M` pairs the tables the two fields refer to.
fn check_via(cx: &mut Cx<'_>, via: &ast::Ident, left: &Resolved, right: &Resolved) {
    let Some(target) = cx.model.mappings.get(&via.name).cloned() else {
        return;
    };
    for operand in [left, right] {
        let Resolved::Field(side, name, field) = operand else {
            continue;
        };
        let expected = [&target.left, &target.right]
            .into_iter()
            .flatten()
            .find(|s| s.system == side.system)
            .cloned();
        let Some(expected) = expected else {
            if target.left.is_some() && target.right.is_some() {
                cx.report(
                    Diagnostic::new(
                        codes::VIA_WRONG_TABLES,
                        via.span,
                        format!(
                            "`{}` does not pair a table of system `{}`",
                            via.name, side.system
                        ),
                    )
                    .label("looked up here")
                    .with_label(target.name_span, "declared here")
                    .help("`via` names a mapping between the two systems of this mapping"),
                );
            }
            return;
        };
        let on_option_side = target
            .option_fields
            .as_ref()
            .filter(|_| target.right.as_ref() == Some(&expected))
            .map(|(_, opt)| opt.clone());
        let fits = match &on_option_side {
            Some(option_field) => {
                let target_field = cx.model.field(&expected, option_field).cloned();
                field.ty() == Ty::Option
                    && ((side.table == expected.table && name.name == *option_field)
                        || (field.option_set.is_some()
                            && target_field.as_ref().and_then(|f| f.option_set.clone())
                                == field.option_set))
            }
            None => references(field).contains(&expected.table),
        };
        if fits {
            continue;
        }
        if on_option_side.is_none() && !field.is_reference() {
            cx.report(
                Diagnostic::new(
                    codes::VIA_ON_PLAIN_FIELD,
                    name.span,
                    format!("`{}` does not refer to another record, so it cannot be looked up through `{}`", name.name, via.name),
                )
                .label(format!("{} value, not a reference", field.ty().describe()))
                .with_label(via.span, "lookup")
                .help("remove `via`, or map the field that refers to the record"),
            );
            return;
        }
        let refers = if let Some(opt) = &on_option_side {
            format!("is not the option field `{}.{}`", expected.table, opt)
        } else {
            format!("refers to `{}`", references(field).join("`, `"))
        };
        let better = better_via(cx, &target.name, left, right);
        cx.report(
            Diagnostic::new(
                codes::VIA_WRONG_TABLES,
                via.span,
                format!(
                    "`{}` pairs `{}` with `{}`, but `{}` {}",
                    via.name,
                    target
                        .left
                        .as_ref()
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                    target
                        .right
                        .as_ref()
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                    name.name,
                    refers
                ),
            )
            .label(format!("expects a reference to `{}`", expected))
            .with_label(name.span, refers.clone())
            .help(match better {
                Some(m) => format!("did you mean `via {m}`?"),
                None => "name the mapping that pairs the tables both fields refer to".into(),
            }),
        );
        return;
    }
}

/// A mapping that would fit a line whose `via` is wrong.
fn better_via(cx: &Cx<'_>, wrong: &str, left: &Resolved, right: &Resolved) -> Option<String> {
    let refs = |r: &Resolved| match r {
        Resolved::Field(side, name, f) => Some((side.clone(), name.name.clone(), (**f).clone())),
        _ => None,
    };
    let (l, r) = (refs(left), refs(right));
    cx.model
        .mappings
        .values()
        .filter(|m| m.name != wrong)
        .find(|m| {
            let fits = |x: &Option<(Side, String, Field)>| match x {
                None => true,
                Some((side, name, f)) => [&m.left, &m.right].into_iter().flatten().any(|s| {
                    s.system == side.system
                        && (f.lookup.contains(&s.table)
                            || m.option_fields.as_ref().is_some_and(|(_, o)| {
                                *o == *name || f.option_set.is_some() && m.right.as_ref() == Some(s)
                            }))
                }),
            };
            fits(&l) && fits(&r) && (l.is_some() || r.is_some())
        })
        .map(|m| m.name.clone())
}

/// For a reference line without `via`: the mapping pairing what the two fields refer to.
fn suggest_via(
    cx: &Cx<'_>,
    source: &Side,
    source_field: &str,
    target: &Side,
    target_field: &str,
) -> Option<String> {
    let s = cx.model.field(source, source_field)?.clone();
    let t = cx.model.field(target, target_field)?.clone();
    cx.model
        .mappings
        .values()
        .find(|m| {
            let sides = [&m.left, &m.right];
            let has = |sys: &str, refs: &[String]| {
                sides.iter().any(|x| {
                    x.as_ref()
                        .is_some_and(|x| x.system == sys && refs.contains(&x.table))
                })
            };
            let option_hit = m
                .option_fields
                .as_ref()
                .is_some_and(|(_, o)| o == target_field || o == source_field);
            option_hit || (has(&source.system, &s.lookup) && has(&target.system, &t.lookup))
        })
        .map(|m| m.name.clone())
}
