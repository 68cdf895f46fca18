//! What the checks of one mapping's clauses share: the mapping's resolved sides, and the
//! resolution of other mappings' names. Below `fields`, `blocks` and `mappings`, so that their
//! imports run one way: scope <- fields <- blocks <- mappings.

use super::{Cx, Side, SideOf};
use crate::diagnostic::{codes, suggest, Diagnostic};
use crate::source::Span;
use crate::syntax::ast;

/// What the clauses of one mapping see.
pub(crate) struct MappingCx<'m> {
    pub decl: &'m ast::MappingDecl,
    pub left: Option<Side>,
    pub right: Option<Side>,
    /// False for a second definition of a name: checked, but not recorded in the model.
    pub primary: bool,
}

impl MappingCx<'_> {
    pub fn name(&self) -> &str {
        &self.decl.name.name
    }

    pub fn side_of<'s>(&'s self, cx: &mut Cx<'_>, system: &ast::Ident) -> Option<SideOf<'s>> {
        cx.side_of(
            system,
            &self.left,
            &self.right,
            &self.decl.left.system.name,
            &self.decl.right.system.name,
            self.decl.left.span.to(self.decl.right.span),
        )
    }
}

/// The first line of a clause: multi-line spans make poor labels.
pub(crate) fn head_span(cx: &Cx<'_>, span: Span) -> Span {
    let text = cx.sources.slice(span);
    let first = text.find('\n').unwrap_or(text.len());
    Span {
        end: span.start + text[..first].trim_end().len() as u32,
        ..span
    }
}

/// Resolves a mapping or options name (for `after` and `via`).
pub(crate) fn resolve_mapping(cx: &mut Cx<'_>, name: &ast::Ident) -> Option<()> {
    if cx.model.mappings.contains_key(&name.name) {
        return Some(());
    }
    let help = suggest::help_for(&name.name, cx.model.mappings.keys())
        .unwrap_or_else(|| "name a `mapping` or `options` declared in the mapping set".into());
    cx.report(
        Diagnostic::new(
            codes::UNKNOWN_MAPPING,
            name.span,
            format!("unknown mapping `{}`", name.name),
        )
        .label("no mapping or options of this name")
        .help(help),
    );
    None
}
