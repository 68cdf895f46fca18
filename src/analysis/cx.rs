//! What every check shares: the diagnostics, the model being built, and the resolution of
//! systems, tables and fields (reported once, with did-you-mean).

use super::{Model, Side, System, SystemKind};
use crate::diagnostic::{codes, suggest, Diagnostic, Diagnostics};
use crate::schema::{Catalog, Field, Table};
use crate::source::{SourceMap, Span};
use crate::syntax::ast;
use std::collections::HashMap;
use std::sync::Arc;

/// A schema catalog as loaded, or why it could not be (reported once per file).
pub(crate) type CachedSchema = Result<Arc<Catalog>, String>;

pub(crate) struct Cx<'a> {
    pub sources: &'a SourceMap,
    pub diags: Diagnostics,
    pub model: Model,
    pub schema_cache: HashMap<std::path::PathBuf, CachedSchema>,
    /// Systems declared with an unknown kind: already reported, silent from then on.
    pub broken_systems: std::collections::HashSet<String>,
    /// Where each setting was named, for duplicate reports.
    pub setting_names: HashMap<String, Span>,
}

impl Cx<'_> {
    pub fn report(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Resolves `system` among the declared systems, reporting an unknown one.
    pub fn resolve_system(&mut self, system: &ast::Ident) -> Option<&System> {
        if self.broken_systems.contains(&system.name) {
            return None;
        }
        if !self.model.systems.contains_key(&system.name) {
            let names: Vec<String> = self.model.systems.keys().cloned().collect();
            let help = suggest::help_for(&system.name, &names).unwrap_or_else(|| {
                if names.is_empty() {
                    "declare it first: `system NAME = business_central \"schema.yaml\"`".into()
                } else {
                    format!("the declared systems are {}", list(&names))
                }
            });
            self.report(
                Diagnostic::new(
                    codes::UNKNOWN_SYSTEM,
                    system.span,
                    format!("unknown system `{}`", system.name),
                )
                .label("no system of this name is declared")
                .help(help),
            );
            return None;
        }
        self.model.systems.get(&system.name)
    }

    /// Resolves `system.table`; reports and returns None when either is unknown or unloaded.
    pub fn resolve_side(&mut self, system: &ast::Ident, table: &ast::Ident) -> Option<Side> {
        let sys = self.resolve_system(system)?;
        let catalog = sys.catalog.clone()?;
        if catalog.table(&table.name).is_none() {
            let help = suggest::help_for(&table.name, catalog.tables.keys()).unwrap_or_else(|| {
                format!(
                    "the schema catalog `{}` lists the tables of `{}`",
                    sys.schema_path.display(),
                    sys.name
                )
            });
            let (what, a) = if sys.kind == SystemKind::Dataverse {
                ("entity", "an")
            } else {
                ("table", "a")
            };
            self.report(
                Diagnostic::new(
                    codes::UNKNOWN_TABLE,
                    table.span,
                    format!(
                        "unknown {what} `{}` in system `{}`",
                        table.name, system.name
                    ),
                )
                .label(format!("not {a} {what} of `{}`", system.name))
                .help(help),
            );
            return None;
        }
        Some(Side {
            system: system.name.clone(),
            table: table.name.clone(),
        })
    }

    pub fn table(&self, side: &Side) -> Option<&Table> {
        self.model.systems.get(&side.system)?.table(&side.table)
    }

    /// Resolves a field of a side's table, reporting an unknown one with did-you-mean.
    pub fn resolve_field(&mut self, side: &Side, field: &ast::Ident) -> Option<Field> {
        let table = self.table(side)?;
        if let Some(f) = table.fields.get(&field.name) {
            return Some(f.clone());
        }
        let help = suggest::help_for(&field.name, table.fields.keys());
        let d = Diagnostic::new(
            codes::UNKNOWN_FIELD,
            field.span,
            format!("unknown field `{}` on table `{}`", field.name, side),
        )
        .label(format!("not a field of `{}`", side.table))
        .maybe_help(help.or_else(|| {
            Some(format!(
                "run `coupler schema pull` to refresh the catalog, or check the spelling against the {} fields of `{}`",
                self.table(side).map(|t| t.fields.len()).unwrap_or(0),
                side.table
            ))
        }));
        self.report(d);
        None
    }

    /// Which side of a mapping a system name designates, reporting one that is not part of it.
    pub fn side_of<'s>(
        &mut self,
        system: &ast::Ident,
        left: &'s Option<Side>,
        right: &'s Option<Side>,
        left_name: &str,
        right_name: &str,
        mapping_span: Span,
    ) -> Option<SideOf<'s>> {
        if system.name == left_name {
            return Some(SideOf::Left(left.as_ref()?));
        }
        if system.name == right_name {
            return Some(SideOf::Right(right.as_ref()?));
        }
        if self.broken_systems.contains(&system.name) {
            return None;
        }
        if self.model.systems.contains_key(&system.name) {
            self.report(
                Diagnostic::new(
                    codes::FOREIGN_SYSTEM,
                    system.span,
                    format!("system `{}` is not part of this mapping", system.name),
                )
                .label(format!(
                    "the mapping pairs `{left_name}` with `{right_name}`"
                ))
                .with_label(mapping_span, "mapping header")
                .help(format!("use `{left_name}` or `{right_name}`")),
            );
        } else {
            let help = suggest::help_for(&system.name, [left_name, right_name])
                .unwrap_or_else(|| format!("use `{left_name}` or `{right_name}`"));
            self.report(
                Diagnostic::new(
                    codes::UNKNOWN_SYSTEM,
                    system.span,
                    format!("unknown system `{}`", system.name),
                )
                .label("no system of this name is declared")
                .help(help),
            );
        }
        None
    }
}

pub(crate) enum SideOf<'s> {
    Left(&'s Side),
    Right(&'s Side),
}

impl<'s> SideOf<'s> {
    pub fn side(&self) -> &'s Side {
        match self {
            SideOf::Left(s) | SideOf::Right(s) => s,
        }
    }
}

/// `` `a`, `b` and `c` ``
pub(crate) fn list(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {}", init.join(", "), last),
    }
}
