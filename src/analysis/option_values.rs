//! `create missing` and `also` on an option mapping: new option values go into Dataverse option
//! sets (the Metadata API's InsertOptionValue), as Business Central's Int. Option Synch. Invoke
//! (codeunit 5364, InsertCRMOption) does for Payment Terms, Shipment Method and Shipping Agent.

use super::{Cx, Side, SystemKind};
use crate::diagnostic::{codes, Diagnostic};
use crate::syntax::ast::{self, Direction};
use crate::transform::Ty;

pub(crate) fn check_option_values(cx: &mut Cx<'_>, o: &ast::OptionsDecl) {
    if let Some(span) = o.create_missing {
        let into_dataverse = cx
            .model
            .systems
            .get(&o.right.system.name)
            .is_some_and(|s| s.kind == SystemKind::Dataverse);
        if o.arrow.dir != Direction::Forward || !into_dataverse {
            cx.report(
                Diagnostic::new(
                    codes::CREATE_OPTIONS_TARGET,
                    span,
                    format!("option mapping `{}` cannot create option values", o.name.name),
                )
                .label("`create missing` here")
                .help("new option values are inserted into a Dataverse option set: write the mapping `->` with a Dataverse option field on the right"),
            );
        }
    }
    if !o.also.is_empty() && o.create_missing.is_none() {
        let first = o.also[0].span;
        cx.report(
            Diagnostic::new(
                codes::ALSO_WITHOUT_CREATE,
                first,
                format!(
                    "`also` of `{}` does nothing without `create missing`",
                    o.name.name
                ),
            )
            .label("only new option values are copied")
            .help("add `create missing`, or remove `also`"),
        );
    }
    for r in &o.also {
        check_also(cx, o, r);
    }
}

/// An `also` field: an option field of a table of the option set's own system.
fn check_also(cx: &mut Cx<'_>, o: &ast::OptionsDecl, r: &ast::FieldRef) {
    if r.system.name != o.right.system.name {
        cx.report(
            Diagnostic::new(
                codes::ALSO_NOT_OPTION,
                r.system.span,
                format!(
                    "`also` names system `{}`, not the option set's `{}`",
                    r.system.name, o.right.system.name
                ),
            )
            .label("another system")
            .help("the new values are copied to option sets of the same system"),
        );
        return;
    }
    let Some(side): Option<Side> = cx.resolve_side(&r.system, &r.table) else {
        return;
    };
    let Some(f) = cx.resolve_field(&side, &r.field) else {
        return;
    };
    if f.ty() != Ty::Option {
        cx.report(
            Diagnostic::new(
                codes::ALSO_NOT_OPTION,
                r.field.span,
                format!("`{}.{}` is not an option field", r.table.name, r.field.name),
            )
            .label(format!("{} field", f.ty().describe()))
            .help("`also` lists option set (choice) fields that get the same new values"),
        );
    }
}
