//! What an endpoint can serve, checked before anything runs (`coupler check --profile`): the
//! Business Central API v2.0 exposes only some tables (those with an entity set, `api:` in the
//! catalog) and some fields (`api:`, or `api_ref:` for references it holds as ids). A mapping that
//! is switched on and uses anything else on a Business Central system bound to the API cannot
//! run there; this finds every such use, at its place in the mapping file.

use super::{MappingKind, Model};
use crate::diagnostic::{codes, Diagnostic};
use crate::schema::Table;
use crate::syntax::ast::{self, Clause, Expr, Operand};

/// Diagnostics for the enabled mappings that use, on system `system`, tables or fields the
/// Business Central API does not expose. `profile` names the binding, for the messages.
pub fn check_business_central_api(model: &Model, system: &str, profile: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for m in model.mappings.values() {
        if !model.enabled(m) {
            continue;
        }
        match &m.kind {
            MappingKind::Table(decl) => check_mapping(model, system, profile, decl, &mut out),
            MappingKind::Options(o) => {
                if o.left.system.name == system {
                    // `<-` option mappings create the records of their table.
                    let uses = [(&o.left.field, o.arrow.dir == ast::Direction::Backward)];
                    check_side(model, system, profile, &o.left.table, &uses, &mut out);
                }
            }
        }
    }
    out.sort_by_key(|d| (d.span.file, d.span.start));
    out
}

fn check_mapping(
    model: &Model,
    system: &str,
    profile: &str,
    decl: &ast::MappingDecl,
    out: &mut Vec<Diagnostic>,
) {
    for (table_ref, left) in [(&decl.left, true), (&decl.right, false)] {
        if table_ref.system.name != system {
            continue;
        }
        // The fields of this side the mapping uses: (field, written?).
        let mut uses: Vec<(&ast::Ident, bool)> = Vec::new();
        let writes_here = |line: &ast::FieldLine| {
            if left {
                line.arrow.dir.flows_backward()
            } else {
                line.arrow.dir.flows_forward()
            }
        };
        let mut lines: Vec<&ast::FieldLine> = Vec::new();
        for clause in &decl.clauses {
            match clause {
                Clause::Where(w) if w.system.name == system => expr_fields(&w.expr, &mut uses),
                Clause::Couple(c) => {
                    for p in &c.pairs {
                        uses.push((if left { &p.left } else { &p.right }, false));
                    }
                }
                Clause::Fields(f) => {
                    if let Some(cond) = f.condition.as_ref().filter(|c| c.system.name == system) {
                        expr_fields(&cond.expr, &mut uses);
                    }
                    lines.extend(f.lines.iter());
                }
                Clause::Split(s) => {
                    lines.extend(s.body.lines.iter());
                    // The split's source field is on the reading side, its targets on the other.
                    let reads_here = (decl.arrow.dir == ast::Direction::Forward) == left;
                    if reads_here {
                        uses.push((&s.field, false));
                    } else {
                        uses.push((&s.into, true));
                        if let Some(n) = &s.numbered {
                            uses.push((n, true));
                        }
                    }
                }
                Clause::CreateValues(c) if c.system.name == system => {
                    uses.extend(c.values.iter().map(|v| (&v.field, true)));
                }
                // `watermark SYSTEM: none` names no field.
                Clause::Watermark(k) if !k.field.quoted && k.field.name == "none" => {}
                Clause::Key(k) | Clause::Watermark(k) if k.system.name == system => {
                    uses.push((&k.field, false));
                }
                _ => {}
            }
        }
        for line in lines {
            let operand = if left { &line.left } else { &line.right };
            if let Operand::Field(f) = operand {
                uses.push((f, writes_here(line)));
            }
        }
        check_side(model, system, profile, &table_ref.table, &uses, out);
    }
}

fn expr_fields<'e>(e: &'e Expr, out: &mut Vec<(&'e ast::Ident, bool)>) {
    match e {
        Expr::Or(parts, _) | Expr::And(parts, _) => {
            parts.iter().for_each(|p| expr_fields(p, out));
        }
        Expr::Not(inner, _) | Expr::Paren(inner, _) => expr_fields(inner, out),
        Expr::Compare(c) => out.push((&c.field, false)),
        Expr::In(i) => out.push((&i.field, false)),
    }
}

fn check_side(
    model: &Model,
    system: &str,
    profile: &str,
    table_name: &ast::Ident,
    uses: &[(&ast::Ident, bool)],
    out: &mut Vec<Diagnostic>,
) {
    let Some(table) = model
        .systems
        .get(system)
        .and_then(|s| s.table(&table_name.name))
    else {
        return; // unknown tables are reported by the checker
    };
    if table.api.is_none() {
        out.push(
            Diagnostic::new(
                codes::TABLE_NOT_IN_API,
                table_name.span,
                format!(
                    "`{}` is not in the Business Central API: profile `{profile}` binds `{system}` to `business_central`",
                    table_name.name
                ),
            )
            .label("no API entity set")
            .help("Business Central API v2.0 has no entity set for this table: switch the mapping off for this profile (`when` + `settings:` in the profile), or use an embedded or custom endpoint"),
        );
        return;
    }
    let mut seen: Vec<&str> = Vec::new();
    for (field, written) in uses {
        if !unexposed(table, &field.name) || seen.contains(&field.name.as_str()) {
            continue;
        }
        seen.push(&field.name);
        let what = if *written { "written" } else { "read" };
        out.push(
            Diagnostic::new(
                codes::FIELD_NOT_IN_API,
                field.span,
                format!(
                    "`{}`.`{}` is not in the Business Central API: profile `{profile}` binds `{system}` to `business_central`",
                    table_name.name, field.name
                ),
            )
            .label(format!("{what} here; no property in `{}`", table.api.as_deref().unwrap_or("")))
            .help("the API cannot read or write this field: leave the line out for this profile (a mapping of its own, switched by a setting), or map a field the API has (`api:` in the schema catalog)"),
        );
    }
}

/// A field of a table the API has, that the API does not expose.
fn unexposed(table: &Table, field: &str) -> bool {
    table
        .fields
        .get(field)
        .is_some_and(|f| f.api.is_none() && f.api_ref.is_none())
}
