//! Analysis: name resolution and every check of the mapping language (`docs/language.md`),
//! producing the [`Model`].
//!
//! Checks never cascade: a side whose system or table is unknown is reported once and its
//! fields are not checked; a field that is unknown is reported once and its line is not typed.
//!
//! The files import one way: policy, types -> model -> cx (what every check shares) ->
//! scope (one mapping's sides), filters -> fields -> blocks -> mappings; declarations, options
//! company and cycles on cx; this file only runs them in order.

mod blank;
mod blocks;
mod company;
mod cx;
mod cycles;
mod declarations;
pub mod endpoint;
mod fields;
mod filters;
mod mappings;
pub mod model;
mod option_labels;
mod option_values;
mod options;
pub mod policy;
mod scope;
mod through;
mod types;
mod value_sets;
pub use types::is_guid;

pub use model::*;
// SystemKind lives in the schema layer; re-exported so callers keep `analysis::SystemKind`.
pub use crate::schema::SystemKind;

pub(crate) use cx::{list, Cx, SideOf};

use crate::diagnostic::Diagnostics;
use crate::source::SourceMap;
use crate::syntax::ast;
use std::collections::HashMap;

/// The files of one mapping set, parsed.
pub struct ParsedFile<'a> {
    pub file: crate::source::FileId,
    pub ast: &'a ast::File,
}

/// Checks a mapping set as a whole and returns what it proved.
pub fn analyze(files: &[ParsedFile<'_>], sources: &SourceMap) -> (Model, Diagnostics) {
    let mut cx = Cx {
        sources,
        diags: Diagnostics::default(),
        model: Model::default(),
        schema_cache: HashMap::new(),
        broken_systems: Default::default(),
        setting_names: HashMap::new(),
    };
    for f in files {
        declarations::declare_file(&mut cx, f);
    }
    declarations::presolve_sides(&mut cx);
    for f in files {
        for item in &f.ast.items {
            match item {
                ast::Item::Mapping(m) => mappings::check_mapping(&mut cx, m),
                ast::Item::Options(o) => {
                    options::check_options(&mut cx, o);
                    option_values::check_option_values(&mut cx, o);
                }
                _ => {}
            }
        }
    }
    company::check_company(&mut cx);
    cycles::check_cycles(&mut cx);
    (cx.model, cx.diags)
}
