//! Filters that the API cannot keep apart: on a Business Central API endpoint, some option
//! labels travel as one enum value (a sales order's Released and Pending Prepayment are both
//! `Open`), so a filter naming one of them takes the others too, whether the server or coupler
//! evaluates it (the value read back cannot tell them apart either). Said as W0908.

use crate::diagnostic::{codes, Diagnostic};
use crate::schema::Table;
use crate::syntax::ast::{self, Clause, Expr, LitKind};

/// W0908 for each label a `where` of `system` names that shares its API value with others.
pub fn check(decl: &ast::MappingDecl, system: &str, table: &Table, binds: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for clause in &decl.clauses {
        let expr = match clause {
            Clause::Where(w) if w.system.name == system => &w.expr,
            Clause::Fields(f) => match f.condition.as_ref().filter(|c| c.system.name == system) {
                Some(c) => &c.expr,
                None => continue,
            },
            _ => continue,
        };
        let mut named = Vec::new();
        labels(expr, &mut named);
        for (field, lit) in named {
            let LitKind::Str(label) = &lit.kind else {
                continue;
            };
            let Some(f) = table.fields.get(&field.name) else {
                continue;
            };
            let Some(label) = f.option_label(label) else {
                continue;
            };
            let value = f.api_value(label);
            let others: Vec<&str> = f
                .options
                .iter()
                .flat_map(|o| o.keys())
                .filter(|l| *l != label && f.api_value(l) == value)
                .map(String::as_str)
                .collect();
            if others.is_empty() {
                continue;
            }
            let also = others
                .iter()
                .map(|o| format!("'{o}'"))
                .collect::<Vec<_>>()
                .join(", ");
            out.push(
                Diagnostic::new(
                    codes::OPTION_SHARED_IN_API,
                    lit.span,
                    format!(
                        "`{}` '{label}' and {also} are one value in the Business Central API (`{value}`), so this filter takes {also} too: {binds}",
                        field.name
                    ),
                )
                .label(format!("also matches {also} with this profile"))
                .help("the API page shows these labels as one enum value; no filter can tell them apart there. If those records must stay out, filter on another field, or publish a page that exposes the field itself (`publishes:`)"),
            );
        }
    }
    out
}

fn labels<'e>(e: &'e Expr, out: &mut Vec<(&'e ast::Ident, &'e ast::Literal)>) {
    match e {
        Expr::Or(parts, _) | Expr::And(parts, _) => parts.iter().for_each(|p| labels(p, out)),
        Expr::Not(inner, _) | Expr::Paren(inner, _) => labels(inner, out),
        Expr::Compare(c) => out.push((&c.field, &c.value)),
        Expr::In(i) => out.extend(i.values.iter().map(|v| (&i.field, v))),
        // A value set holds codes, no option labels.
        Expr::InSet(_) => {}
    }
}
