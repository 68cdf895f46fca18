//! Helpers shared by the end-to-end, robustness and round-trip tests.

use super::coupler::coupler;
use coupler::analysis::{self, ParsedFile};
use coupler::diagnostic::{Diagnostic, Severity};
use coupler::source::{FileId, SourceMap, Span};
use coupler::syntax::{self, ast, guard};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Once;

/// The crate root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The standard mapping set, the real input every test should run on.
pub const STANDARD: &str = "mappings/business-central-sales.map";
/// A committed stand-in, used (with a note on stderr) while the standard set does not exist.
pub const SAMPLE: &str = "tests/data/standard-sample.map";

/// The standard mapping file, or the committed sample when it is missing (said once on stderr).
pub fn standard_path() -> PathBuf {
    let standard = repo().join(STANDARD);
    if standard.is_file() {
        return standard;
    }
    static NOTE: Once = Once::new();
    NOTE.call_once(|| {
        eprintln!("note: `{STANDARD}` does not exist; falling back to `{SAMPLE}`");
    });
    repo().join(SAMPLE)
}

pub fn standard_text() -> String {
    std::fs::read_to_string(standard_path()).expect("standard mapping file is readable")
}

/// Resolves `.` and `..` lexically.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `text` (a mapping file that lived at `original`) with every schema path made absolute, so the
/// file can be copied anywhere and still find its catalogs.
pub fn with_absolute_schemas(original: &Path, text: &str) -> String {
    let dir = original.parent().expect("file has a folder");
    let (ast, diags) = syntax::parse_file(FileId(0), text);
    let ast = ast.unwrap_or_else(|| panic!("{} does not parse: {diags:?}", original.display()));
    let mut spans: Vec<(Span, String)> = ast
        .items
        .iter()
        .filter_map(|i| match i {
            ast::Item::System(s) => Some((s.schema.span, s.schema.value.clone())),
            _ => None,
        })
        .collect();
    spans.sort_by_key(|(s, _)| std::cmp::Reverse(s.start));
    let mut out = text.to_string();
    for (span, value) in spans {
        let abs = normalize(&dir.join(value));
        out.replace_range(span.range(), &format!("\"{}\"", abs.display()));
    }
    out
}

/// The standard file's text with absolute schema paths.
pub fn standard_text_absolute() -> String {
    with_absolute_schemas(&standard_path(), &standard_text())
}

/// What checking one file in-process found: mirrors `coupler check` on a single file.
pub struct Checked {
    pub sources: SourceMap,
    pub ast: Option<ast::File>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity() == Severity::Error)
            .count()
    }

    pub fn codes(&self) -> Vec<&'static str> {
        self.diagnostics.iter().map(|d| d.code.id).collect()
    }

    pub fn text(&self) -> &str {
        &self.sources.file(FileId(0)).text
    }
}

/// Decodes, parses and (when it parsed) analyzes `bytes` as if read from `path`, the way
/// `cli::load::check` does for one file, without printing anything.
pub fn check_bytes(path: &Path, bytes: Vec<u8>) -> Checked {
    load_bytes(path, bytes, true)
}

/// [`check_bytes`], with the analysis only when `analyze` is set.
pub fn load_bytes(path: &Path, bytes: Vec<u8>, analyze: bool) -> Checked {
    let mut sources = SourceMap::new();
    let mut diagnostics = Vec::new();
    match guard::decode(FileId(0), bytes.clone()) {
        Ok(text) => {
            let id = sources.add(path, text);
            let text = sources.file(id).text.clone();
            let (ast, diags) = syntax::parse_file(id, &text);
            diagnostics.extend(diags);
            if let Some(ast) = ast.as_ref().filter(|_| analyze) {
                let files = [ParsedFile { file: id, ast }];
                let (_model, diags) = analysis::analyze(&files, &sources);
                diagnostics.extend(diags.into_sorted());
            }
            Checked {
                sources,
                ast,
                diagnostics,
            }
        }
        Err(d) => {
            let prefix =
                String::from_utf8_lossy(&bytes[..(d.span.start as usize).min(bytes.len())])
                    .into_owned();
            sources.add(path, prefix);
            diagnostics.push(*d);
            Checked {
                sources,
                ast: None,
                diagnostics,
            }
        }
    }
}

pub fn check_text(path: &Path, text: &str) -> Checked {
    check_bytes(path, text.as_bytes().to_vec())
}

/// Runs the binary with `args` in `cwd`, without colour.
pub fn run_in(cwd: &Path, args: &[&str]) -> Output {
    coupler(args).current_dir(cwd).output()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The exit code; a process killed by a signal (a crash) fails the test with its output.
pub fn exit_code(o: &Output) -> i32 {
    match o.status.code() {
        Some(c) => c,
        None => panic!(
            "coupler was killed by a signal ({:?})\nstdout:\n{}\nstderr:\n{}",
            o.status,
            stdout(o),
            stderr(o)
        ),
    }
}

/// One JSON object per non-empty stdout line.
pub fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

/// Copies the schema catalogs into `dir/schemas/`, so `../schemas/...` works from `dir/mappings/`.
pub fn copy_schemas(dir: &Path) {
    let to = dir.join("schemas");
    std::fs::create_dir_all(&to).expect("create schemas folder");
    for entry in std::fs::read_dir(repo().join("schemas")).expect("schemas folder") {
        let entry = entry.expect("schema entry");
        if entry.path().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy schema");
        }
    }
}

/// Every `*.map` file below `dir`, sorted.
pub fn map_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            out.extend(map_files(&p));
        } else if p.extension().is_some_and(|e| e == "map") {
            out.push(p);
        }
    }
    out
}

/// Copies a folder and everything below it.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("folder");
    for entry in std::fs::read_dir(from).expect("readable folder") {
        let entry = entry.expect("entry");
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy");
        }
    }
}
