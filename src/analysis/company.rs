//! The company scope of a Dataverse system (`company bcbi_companyid except ...`): Business
//! Central keeps several companies apart in one Dataverse environment by a lookup column on
//! each entity it integrates (the CRM proxy tables' `CompanyId` field, `ExternalName =
//! 'bcbi_companyid'`, `TableRelation = "CDS Company"`; microsoft/BCApps
//! src/Layers/W1/BaseApp/Integration/D365Sales/CRMAccount.Table.al and CDSCompany.Table.al,
//! c3414ede3ec7bab5a928f312c1208dbd0f8e39a7). The scope filters and stamps that column, so
//! a mapping must neither filter nor write it.

use super::{CompanyScope, Cx, MappingKind, Side, SystemKind};
use crate::diagnostic::{codes, suggest, Diagnostic};
use crate::schema::Catalog;
use crate::source::Span;
use crate::syntax::ast::{self, Clause, Expr, FieldLine, Operand};
use crate::transform::Ty;
use std::collections::{HashMap, HashSet};

/// The scope as declared; its entities are checked once the mappings that use them are known.
pub(super) fn declare(
    cx: &mut Cx<'_>,
    s: &ast::SystemDecl,
    kind: SystemKind,
    catalog: Option<&Catalog>,
) -> Option<CompanyScope> {
    let c = s.company.as_ref()?;
    if kind != SystemKind::Dataverse {
        cx.report(
            Diagnostic::new(
                codes::COMPANY_NOT_DATAVERSE,
                c.span,
                format!("system `{}` is `{}`: only a `dataverse` system has a company column", s.name.name, kind.as_str()),
            )
            .label("a company scope")
            .with_label(s.kind.span, "declared kind")
            .help("put the `company` clause on the `dataverse` system: Business Central's own records belong to one company already"),
        );
        return None;
    }
    if let Some(catalog) = catalog {
        for e in c.except.iter().filter(|e| catalog.table(&e.name).is_none()) {
            let help = suggest::help_for(&e.name, catalog.tables.keys()).unwrap_or_else(|| {
                format!("the schema catalog lists the entities of `{}`", s.name.name)
            });
            cx.report(
                Diagnostic::new(
                    codes::UNKNOWN_TABLE,
                    e.span,
                    format!("unknown entity `{}` in system `{}`", e.name, s.name.name),
                )
                .label(format!("not an entity of `{}`", s.name.name))
                .help(help),
            );
        }
    }
    Some(CompanyScope {
        column: c.column.name.clone(),
        except: c.except.iter().map(|e| e.name.clone()).collect(),
        span: c.column.span,
    })
}

/// Checks every company-scoped entity a mapping uses: it has the column, the column is a
/// lookup to the same company entity everywhere, and no `where` or field line touches it.
pub(super) fn check_company(cx: &mut Cx<'_>) {
    let mut seen: HashSet<(String, String)> = HashSet::new();
    // The company entity of each system: the first scoped entity's lookup target.
    let mut entity: HashMap<String, (String, String)> = HashMap::new();
    let names: Vec<String> = cx.model.mappings.keys().cloned().collect();
    for name in names {
        let m = &cx.model.mappings[&name];
        let MappingKind::Table(decl) = &m.kind else {
            continue;
        };
        let decl = decl.clone();
        let sides = [
            (m.left.clone(), &decl.left, true),
            (m.right.clone(), &decl.right, false),
        ];
        for (side, at, left) in sides {
            let Some(side) = side else { continue };
            let Some(column) = scoped_column(cx, &side) else {
                continue;
            };
            if seen.insert((side.system.clone(), side.table.clone())) {
                check_column(cx, &side, &column, at.span, &mut entity);
            }
            check_clauses(cx, &decl, &side, &column, left);
        }
    }
}

fn scoped_column(cx: &Cx<'_>, side: &Side) -> Option<String> {
    let sys = cx.model.systems.get(&side.system)?;
    sys.company_column(&side.table).map(str::to_string)
}

fn scope_span(cx: &Cx<'_>, system: &str) -> Span {
    cx.model.systems[system]
        .company
        .as_ref()
        .map(|c| c.span)
        .unwrap_or_default()
}

fn check_column(
    cx: &mut Cx<'_>,
    side: &Side,
    column: &str,
    at: Span,
    entity: &mut HashMap<String, (String, String)>,
) {
    let scope = scope_span(cx, &side.system);
    let Some(field) = cx
        .model
        .systems
        .get(&side.system)
        .and_then(|s| s.table(&side.table))
        .and_then(|t| t.fields.get(column))
        .cloned()
    else {
        cx.report(
            Diagnostic::new(
                codes::COMPANY_COLUMN_MISSING,
                at,
                format!(
                    "entity `{}` of company-scoped system `{}` has no company column `{column}`",
                    side.table, side.system
                ),
            )
            .label(format!("has no `{column}`"))
            .with_label(scope, "company scope declared here")
            .help(format!(
                "if every company shares the records of `{}`, add it to the `except` list; otherwise add `{column}` to the catalog",
                side.table
            )),
        );
        return;
    };
    let target = match (field.ty(), field.lookup.as_slice()) {
        (Ty::Lookup, [one]) => one.clone(),
        _ => {
            cx.report(
                Diagnostic::new(
                    codes::COMPANY_COLUMN_TYPE,
                    at,
                    format!(
                        "the company column `{column}` of `{}` is not a lookup to one entity",
                        side.table
                    ),
                )
                .label(format!("`{}.{column}` is not a single-target lookup", side.table))
                .with_label(scope, "company scope declared here")
                .help("the company column must reference the company entity (Business Central's `bcbi_company`)"),
            );
            return;
        }
    };
    match entity.get(&side.system) {
        Some((first, by)) if *first != target => {
            let message = format!(
                "the company column of `{}` references `{target}`, of `{by}` `{first}`",
                side.table
            );
            cx.report(
                Diagnostic::new(codes::COMPANY_COLUMN_TYPE, at, message)
                    .label(format!("references `{target}`"))
                    .with_label(scope, "company scope declared here")
                    .help("every company-scoped entity must reference the same company entity"),
            );
        }
        Some(_) => {}
        None => {
            entity.insert(side.system.clone(), (target, side.table.clone()));
        }
    }
}

fn check_clauses(cx: &mut Cx<'_>, decl: &ast::MappingDecl, side: &Side, column: &str, left: bool) {
    for clause in &decl.clauses {
        match clause {
            Clause::Where(w) if w.system.name == side.system => {
                let mut spans = Vec::new();
                named_in(&w.expr, column, &mut spans);
                for span in spans {
                    report_filtered(cx, side, column, span);
                }
            }
            Clause::Fields(f) => lines_written(cx, &f.lines, side, column, left),
            Clause::Split(sp) => lines_written(cx, &sp.body.lines, side, column, left),
            Clause::CreateValues(cv) if cv.system.name == side.system => {
                for a in cv.values.iter().filter(|a| a.field.name == column) {
                    report_written(cx, side, column, a.field.span);
                }
            }
            _ => {}
        }
    }
}

/// Every comparison of the expression that reads `column`.
fn named_in(e: &Expr, column: &str, out: &mut Vec<Span>) {
    match e {
        Expr::Or(parts, _) | Expr::And(parts, _) => {
            parts.iter().for_each(|p| named_in(p, column, out))
        }
        Expr::Not(inner, _) | Expr::Paren(inner, _) => named_in(inner, column, out),
        Expr::Compare(c) if c.field.name == column => out.push(c.span),
        Expr::In(i) if i.field.name == column => out.push(i.span),
        Expr::InSet(i) if i.field.name == column => out.push(i.span),
        _ => {}
    }
}

fn lines_written(cx: &mut Cx<'_>, lines: &[FieldLine], side: &Side, column: &str, left: bool) {
    for l in lines {
        let (operand, writes) = if left {
            (&l.left, l.arrow.dir.flows_backward())
        } else {
            (&l.right, l.arrow.dir.flows_forward())
        };
        if let (Operand::Field(f), true) = (operand, writes) {
            if f.name == column {
                report_written(cx, side, column, f.span);
            }
        }
    }
}

fn report_filtered(cx: &mut Cx<'_>, side: &Side, column: &str, span: Span) {
    let scope = scope_span(cx, &side.system);
    cx.report(
        Diagnostic::new(
            codes::COMPANY_FILTERED,
            span,
            format!(
                "`where` filters `{column}`, which the company scope of `{}` filters already",
                side.system
            ),
        )
        .label("contradicts or repeats the company scope")
        .with_label(scope, "company scope declared here")
        .help("remove it: the scope reads this company's records and those of no company, as Business Central does"),
    );
}

fn report_written(cx: &mut Cx<'_>, side: &Side, column: &str, span: Span) {
    let scope = scope_span(cx, &side.system);
    cx.report(
        Diagnostic::new(
            codes::COMPANY_WRITTEN,
            span,
            format!(
                "`{column}` of `{}` is written by the company scope of `{}`",
                side.table, side.system
            ),
        )
        .label("written by the mapping")
        .with_label(scope, "company scope declared here")
        .help("remove the line: coupler stamps every record it writes with the profile's company"),
    );
}
