//! Declarations: systems (and their schema catalogs), settings, and the names of all mappings.
//! They are collected from every file first, so files may refer to each other.

use super::cx::CachedSchema;
use super::{Cx, Mapping, MappingKind, ParsedFile, Policies, Side, System, SystemKind};
use crate::diagnostic::{codes, suggest, Diagnostic};
use crate::schema::Catalog;
use crate::syntax::ast;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) fn declare_file(cx: &mut Cx<'_>, f: &ParsedFile<'_>) {
    if f.ast.items.is_empty() {
        let span = f.ast.span;
        cx.report(
            Diagnostic::new(
                codes::EMPTY_FILE,
                crate::source::Span {
                    end: span.start,
                    ..span
                },
                "file declares nothing",
            )
            .label("no system, mapping or options here")
            .help("add a `system` and a `mapping`, or remove the file from the mapping set"),
        );
    }
    let dir = cx
        .sources
        .file(f.file)
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for item in &f.ast.items {
        match item {
            ast::Item::System(s) => declare_system(cx, s, &dir),
            ast::Item::Settings(s) => declare_settings(cx, s),
            ast::Item::Mapping(m) => declare_mapping(
                cx,
                &m.name,
                m.span,
                Mapping {
                    name: m.name.name.clone(),
                    left: None,
                    right: None,
                    direction: m.arrow.dir.into(),
                    policies: Policies::of(m.arrow.dir.into(), &m.clauses),
                    pipelines: Default::default(),
                    kind: MappingKind::Table(m.clone()),
                    option_fields: None,
                    span: m.span,
                    name_span: m.name.span,
                },
            ),
            ast::Item::Options(o) => declare_mapping(
                cx,
                &o.name,
                o.span,
                Mapping {
                    name: o.name.name.clone(),
                    left: None,
                    right: None,
                    direction: o.arrow.dir.into(),
                    policies: Policies::options(),
                    pipelines: Default::default(),
                    kind: MappingKind::Options(o.clone()),
                    option_fields: None,
                    span: o.span,
                    name_span: o.name.span,
                },
            ),
        }
    }
}

fn declare_mapping(
    cx: &mut Cx<'_>,
    name: &ast::Ident,
    _span: crate::source::Span,
    mapping: Mapping,
) {
    if let Some(first) = cx.model.mappings.get(&name.name) {
        let first_span = first.name_span;
        cx.report(
            Diagnostic::new(
                codes::DUPLICATE_MAPPING,
                name.span,
                format!("mapping `{}` is defined twice", name.name),
            )
            .label("second definition")
            .with_label(first_span, "first defined here")
            .help("mapping names identify couplings and state: give each mapping its own name"),
        );
        return;
    }
    cx.model.mappings.insert(name.name.clone(), mapping);
}

fn declare_settings(cx: &mut Cx<'_>, s: &ast::SettingsDecl) {
    for a in &s.settings {
        if let Some(&first_span) = cx.setting_names.get(&a.field.name) {
            cx.report(
                Diagnostic::new(
                    codes::DUPLICATE_SETTING,
                    a.field.span,
                    format!("setting `{}` is given twice", a.field.name),
                )
                .label("given again here")
                .with_label(first_span, "first given here")
                .help("keep one of them"),
            );
            continue;
        }
        cx.model
            .settings
            .insert(a.field.name.clone(), a.value.clone());
        cx.setting_names.insert(a.field.name.clone(), a.field.span);
    }
}

fn declare_system(cx: &mut Cx<'_>, s: &ast::SystemDecl, dir: &Path) {
    let kind = SystemKind::ALL
        .iter()
        .find(|(n, _)| *n == s.kind.name)
        .map(|(_, k)| *k);
    let Some(kind) = kind else {
        let help = suggest::help_for(&s.kind.name, SystemKind::ALL.iter().map(|(n, _)| *n))
            .unwrap_or_else(|| "the kinds are `business_central` and `dataverse`".into());
        cx.report(
            Diagnostic::new(
                codes::UNKNOWN_KIND,
                s.kind.span,
                format!("unknown system kind `{}`", s.kind.name),
            )
            .label("not a system kind")
            .help(help),
        );
        // Known by name, so its uses are not reported as unknown systems too.
        cx.broken_systems.insert(s.name.name.clone());
        return;
    };
    let path = normalize(&dir.join(&s.schema.value));
    if let Some(first) = cx.model.systems.get(&s.name.name) {
        if first.kind != kind || first.schema_path != path {
            let first_span = first.span;
            cx.report(
                Diagnostic::new(
                    codes::DUPLICATE_SYSTEM,
                    s.name.span,
                    format!(
                        "system `{}` is declared again with a different kind or schema",
                        s.name.name
                    ),
                )
                .label("declared again here")
                .with_label(first_span, "first declared here")
                .help("every file of a mapping set must declare a system the same way"),
            );
        }
        return;
    }
    let catalog = load_schema(cx, s, &path, kind);
    let company = super::company::declare(cx, s, kind, catalog.as_deref());
    cx.model.systems.insert(
        s.name.name.clone(),
        System {
            name: s.name.name.clone(),
            kind,
            schema_path: path,
            catalog,
            company,
            span: s.span,
        },
    );
}

/// Resolves `.` and `..` without touching the disk, so the same catalog is recognised however it is reached.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                // `..` cancels a name, never another `..` (a path above the current folder).
                let above = out.as_os_str().is_empty() || out.ends_with("..");
                if above || !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn load_schema(
    cx: &mut Cx<'_>,
    s: &ast::SystemDecl,
    path: &Path,
    kind: SystemKind,
) -> Option<Arc<Catalog>> {
    let cached = cx
        .schema_cache
        .entry(path.to_path_buf())
        .or_insert_with(|| read_catalog(path))
        .clone();
    let shown = crate::source::display_path(path);
    match cached {
        Ok(catalog) => {
            if catalog.system != kind.as_str() {
                cx.report(
                    Diagnostic::new(
                        codes::SCHEMA_INVALID,
                        s.schema.span,
                        format!(
                            "schema catalog `{shown}` describes a `{}` system, not `{}`",
                            catalog.system,
                            kind.as_str()
                        ),
                    )
                    .label("catalog of another kind")
                    .with_label(s.kind.span, "declared kind")
                    .help("point the system at the catalog of its kind"),
                );
                return None;
            }
            let problems = catalog.validate();
            if !problems.is_empty() {
                let mut d = Diagnostic::new(
                    codes::SCHEMA_INVALID,
                    s.schema.span,
                    format!("schema catalog `{shown}` is inconsistent: {}", problems[0]),
                )
                .label("in this catalog")
                .help("fix the catalog: every key, modified-on field and lookup target must exist");
                for p in problems.iter().skip(1).take(9) {
                    d = d.note(p.clone());
                }
                cx.report(d);
                return None;
            }
            Some(catalog)
        }
        Err(message) if message.starts_with("read:") => {
            cx.report(
                Diagnostic::new(
                    codes::SCHEMA_UNREADABLE,
                    s.schema.span,
                    format!("cannot read schema catalog `{shown}`: {}", &message[5..]),
                )
                .label("this path is relative to the mapping file")
                .help(
                    "check the path; `coupler schema pull` writes a catalog from a live endpoint",
                ),
            );
            None
        }
        Err(message) => {
            cx.report(
                Diagnostic::new(
                    codes::SCHEMA_INVALID,
                    s.schema.span,
                    format!("schema catalog `{shown}` is invalid: {message}"),
                )
                .label("in this catalog")
                .help("see docs/schema-catalog.md for the format"),
            );
            None
        }
    }
}

fn read_catalog(path: &Path) -> CachedSchema {
    let text = std::fs::read_to_string(path).map_err(|e| format!("read:{e}"))?;
    Catalog::parse(&text)
        .map(Arc::new)
        .map_err(|e| match e.location() {
            Some(loc) => format!(
                "line {}, column {}: {}",
                loc.line(),
                loc.column(),
                strip_location(&e.to_string())
            ),
            None => e.to_string(),
        })
}

/// serde_norway appends " at line X column Y"; the caller already says where.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Resolved sides of a mapping, once its header was checked.
pub(crate) fn set_sides(cx: &mut Cx<'_>, name: &str, left: Option<Side>, right: Option<Side>) {
    if let Some(m) = cx.model.mappings.get_mut(name) {
        m.left = left;
        m.right = right;
    }
}

/// Resolves every mapping's sides before any is checked, so a `via` can name a mapping
/// declared later. Problems are reported when each mapping is checked.
pub(crate) fn presolve_sides(cx: &mut Cx<'_>) {
    let side = |cx: &Cx<'_>, system: &ast::Ident, table: &ast::Ident| -> Option<Side> {
        let sys = cx.model.systems.get(&system.name)?;
        sys.table(&table.name)?;
        Some(Side {
            system: system.name.clone(),
            table: table.name.clone(),
        })
    };
    let names: Vec<String> = cx.model.mappings.keys().cloned().collect();
    for name in names {
        let m = &cx.model.mappings[&name];
        let (left, right, option_fields) = match &m.kind {
            MappingKind::Table(d) => (
                side(cx, &d.left.system, &d.left.table),
                side(cx, &d.right.system, &d.right.table),
                None,
            ),
            MappingKind::Options(o) => (
                side(cx, &o.left.system, &o.left.table),
                side(cx, &o.right.system, &o.right.table),
                Some((o.left.field.name.clone(), o.right.field.name.clone())),
            ),
        };
        if let Some(m) = cx.model.mappings.get_mut(&name) {
            m.left = left;
            m.right = right;
            m.option_fields = option_fields;
        }
    }
}
