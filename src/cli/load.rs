//! Finding and reading mapping files, parsing them, and running the checker over the set.

use crate::analysis::{self, Model, ParsedFile};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::source::{SourceMap, Span};
use crate::syntax::{self, ast, guard};
use std::path::{Path, PathBuf};

/// An I/O or usage problem: exit code 2.
#[derive(Debug)]
pub struct LoadError(pub String);

/// Every `*.map` file named, or below a folder named, in a stable order.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let defaults = [PathBuf::from("mappings")];
    let paths = if paths.is_empty() {
        &defaults[..]
    } else {
        paths
    };
    let mut files = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p)
            .map_err(|e| LoadError(format!("cannot read `{}`: {e}", p.display())))?;
        if meta.is_dir() {
            walk(p, &mut files)?;
        } else {
            files.push(p.clone());
        }
    }
    files.dedup();
    if files.is_empty() {
        return Err(LoadError(format!(
            "no mapping files (*.map) found in {}",
            paths
                .iter()
                .map(|p| format!("`{}`", p.display()))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| LoadError(format!("cannot read folder `{}`: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "map") {
            out.push(path);
        }
    }
    Ok(())
}

/// Parsed files of a run, with their diagnostics.
pub struct Loaded {
    pub sources: SourceMap,
    pub asts: Vec<(crate::source::FileId, ast::File)>,
    pub diagnostics: Diagnostics,
    pub file_count: usize,
}

/// Reads and parses files. Unreadable files are I/O errors; undecodable ones are diagnostics.
pub fn load(paths: &[PathBuf]) -> Result<Loaded, LoadError> {
    let files = collect(paths)?;
    let mut sources = SourceMap::new();
    let mut asts = Vec::new();
    let mut diagnostics = Diagnostics::default();
    for path in &files {
        let bytes = std::fs::read(path)
            .map_err(|e| LoadError(format!("cannot read `{}`: {e}", path.display())))?;
        let id = crate::source::FileId(sources.files().count() as u32);
        match guard::decode(id, bytes.clone()) {
            Ok(text) => {
                let id = sources.add(path, text);
                let text = sources.file(id).text.clone();
                let (ast, diags) = syntax::parse_file(id, &text);
                diagnostics.extend(diags);
                if let Some(ast) = ast {
                    asts.push((id, ast));
                }
            }
            Err(d) => {
                // Keep the readable prefix so the diagnostic can show where decoding stopped.
                let prefix =
                    String::from_utf8_lossy(&bytes[..(d.span.start as usize).min(bytes.len())])
                        .into_owned();
                let id = sources.add(path, prefix);
                diagnostics.push(Diagnostic {
                    span: Span { file: id, ..d.span },
                    ..*d
                });
            }
        }
    }
    Ok(Loaded {
        sources,
        asts,
        diagnostics,
        file_count: files.len(),
    })
}

/// Loads and checks a mapping set.
pub fn check(paths: &[PathBuf]) -> Result<(Loaded, Model), LoadError> {
    Ok(analyze(load(paths)?))
}

/// Checks one mapping file given as text; `path` places it (schema paths are relative to it).
pub fn check_text(path: &Path, text: &str) -> (Loaded, Model) {
    let mut sources = SourceMap::new();
    let id = sources.add(path, text);
    let (ast, diags) = syntax::parse_file(id, text);
    let mut diagnostics = Diagnostics::default();
    diagnostics.extend(diags);
    let loaded = Loaded {
        sources,
        asts: ast.map(|a| vec![(id, a)]).unwrap_or_default(),
        diagnostics,
        file_count: 1,
    };
    analyze(loaded)
}

fn analyze(mut loaded: Loaded) -> (Loaded, Model) {
    let parsed: Vec<ParsedFile<'_>> = loaded
        .asts
        .iter()
        .map(|(file, ast)| ParsedFile { file: *file, ast })
        .collect();
    let (model, diags) = analysis::analyze(&parsed, &loaded.sources);
    let broken = loaded.asts.len() < loaded.file_count;
    let mut diags = diags.into_sorted();
    if broken {
        // A name declared in a file that did not parse is not unknown: do not cascade.
        use crate::diagnostic::codes;
        diags.retain(|d| {
            !matches!(
                d.code,
                codes::UNKNOWN_SYSTEM | codes::UNKNOWN_MAPPING | codes::UNKNOWN_SETTING
            )
        });
    }
    loaded.diagnostics.extend(diags);
    (loaded, model)
}
