//! The mapping-language examples of the documentation parse: every ```coupler block of
//! docs/*.md and README.md is a file the grammar accepts (the checker may still report, on
//! purpose, what the example is about), and every ```coupler-fragment block parses once put in
//! a mapping or its fields block when it is not items already (fragments are items, clauses or
//! field lines). In docs/errors.md, a block under a syntax code's heading
//! (`## E01..`) may fail with that code, and only with it: it shows the mistake.
use crate::support::common;

use common::repo;
use coupler::diagnostic::Severity;
use coupler::source::FileId;
use coupler::syntax;
use std::path::PathBuf;

/// One fenced block: file, line, language, the `## CODE` heading above it, text.
type Block = (String, usize, String, String, String);

/// Every fenced block of the documentation.
fn blocks() -> Vec<Block> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.push(repo().join("README.md"));
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let mut current: Option<(usize, String, String)> = None;
        let mut heading = String::new();
        for (i, line) in text.lines().enumerate() {
            if let Some(h) = line.strip_prefix("## ") {
                heading = h.split(':').next().unwrap_or("").to_string();
            }
            match &mut current {
                None => {
                    if let Some(lang) = line.strip_prefix("```") {
                        if lang.starts_with("coupler") {
                            current = Some((i + 1, lang.to_string(), String::new()));
                        }
                    }
                }
                Some((start, lang, body)) => {
                    if line.starts_with("```") {
                        let body = std::mem::take(body);
                        out.push((name.clone(), *start, lang.clone(), heading.clone(), body));
                        current = None;
                    } else {
                        body.push_str(line);
                        body.push('\n');
                    }
                }
            }
        }
    }
    out
}

/// The codes of the errors parsing reports (syntax and input, E01..).
fn syntax_errors(text: &str) -> Vec<String> {
    let (_, diags) = syntax::parse_file(FileId(0), text);
    diags
        .iter()
        .filter(|d| d.severity() == Severity::Error)
        .map(|d| d.code.id.to_string())
        .collect()
}

#[test]
fn every_documented_example_parses() {
    let blocks = blocks();
    assert!(blocks.len() > 90, "found only {} blocks", blocks.len());
    let mut problems = Vec::new();
    for (file, line, lang, heading, body) in &blocks {
        let mut errors = match lang.as_str() {
            "coupler" => syntax_errors(body),
            // A fragment is items, the clauses of a mapping, or field lines.
            "coupler-fragment" => [
                body.clone(),
                format!("mapping M: a.T -> b.U {{\n{body}\n}}\n"),
                format!("mapping M: a.T -> b.U {{\n fields {{\n{body}\n}}\n}}\n"),
            ]
            .iter()
            .map(|t| syntax_errors(t))
            .min_by_key(Vec::len)
            .unwrap_or_default(),
            _ => continue,
        };
        // The mistake a syntax code's section shows.
        if file == "errors.md" && heading.starts_with("E01") {
            errors.retain(|c| c != heading);
        }
        if !errors.is_empty() {
            problems.push(format!("{file}:{line} ({lang}):\n{body}{errors:#?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
