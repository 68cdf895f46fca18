//! Option-to-option lines: every label of the source option set needs a label of the same name
//! in the target set, or a `map` entry; a value with neither cannot be written (the record fails
//! on it at run time), and nothing in the file says so before a record holds it.

use super::Cx;
use crate::diagnostic::{codes, Diagnostic};
use crate::schema::Field;
use crate::syntax::ast::{self, LitKind};
use crate::transform::Ty;

/// Reports the source labels with no target label and no `map` entry.
pub(crate) fn check(
    cx: &mut Cx<'_>,
    source: (&ast::Ident, &Field),
    target: (&ast::Ident, &Field),
    calls: &[ast::Call],
) {
    let ((sname, sfield), (tname, tfield)) = (source, target);
    if sfield.ty() != Ty::Option || tfield.ty() != Ty::Option {
        return;
    }
    // Another function changes the value in ways the checker does not follow.
    if calls.iter().any(|c| c.map.is_none()) {
        return;
    }
    let covered: Vec<&str> = calls
        .iter()
        .flat_map(|c| c.map.iter().flatten())
        .filter_map(|e| match &e.from.kind {
            LitKind::Str(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    let missing: Vec<String> = sfield
        .options
        .iter()
        .flat_map(|o| o.keys())
        .filter(|l| !covered.iter().any(|c| c.eq_ignore_ascii_case(l)))
        .filter(|l| tfield.option_label(l).is_none())
        .map(|l| format!("'{l}'"))
        .collect();
    if missing.is_empty() {
        return;
    }
    let s = if missing.len() == 1 { "" } else { "s" };
    cx.report(
        Diagnostic::new(
            codes::OPTION_LABEL_UNMATCHED,
            tname.span,
            format!(
                "option label{s} {} of `{}` have no label in `{}`",
                missing.join(", "),
                sname.name,
                tname.name
            ),
        )
        .label("no label of this option set")
        .with_label(sname.span, "source option field")
        .help(format!(
            "add `| map {{ {} => '...' }}` naming the target label each becomes",
            missing[0]
        )),
    );
}
