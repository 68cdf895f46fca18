//! What an endpoint can serve, decided before anything runs. The Business Central API v2.0
//! exposes only some tables (those with an entity set, `api:` in the catalog) and some fields
//! (`api:`, or `api_ref:` for references it holds as ids); a profile may declare more that its
//! endpoint publishes (custom API pages, `publishes:`). On a system bound to such an endpoint:
//!
//! - a field line whose field the endpoint does not serve is left out (warning W0903): the
//!   line is neither read nor written there, and the plan says so;
//! - a mapping on a table without an entity set is left out (W0904), and so are the lines of
//!   other mappings that look up through it (W0905);
//! - a field that decides which records or couplings a mapping takes (a filter, a couple-by
//!   pair, a key, a watermark, a split, a create value) cannot be left out: an error (E0901);
//! - a `<->` line into a read-only property runs one-way (W0906); a table read from a set that
//!   holds other records is scoped by its `api_filter` (W0907); a filter on an option label that
//!   the API shows as the same value as other labels takes those too (W0908).

pub mod published;
mod shared;
mod uses;

pub use published::{Published, PublishedTable};

use super::model::LeftOut;
use super::{MappingKind, Model};
use crate::diagnostic::{codes, Diagnostic};
use crate::schema::Table;
use crate::source::Span;
use crate::syntax::ast;
use std::collections::HashSet;

/// Restricts `model` to what the Business Central API endpoint bound to `system` serves
/// (with what `published` adds), and says what was left out and what cannot run.
/// `profile` names the binding, for the messages.
pub fn serve(
    model: &mut Model,
    system: &str,
    profile: &str,
    published: &Published,
) -> Vec<Diagnostic> {
    published::publish(model, system, published);
    let cx = Cx { system, profile };
    let mut out = Vec::new();
    let mut left_out = Vec::new();
    // `<->` lines whose field on this side the API cannot write: (line, this side is left).
    let mut one_way: Vec<(Span, bool)> = Vec::new();
    for m in model.mappings.values().filter(|m| model.enabled(m)) {
        let sides: Vec<(&ast::Ident, Option<&ast::MappingDecl>, bool)> = match &m.kind {
            MappingKind::Table(decl) => vec![
                (&decl.left.table, Some(decl), true),
                (&decl.right.table, Some(decl), false),
            ]
            .into_iter()
            .filter(|(_, d, left)| {
                let side = if *left {
                    &d.unwrap().left
                } else {
                    &d.unwrap().right
                };
                side.system.name == system
            })
            .collect(),
            MappingKind::Options(o) if o.left.system.name == system => {
                vec![(&o.left.table, None, true)]
            }
            MappingKind::Options(_) => Vec::new(),
        };
        for (table_name, decl, left) in sides {
            let Some(table) = model
                .systems
                .get(system)
                .and_then(|s| s.table(&table_name.name))
            else {
                continue; // unknown tables are reported by the checker
            };
            if table.api.is_none() {
                out.push(cx.table_left_out(table_name));
                left_out.push(LeftOut {
                    mapping: m.name.clone(),
                    line: None,
                    what: table_name.name.clone(),
                    reason: format!(
                        "`{system}` serves no `{}` (no API entity set)",
                        table_name.name
                    ),
                });
                break;
            }
            if let (Some(filter), Some(_)) = (&table.api_filter, decl) {
                out.push(cx.table_scoped(table_name, table, filter));
            }
            let Some(decl) = decl else {
                if let MappingKind::Options(o) = &m.kind {
                    let written = o.arrow.dir == ast::Direction::Backward;
                    if unexposed(table, &o.left.field.name) {
                        out.push(cx.identity_error(table_name, table, &o.left.field, written));
                    }
                }
                continue;
            };
            out.extend(shared::check(decl, system, table, &cx.binds()));
            let uses = uses::of_side(decl, system, left);
            let mut seen: Vec<&str> = Vec::new();
            for (field, written) in &uses.identity {
                if unexposed(table, &field.name) && !seen.contains(&field.name.as_str()) {
                    seen.push(&field.name);
                    out.push(cx.identity_error(table_name, table, field, *written));
                }
            }
            for (line, field, written) in &uses.lines {
                if *written && read_only_there(table, &field.name) {
                    if line.arrow.dir == ast::Direction::Both {
                        out.push(cx.line_one_way(table_name, table, field));
                        one_way.push((line.span, left));
                    } else {
                        out.push(cx.line_read_only(table_name, table, field));
                        left_out.push(LeftOut {
                            mapping: m.name.clone(),
                            line: Some(line.span),
                            what: field.name.clone(),
                            reason: format!(
                                "`{system}` cannot write `{}`.`{}` (read-only in the API)",
                                table_name.name, field.name
                            ),
                        });
                    }
                    continue;
                }
                if unexposed(table, &field.name) {
                    out.push(cx.line_left_out(table_name, table, field, *written));
                    left_out.push(LeftOut {
                        mapping: m.name.clone(),
                        line: Some(line.span),
                        what: field.name.clone(),
                        reason: format!(
                            "`{system}` has no property for `{}`.`{}`",
                            table_name.name, field.name
                        ),
                    });
                }
            }
        }
    }
    let (diagnostics, lines) = throughs_left_out(model, &cx, &left_out);
    out.extend(diagnostics);
    left_out.extend(lines);
    model.left_out.extend(left_out);
    make_one_way(model, &one_way);
    // Until nothing more: a mapping left out for its parent may be another's parent.
    loop {
        let more = lookups_through_left_out(model);
        if more.is_empty() {
            break;
        }
        out.extend(more);
    }
    remove_left_out_lines(model);
    out.sort_by_key(|d| (d.span.file, d.span.start));
    out
}

struct Cx<'a> {
    system: &'a str,
    profile: &'a str,
}

impl Cx<'_> {
    fn binds(&self) -> String {
        format!(
            "profile `{}` binds `{}` to `business_central`",
            self.profile, self.system
        )
    }

    fn table_left_out(&self, table: &ast::Ident) -> Diagnostic {
        Diagnostic::new(
            codes::TABLE_LEFT_OUT,
            table.span,
            format!(
                "`{}` is not in the Business Central API, so this mapping is left out: {}",
                table.name,
                self.binds()
            ),
        )
        .label("no API entity set: the mapping does not run with this profile")
        .help(format!(
            "Business Central API v2.0 has no entity set for this table. If the endpoint publishes one (a custom API page), declare it in the profile: `publishes: {{ \"{}\": {{ entity_set: <name>, fields: {{ ... }} }} }}`; otherwise nothing to do: `coupler plan --profile {}` lists what this profile leaves out",
            table.name, self.profile
        ))
    }

    /// A `through` table the API does not serve: the line is left out.
    fn through_left_out(&self, t: &ast::Through) -> Diagnostic {
        Diagnostic::new(
            codes::LINE_LEFT_OUT,
            t.table.span,
            format!(
                "`{}` is not in the Business Central API, so this line is left out: {}",
                t.table.table.name,
                self.binds()
            ),
        )
        .label("goes through a table the API has no entity set for")
        .help("the records are synchronized without this field; a custom API page that publishes the table would bring it back")
    }

    fn line_left_out(
        &self,
        table_name: &ast::Ident,
        table: &Table,
        field: &ast::Ident,
        written: bool,
    ) -> Diagnostic {
        let what = if written { "written" } else { "read" };
        Diagnostic::new(
            codes::LINE_LEFT_OUT,
            field.span,
            format!(
                "`{}`.`{}` is not in the Business Central API, so this line is left out: {}",
                table_name.name,
                field.name,
                self.binds()
            ),
        )
        .label(format!(
            "{what} here; no property in `{}`: neither read nor written with this profile",
            table.api.as_deref().unwrap_or("")
        ))
        .help(format!(
            "if the endpoint publishes the field (a custom API page), declare its property in the profile: `publishes: {{ \"{}\": {{ fields: {{ \"{}\": <property> }} }} }}`",
            table_name.name, field.name
        ))
    }

    fn table_scoped(&self, table_name: &ast::Ident, table: &Table, filter: &str) -> Diagnostic {
        let set = table.api.as_deref().unwrap_or("");
        Diagnostic::new(
            codes::TABLE_SCOPED,
            table_name.span,
            format!(
                "`{set}` holds other records beside `{}`'s; only those matching `{filter}` are read: {}",
                table_name.name,
                self.binds()
            ),
        )
        .label(format!(
            "read from `{set}` where `{filter}`; records the API does not tell apart from these are read too"
        ))
        .help("`coupler explain W0907` says which records those are and what becomes of them")
    }

    fn line_one_way(
        &self,
        table_name: &ast::Ident,
        table: &Table,
        field: &ast::Ident,
    ) -> Diagnostic {
        Diagnostic::new(
            codes::LINE_ONE_WAY,
            field.span,
            format!(
                "`{}`.`{}` is read-only in the Business Central API, so this line only reads it: {}",
                table_name.name,
                field.name,
                self.binds()
            ),
        )
        .label(format!(
            "`{}` cannot be written through `{}`: with this profile the line flows from Business Central only",
            field.name,
            table.api.as_deref().unwrap_or("")
        ))
        .help("the API page marks the property read-only (`Editable = false`); changes made on the other side are not written back with this profile")
    }

    fn line_read_only(
        &self,
        table_name: &ast::Ident,
        table: &Table,
        field: &ast::Ident,
    ) -> Diagnostic {
        Diagnostic::new(
            codes::LINE_LEFT_OUT,
            field.span,
            format!(
                "`{}`.`{}` is read-only in the Business Central API, so this line is left out: {}",
                table_name.name,
                field.name,
                self.binds()
            ),
        )
        .label(format!(
            "written here; `{}` cannot be written through `{}`: neither read nor written with this profile",
            field.name,
            table.api.as_deref().unwrap_or("")
        ))
        .help("the API page marks the property read-only (`Editable = false`): Business Central sets it itself")
    }

    fn identity_error(
        &self,
        table_name: &ast::Ident,
        table: &Table,
        field: &ast::Ident,
        written: bool,
    ) -> Diagnostic {
        let what = if written { "written" } else { "read" };
        Diagnostic::new(
            codes::FIELD_NOT_IN_API,
            field.span,
            format!(
                "`{}`.`{}` is not in the Business Central API: {}",
                table_name.name,
                field.name,
                self.binds()
            ),
        )
        .label(format!("{what} here; no property in `{}`", table.api.as_deref().unwrap_or("")))
        .help("this field decides which records or couplings the mapping takes, so it cannot be left out: use a field the API has (`api:` in the schema catalog), or declare the property the endpoint publishes (`publishes:` in the profile)")
    }
}

/// Lines of mappings that still run and look up through a mapping that was left out: they would
/// fail on every record, so they are left out too (W0905).
fn lookups_through_left_out(model: &mut Model) -> Vec<Diagnostic> {
    let off: HashSet<String> = model
        .left_out
        .iter()
        .filter(|l| l.line.is_none())
        .map(|l| l.mapping.clone())
        .collect();
    let mut out = Vec::new();
    let mut more = Vec::new();
    for m in model.mappings.values().filter(|m| model.enabled(m)) {
        let MappingKind::Table(decl) = &m.kind else {
            continue;
        };
        for line in all_lines(decl) {
            let Some(via) = line.via.as_ref().filter(|v| off.contains(&v.name)) else {
                continue;
            };
            if model.left_out.iter().any(|l| l.line == Some(line.span)) {
                continue;
            }
            // A `[parent]` line: without its parent a record would be made without the record
            // it belongs to, so the whole mapping is left out.
            let parent = line
                .modifiers
                .iter()
                .any(|m| m.kind == Some(ast::ModifierKind::Parent));
            if parent {
                out.push(
                    Diagnostic::new(
                        codes::LOOKUP_LEFT_OUT,
                        via.span,
                        format!(
                            "this mapping's records belong to records of `{}`, which this profile leaves out, so the mapping is left out too",
                            via.name
                        ),
                    )
                    .label("the parent mapping does not run with this profile"),
                );
                more.push(LeftOut {
                    mapping: m.name.clone(),
                    line: None,
                    what: m.name.clone(),
                    reason: format!("its records belong to `{}`, which is left out", via.name),
                });
                break;
            }
            out.push(
                Diagnostic::new(
                    codes::LOOKUP_LEFT_OUT,
                    via.span,
                    format!(
                        "this line looks up through `{}`, which this profile leaves out, so the line is left out too",
                        via.name
                    ),
                )
                .label("the mapping looked up through does not run with this profile"),
            );
            more.push(LeftOut {
                mapping: m.name.clone(),
                line: Some(line.span),
                what: line_field(line),
                reason: format!("looks up through `{}`, which is left out", via.name),
            });
        }
    }
    model.left_out.extend(more);
    out
}

/// Lines that go `through` a table the endpoint does not serve are left out (W0903), except in
/// mappings left out whole already.
fn throughs_left_out(
    model: &Model,
    cx: &Cx<'_>,
    already: &[LeftOut],
) -> (Vec<Diagnostic>, Vec<LeftOut>) {
    let system = cx.system;
    let mut out: Vec<Diagnostic> = Vec::new();
    let mut left_out: Vec<LeftOut> = Vec::new();
    for m in model.mappings.values().filter(|m| model.enabled(m)) {
        let whole = already
            .iter()
            .any(|l| l.mapping == m.name && l.line.is_none());
        let MappingKind::Table(decl) = &m.kind else {
            continue;
        };
        for line in all_lines(decl).filter(|_| !whole) {
            let Some(t) = line
                .through
                .as_ref()
                .filter(|t| t.table.system.name == system)
            else {
                continue;
            };
            let served = model
                .systems
                .get(system)
                .and_then(|s| s.table(&t.table.table.name));
            if served.is_none_or(|table| table.api.is_some()) {
                continue;
            }
            out.push(cx.through_left_out(t));
            left_out.push(LeftOut {
                mapping: m.name.clone(),
                line: Some(line.span),
                what: t.table.table.name.clone(),
                reason: format!(
                    "`{system}` serves no `{}` (no API entity set), which the line goes through",
                    t.table.table.name
                ),
            });
        }
    }
    (out, left_out)
}

fn all_lines(decl: &ast::MappingDecl) -> impl Iterator<Item = &ast::FieldLine> {
    decl.clauses.iter().flat_map(|c| match c {
        ast::Clause::Fields(f) => f.lines.iter().collect::<Vec<_>>(),
        ast::Clause::Split(s) => s.body.lines.iter().collect(),
        _ => Vec::new(),
    })
}

fn line_field(line: &ast::FieldLine) -> String {
    match (&line.left, &line.right) {
        (ast::Operand::Field(f), _) | (_, ast::Operand::Field(f)) => f.name.clone(),
        _ => String::new(),
    }
}

/// The lines left out are taken out of the mappings, so that the plan and the engine never see
/// them (their `LeftOut` entries keep what they were).
fn remove_left_out_lines(model: &mut Model) {
    let spans: HashSet<Span> = model.left_out.iter().filter_map(|l| l.line).collect();
    for m in model.mappings.values_mut() {
        let MappingKind::Table(decl) = &mut m.kind else {
            continue;
        };
        for clause in &mut decl.clauses {
            match clause {
                ast::Clause::Fields(f) => f.lines.retain(|l| !spans.contains(&l.span)),
                ast::Clause::Split(s) => s.body.lines.retain(|l| !spans.contains(&l.span)),
                _ => {}
            }
        }
    }
}

/// `<->` lines become one-way, from the side that is read-only in the API.
fn make_one_way(model: &mut Model, lines: &[(Span, bool)]) {
    for m in model.mappings.values_mut() {
        let MappingKind::Table(decl) = &mut m.kind else {
            continue;
        };
        for clause in &mut decl.clauses {
            let body = match clause {
                ast::Clause::Fields(f) => &mut f.lines,
                ast::Clause::Split(s) => &mut s.body.lines,
                _ => continue,
            };
            for line in body.iter_mut() {
                if let Some((_, left)) = lines.iter().find(|(s, _)| *s == line.span) {
                    // Read-only on the left: it flows left to right only (and the reverse).
                    line.arrow.dir = if *left {
                        ast::Direction::Forward
                    } else {
                        ast::Direction::Backward
                    };
                }
            }
        }
    }
}

/// A field the API exposes but does not let be written.
fn read_only_there(table: &Table, field: &str) -> bool {
    table.fields.get(field).is_some_and(|f| f.api_read_only)
}

/// A field of a table the API has, that the API does not expose.
fn unexposed(table: &Table, field: &str) -> bool {
    table
        .fields
        .get(field)
        .is_some_and(|f| f.api.is_none() && f.api_ref.is_none() && f.api_constant.is_none())
}
