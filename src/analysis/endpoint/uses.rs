//! What a mapping uses of one side: the fields that decide which records and which couplings
//! (filters, couple-by pairs, keys, watermarks, split fields, create values, conditions), and
//! its field lines.

use crate::syntax::ast::{self, Clause, Expr, Operand};

/// One side's uses of a mapping.
pub struct Uses<'a> {
    /// Fields that decide which records and couplings: (field, written?).
    pub identity: Vec<(&'a ast::Ident, bool)>,
    /// Field lines with a field on this side: (line, the field, written?).
    pub lines: Vec<(&'a ast::FieldLine, &'a ast::Ident, bool)>,
}

/// The uses on the `left` (or right) side of `decl`, which is on `system`.
pub fn of_side<'a>(decl: &'a ast::MappingDecl, system: &str, left: bool) -> Uses<'a> {
    let mut identity: Vec<(&ast::Ident, bool)> = Vec::new();
    let mut lines: Vec<&ast::FieldLine> = Vec::new();
    for clause in &decl.clauses {
        match clause {
            Clause::Where(w) if w.system.name == system => expr_fields(&w.expr, &mut identity),
            Clause::Couple(c) => {
                for p in &c.pairs {
                    identity.push((if left { &p.left } else { &p.right }, false));
                }
            }
            Clause::Fields(f) => {
                if let Some(cond) = f.condition.as_ref().filter(|c| c.system.name == system) {
                    expr_fields(&cond.expr, &mut identity);
                }
                lines.extend(f.lines.iter());
            }
            Clause::Split(s) => {
                lines.extend(s.body.lines.iter());
                // The split's source field is on the reading side, its targets on the other.
                let reads_here = (decl.arrow.dir == ast::Direction::Forward) == left;
                if reads_here {
                    identity.push((&s.field, false));
                } else {
                    identity.push((&s.into, true));
                    if let Some(n) = &s.numbered {
                        identity.push((n, true));
                    }
                }
            }
            Clause::CreateValues(c) if c.system.name == system => {
                identity.extend(c.values.iter().map(|v| (&v.field, true)));
            }
            // `watermark SYSTEM: none` names no field.
            Clause::Watermark(k) if !k.field.quoted && k.field.name == "none" => {}
            Clause::Key(k) | Clause::Watermark(k) if k.system.name == system => {
                identity.push((&k.field, false));
            }
            _ => {}
        }
    }
    let lines = lines
        .into_iter()
        .filter_map(|line| {
            let operand = if left { &line.left } else { &line.right };
            let written = if left {
                line.arrow.dir.flows_backward()
            } else {
                line.arrow.dir.flows_forward()
            };
            match operand {
                Operand::Field(f) => Some((line, f, written)),
                Operand::Const(_) => None,
            }
        })
        .collect();
    Uses { identity, lines }
}

fn expr_fields<'e>(e: &'e Expr, out: &mut Vec<(&'e ast::Ident, bool)>) {
    match e {
        Expr::Or(parts, _) | Expr::And(parts, _) => {
            parts.iter().for_each(|p| expr_fields(p, out));
        }
        Expr::Not(inner, _) | Expr::Paren(inner, _) => expr_fields(inner, out),
        Expr::Compare(c) => out.push((&c.field, false)),
        Expr::In(i) => out.push((&i.field, false)),
        Expr::InSet(i) => out.push((&i.field, false)),
    }
}
