//! The checked model: what the plan compiler reads. Names are resolved, policies are the
//! analysis's own enums (`policy.rs`), each field line's transforms are compiled (`pipelines`);
//! the AST is kept for spans and for the plan's texts.

pub use super::policy::{Arrow, ConflictPolicy, DeletePolicy, MissingPolicy, Policies};
use crate::schema::{Catalog, Field, SystemKind, Table};
use crate::source::Span;
use crate::syntax::ast;
use crate::transform::Function;
use indexmap::IndexMap;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct System {
    pub name: String,
    pub kind: SystemKind,
    pub schema_path: PathBuf,
    /// None when the catalog could not be loaded (already reported).
    pub catalog: Option<Arc<Catalog>>,
    /// `company COLUMN except ...`: which Business Central company each record belongs to.
    pub company: Option<CompanyScope>,
    pub span: Span,
}

impl System {
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.catalog.as_ref()?.table(name)
    }

    /// The company column of `table` when the system is company-scoped and the table is not
    /// one every company shares.
    pub fn company_column(&self, table: &str) -> Option<&str> {
        let c = self.company.as_ref()?;
        (!c.except.iter().any(|e| e == table)).then_some(c.column.as_str())
    }
}

/// A system's company scope, as Business Central keeps one Dataverse environment apart for
/// several companies (CDS Integration Impl. `SetCompanyId`, CDS Setup Defaults'
/// `CompanyId = <this company>|<empty>` filters; microsoft/BCApps
/// src/Layers/W1/BaseApp/Integration/Dataverse/, c3414ede3ec7bab5a928f312c1208dbd0f8e39a7).
#[derive(Debug, Clone)]
pub struct CompanyScope {
    /// The lookup column (`bcbi_companyid`).
    pub column: String,
    /// The entities every company shares (`except`).
    pub except: Vec<String>,
    /// The column's name where it was written.
    pub span: Span,
}

/// Which side of a mapping (the left system of the header, or the right).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SideName {
    Left,
    Right,
}

impl SideName {
    pub fn as_str(self) -> &'static str {
        match self {
            SideName::Left => "left",
            SideName::Right => "right",
        }
    }

    pub fn other(self) -> SideName {
        match self {
            SideName::Left => SideName::Right,
            SideName::Right => SideName::Left,
        }
    }
}

/// One side of a mapping: a table of a system.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Side {
    pub system: String,
    pub table: String,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let q = |n: &str| {
            if n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                n.to_string()
            } else {
                format!("\"{n}\"")
            }
        };
        write!(f, "{}.{}", q(&self.system), q(&self.table))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DependencyKind {
    /// A `via` lookup: the looked-up mapping must run first.
    Via,
    /// An explicit `after`.
    After,
    /// A `[deferred]` lookup: no ordering, a patch step after both ran.
    Deferred,
}

/// `from` depends on `to`.
#[derive(Debug, Clone)]
pub struct Dependency {
    pub from: String,
    pub to: String,
    pub kind: DependencyKind,
    /// What creates the edge: the field line's target field, or `after`.
    pub reason: String,
    pub span: Span,
}

/// A field line's transforms, compiled: shared by the steps of both directions of a `<->` line.
pub type Pipeline = Arc<Vec<Box<dyn Function>>>;

#[derive(Debug, Clone)]
pub enum MappingKind {
    Table(ast::MappingDecl),
    Options(ast::OptionsDecl),
}

/// A mapping or an option mapping, by name.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub name: String,
    pub left: Option<Side>,
    pub right: Option<Side>,
    pub direction: Arrow,
    /// The `on ...` clauses over the defaults.
    pub policies: Policies,
    /// The compiled transforms of each field line (by the line's span), compiled once while
    /// they were type-checked; a line whose pipeline did not compile has none (reported).
    pub pipelines: HashMap<Span, Pipeline>,
    pub kind: MappingKind,
    /// For options: the key field on the left and the option field on the right.
    pub option_fields: Option<(String, String)>,
    pub span: Span,
    pub name_span: Span,
}

impl Mapping {
    pub fn is_options(&self) -> bool {
        matches!(self.kind, MappingKind::Options(_))
    }

    /// The setting the mapping runs under (`when`), if any.
    pub fn when_setting(&self) -> Option<&ast::Ident> {
        match &self.kind {
            MappingKind::Table(decl) => decl.clauses.iter().find_map(|c| match c {
                ast::Clause::When(w) => Some(&w.setting),
                _ => None,
            }),
            MappingKind::Options(_) => None,
        }
    }
}

/// Everything the checker proved about a mapping set.
#[derive(Debug, Default)]
pub struct Model {
    pub systems: IndexMap<String, System>,
    pub mappings: IndexMap<String, Mapping>,
    pub dependencies: Vec<Dependency>,
    pub settings: IndexMap<String, ast::Literal>,
    /// What the profile's endpoints do not serve (`endpoint::serve`): whole mappings, or lines
    /// (already taken out of their mapping).
    pub left_out: Vec<LeftOut>,
}

/// A mapping (no `line`) or a field line that an endpoint does not serve.
#[derive(Debug, Clone)]
pub struct LeftOut {
    pub mapping: String,
    pub line: Option<Span>,
    /// The field (of a line) or the table (of a mapping).
    pub what: String,
    pub reason: String,
}

impl Model {
    /// Whether a mapping runs: it has no `when`, or its setting is `true`.
    pub fn enabled(&self, m: &Mapping) -> bool {
        self.not_served(&m.name).is_none() && self.setting_on(m)
    }

    /// Why the profile's endpoints do not serve mapping `name` at all, if they do not.
    pub fn not_served(&self, name: &str) -> Option<&LeftOut> {
        self.left_out
            .iter()
            .find(|l| l.mapping == name && l.line.is_none())
    }

    /// The lines of mapping `name` that the profile's endpoints do not serve.
    pub fn lines_left_out<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a LeftOut> {
        self.left_out
            .iter()
            .filter(move |l| l.mapping == name && l.line.is_some())
    }

    fn setting_on(&self, m: &Mapping) -> bool {
        m.when_setting().is_none_or(|s| {
            matches!(
                self.settings.get(&s.name).map(|l| &l.kind),
                Some(ast::LitKind::Bool(true))
            )
        })
    }

    pub fn field(&self, side: &Side, field: &str) -> Option<&Field> {
        self.systems
            .get(&side.system)?
            .table(&side.table)?
            .fields
            .get(field)
    }
}
