//! Imports go down the pipeline. Reads every `src/**/*.rs`, resolves each `crate::…` and
//! `super::…` path to the module it names, and fails with `file:line` when a module imports one
//! of its own layer or a higher one, or when sibling files import each other in a circle.
//!
//! Unit-test modules (`#[cfg(test)] mod tests`, at the end of a file) are not read: they are not
//! part of the pipeline and may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules, low to high; a module imports only modules of a lower rank. Modules of one
/// rank are independent of each other.
const LAYERS: &[(&str, u8)] = &[
    ("source", 0),
    ("diagnostic", 1),
    // Shared pieces: transforms (used by schema, analysis, plan and the engine), endpoint
    // settings (used by the connectors and the command line), and the parser.
    ("transform", 2),
    ("config", 2),
    ("syntax", 2),
    ("schema", 3),
    ("analysis", 4),
    ("plan", 5),
    ("runtime", 6),
    ("cli", 7),
];

/// Inside `runtime`, low to high: the connector trait, canonical values and SQL helpers; the
/// in-memory filter (on the connector's records); then the state store and the connectors
/// (embedded and HTTP); the engine on top.
const RUNTIME_LAYERS: &[(&str, u8)] = &[
    ("connector", 0),
    ("values", 0),
    ("sql", 0),
    ("filter_eval", 1),
    ("state", 2),
    ("embedded", 2),
    ("connectors", 2),
    ("engine", 3),
];

/// Imports that no rank allows: the runtime executes the plan and never reads the syntax tree.
const FORBIDDEN: &[(&str, &str, &str)] = &[(
    "runtime",
    "syntax",
    "the runtime executes the plan; it never reads the syntax tree",
)];

/// PENDING: known violations that other branches of issue 10 are removing, as (importing
/// module, imported module). A module is an area (`runtime/engine`, `schema`) for the layer
/// rules and a file module (`runtime/engine/pass`) for the circles. An entry that no longer
/// matches anything fails the test too: delete it when its branch is merged.
const PENDING: &[(&str, &str)] = &[];

/// One import: the file and line it is on, the module of that file, and the module it names.
struct Import {
    file: PathBuf,
    line: usize,
    from: Vec<String>,
    to: Vec<String>,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `runtime/engine/pass.rs` -> `[runtime, engine, pass]`; a `mod.rs` is its folder's module.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("a file under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    match last.as_str() {
        "mod.rs" | "lib.rs" | "main.rs" => {}
        name => parts.push(name.trim_end_matches(".rs").to_string()),
    }
    parts
}

/// Expands a use tree (`a::{b, c::{d, e}}`) into its paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').expect("a closing brace")];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(expand)
        .map(|p| format!("{prefix}{p}"))
        .collect()
}

/// The paths starting with `crate::` or `super::` in a line of code (outside `use` trees).
fn inline_paths(code: &str) -> Vec<String> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start).map(|i| i + from) {
            from = i + start.len();
            let before = i.checked_sub(1).map(|j| bytes[j] as char);
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':' || c == '$') {
                continue; // `$crate::`, `a::super::` (the latter handled from its start)
            }
            let end = code[i..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| i + e);
            out.push(code[i..end].trim_end_matches(':').to_string());
        }
    }
    out
}

/// Resolves `crate::a::b` / `super::super::c` against the module `at` (of a file).
fn resolve(at: &[String], path: &str) -> Option<Vec<String>> {
    let mut segs = path.split("::").map(str::trim).peekable();
    let mut base: Vec<String> = match segs.peek() {
        Some(&"crate") => {
            segs.next();
            Vec::new()
        }
        Some(&"super") => at.to_vec(),
        _ => return None,
    };
    while segs.peek() == Some(&"super") {
        segs.next();
        base.pop()?;
    }
    base.extend(
        segs.take_while(|s| !s.is_empty() && *s != "*" && *s != "self")
            .map(|s| s.split_whitespace().next().unwrap_or(s).to_string()),
    );
    Some(base)
}

/// The tree of a `use` item (`use a::b;`, `pub(crate) use a::{b, c};`), without the `;`.
fn use_tree(code: &str) -> Option<&str> {
    let mut t = code.trim_start();
    if let Some(rest) = t.strip_prefix("pub") {
        t = rest.trim_start();
        if t.starts_with('(') {
            t = t[t.find(')')? + 1..].trim_start();
        }
    }
    let tree = t.strip_prefix("use ")?;
    Some(tree.trim_end().trim_end_matches(';'))
}

/// Code lines of a file: comments cut, unit-test modules left out, `use` items joined onto their
/// first line.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut pending_use: Option<(usize, String)> = None;
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, raw)) = lines.next() {
        let code = raw.split("//").next().unwrap_or_default();
        if code.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|(_, next)| next.trim_start().starts_with("mod tests"))
        {
            break;
        }
        if let Some((line, mut acc)) = pending_use.take() {
            acc.push_str(code);
            if code.contains(';') {
                out.push((line, acc));
            } else {
                pending_use = Some((line, acc));
            }
            continue;
        }
        if use_tree(code).is_some() && !code.contains(';') {
            pending_use = Some((i + 1, code.to_string()));
        } else {
            out.push((i + 1, code.to_string()));
        }
    }
    out
}

fn imports() -> Vec<Import> {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut out = Vec::new();
    for file in files {
        let from = module_of(&src, &file);
        let text = std::fs::read_to_string(&file).expect("a source file");
        for (line, code) in code_lines(&text) {
            let paths = match use_tree(&code) {
                Some(tree) => expand(tree),
                None => inline_paths(&code),
            };
            for path in paths {
                if let Some(to) = resolve(&from, &path) {
                    out.push(Import {
                        file: file.clone(),
                        line,
                        from: from.clone(),
                        to,
                    });
                }
            }
        }
    }
    out
}

fn rank(table: &[(&str, u8)], name: &str) -> Option<u8> {
    table.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

/// The area a module belongs to for the layer rules: `schema`, or `runtime/engine` inside the
/// runtime; `None` for the crate root and `runtime` itself.
fn area(module: &[String]) -> Option<String> {
    let top = module.first()?;
    rank(LAYERS, top)?;
    if top == "runtime" {
        let sub = module.get(1)?;
        rank(RUNTIME_LAYERS, sub)?;
        return Some(format!("runtime/{sub}"));
    }
    Some(top.clone())
}

fn top(area: &str) -> &str {
    area.split('/').next().unwrap_or(area)
}

/// Why `from` may not import `to`, if it may not.
fn layer_violation(from: &str, to: &str) -> Option<String> {
    if from == to {
        return None;
    }
    for (low, high, why) in FORBIDDEN {
        if top(from) == *low && top(to) == *high {
            return Some((*why).to_string());
        }
    }
    let (rf, rt) = if top(from) == top(to) {
        let sub = |a: &str| rank(RUNTIME_LAYERS, a.split('/').nth(1).unwrap_or_default());
        (sub(from)?, sub(to)?)
    } else {
        (rank(LAYERS, top(from))?, rank(LAYERS, top(to))?)
    };
    (rt >= rf).then(|| {
        if rt == rf {
            format!("`{from}` and `{to}` are of one layer and must not depend on each other")
        } else {
            format!("`{to}` is above `{from}`")
        }
    })
}

fn rel(file: &Path) -> String {
    file.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(file)
        .display()
        .to_string()
}

/// The edges between sibling files (same folder, neither the folder's own `mod.rs`), by their
/// module names, with the first place each edge is made.
fn sibling_edges(imports: &[Import]) -> BTreeMap<(String, String), String> {
    let modules: BTreeSet<&[String]> = imports.iter().map(|i| i.from.as_slice()).collect();
    let mut edges = BTreeMap::new();
    for i in imports {
        if i.from.is_empty() {
            continue;
        }
        let parent = &i.from[..i.from.len() - 1];
        let is_sibling = i.to.len() > parent.len()
            && i.to.starts_with(parent)
            && i.to[parent.len()] != i.from[parent.len()];
        // Only file modules count: `from` must be a leaf file, not the folder's mod.rs.
        let from_file = i.file.file_name().is_some_and(|n| n != "mod.rs");
        if is_sibling && from_file && modules.contains(&i.to[..=parent.len()]) {
            let from = i.from.join("/");
            let to = i.to[..=parent.len()].join("/");
            edges
                .entry((from, to))
                .or_insert_with(|| format!("{}:{}", rel(&i.file), i.line));
        }
    }
    edges
}

/// Whether `to` reaches `from` through the edges.
fn reaches(edges: &BTreeMap<(String, String), String>, start: &str, goal: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![start.to_string()];
    while let Some(n) = stack.pop() {
        if n == goal {
            return true;
        }
        if seen.insert(n.clone()) {
            stack.extend(
                edges
                    .keys()
                    .filter(|(a, _)| *a == n)
                    .map(|(_, b)| b.clone()),
            );
        }
    }
    false
}

fn pending(from: &str, to: &str) -> bool {
    PENDING.iter().any(|(a, b)| *a == from && *b == to)
}

#[test]
fn imports_go_down_the_pipeline() {
    let imports = imports();
    assert!(
        imports.len() > 100,
        "the scan found only {} imports: is it reading src/?",
        imports.len()
    );
    let mut failures = Vec::new();
    let mut used = BTreeSet::new();
    for i in &imports {
        let (Some(from), Some(to)) = (area(&i.from), area(&i.to)) else {
            continue;
        };
        let Some(why) = layer_violation(&from, &to) else {
            continue;
        };
        if pending(&from, &to) {
            used.insert((from, to));
            continue;
        }
        failures.push(format!(
            "{}:{}: `{}` imports `{}`: {why}",
            rel(&i.file),
            i.line,
            i.from.join("::"),
            i.to.join("::")
        ));
    }
    let edges = sibling_edges(&imports);
    for ((from, to), at) in &edges {
        if !reaches(&edges, to, from) {
            continue;
        }
        if pending(from, to) {
            used.insert((from.clone(), to.clone()));
            continue;
        }
        failures.push(format!(
            "{at}: `{from}` imports `{to}`, which imports it back (through sibling files)"
        ));
    }
    for (a, b) in PENDING {
        if !used.contains(&(a.to_string(), b.to_string())) {
            failures.push(format!(
                "PENDING ({a:?}, {b:?}) no longer happens: remove it from tests/it/layering.rs"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

#[test]
fn the_rules_catch_an_upward_import() {
    assert!(layer_violation("schema", "analysis").is_some());
    assert!(layer_violation("syntax", "config").is_some());
    assert!(layer_violation("runtime/embedded", "runtime/engine").is_some());
    assert!(layer_violation("runtime/state", "runtime/engine").is_some());
    assert!(layer_violation("runtime/values", "runtime/state").is_some());
    assert!(layer_violation("runtime/engine", "syntax").is_some());
    assert!(layer_violation("analysis", "schema").is_none());
    assert!(layer_violation("runtime/engine", "runtime/state").is_none());
    assert!(layer_violation("cli", "runtime/engine").is_none());
}

#[test]
fn use_trees_and_paths_resolve() {
    let at: Vec<String> = ["runtime", "engine", "pass"].map(String::from).to_vec();
    let paths = expand("super::{evaluate::{a, b}, split::c, self}");
    assert_eq!(
        paths,
        [
            "super::evaluate::a",
            "super::evaluate::b",
            "super::split::c",
            "super::self"
        ]
    );
    assert_eq!(
        resolve(&at, "super::evaluate::a").unwrap(),
        ["runtime", "engine", "evaluate", "a"]
    );
    assert_eq!(
        resolve(&at, "crate::syntax::ast::Direction").unwrap(),
        ["syntax", "ast", "Direction"]
    );
    assert_eq!(
        inline_paths("let x = crate::config::check_url(u)?; $crate::out!()"),
        ["crate::config::check_url"]
    );
}
