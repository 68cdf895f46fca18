//! Option mappings: a Business Central table's codes coupled with a Dataverse option set.

use super::{declarations, Cx};
use crate::diagnostic::{codes, Diagnostic};
use crate::syntax::ast::{self, Direction};
use crate::transform::Ty;

pub(crate) fn check_options(cx: &mut Cx<'_>, o: &ast::OptionsDecl) {
    let primary = cx
        .model
        .mappings
        .get(&o.name.name)
        .is_some_and(|r| r.span == o.span);
    if o.arrow.dir == Direction::Both {
        cx.report(
            Diagnostic::new(
                codes::BIDIRECTIONAL_OPTIONS,
                o.arrow.span,
                format!("option mapping `{}` cannot synchronize both ways", o.name.name),
            )
            .label("`<->` here")
            .help("option sets are kept in one system: write `->` (Business Central codes into the option set) or `<-`"),
        );
    }
    let left = cx.resolve_side(&o.left.system, &o.left.table);
    let right = cx.resolve_side(&o.right.system, &o.right.table);
    let key = left
        .as_ref()
        .and_then(|s| cx.resolve_field(s, &o.left.field));
    let option = right
        .as_ref()
        .and_then(|s| cx.resolve_field(s, &o.right.field));
    if let Some(f) = &key {
        if !f.ty().is_textual() {
            cx.report(
                Diagnostic::new(codes::TYPE_MISMATCH, o.left.field.span, format!("`{}` is not a code field", o.left.field.name))
                    .label(f.ty().describe())
                    .help("the left side of an option mapping is the code of each record, matched to an option label"),
            );
        }
    }
    if let Some(f) = &option {
        if f.ty() != Ty::Option {
            cx.report(
                Diagnostic::new(
                    codes::NOT_AN_OPTION,
                    o.right.field.span,
                    format!("`{}.{}` is not an option field", o.right.table.name, o.right.field.name),
                )
                .label(format!("{} field", f.ty().describe()))
                .help("an option mapping couples codes with the values of an option set (choice) field"),
            );
        } else {
            for pair in &o.pairs {
                if f.option_label(&pair.label.value).is_none() {
                    let labels: Vec<String> = f
                        .options
                        .as_ref()
                        .map(|o| o.keys().cloned().collect())
                        .unwrap_or_default();
                    let help = crate::diagnostic::suggest::help_for(&pair.label.value, &labels)
                        .unwrap_or_else(|| {
                            format!(
                                "the labels are {}",
                                labels
                                    .iter()
                                    .map(|l| format!("'{l}'"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        });
                    cx.report(
                        Diagnostic::new(
                            codes::UNKNOWN_OPTION,
                            pair.label.span,
                            format!(
                                "unknown option `{}` for `{}.{}`",
                                pair.label.value, o.right.table.name, o.right.field.name
                            ),
                        )
                        .label("not a label of this option set")
                        .help(help),
                    );
                }
            }
        }
    }
    if primary {
        declarations::set_sides(cx, &o.name.name, left, right);
        if let Some(m) = cx.model.mappings.get_mut(&o.name.name) {
            m.option_fields = Some((o.left.field.name.clone(), o.right.field.name.clone()));
        }
    }
}
