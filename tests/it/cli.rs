//! End-to-end tests of the `coupler` binary on real files: exit codes (0 ok or warnings, 1 input
//! errors, 2 usage or I/O), the summary line, human and JSON diagnostics, `explain` and `fmt`.

use crate::support::common;
use crate::support::coupler::coupler;

use common::{
    copy_schemas, exit_code, json_lines, repo, run_in, standard_path, standard_text,
    standard_text_absolute, stderr, stdout,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// The two system lines, with absolute schema paths.
fn systems() -> String {
    let schemas = repo().join("schemas");
    format!(
        "system bc    = business_central \"{}\"\nsystem sales = dataverse        \"{}\"\n",
        schemas.join("business-central.yaml").display(),
        schemas.join("dynamics-365-sales.yaml").display()
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// 1-based line and column (in characters) of the first occurrence of `needle`.
fn position(text: &str, needle: &str) -> (u64, u64) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in the input"));
    let line = text[..at].matches('\n').count() + 1;
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..at].chars().count() + 1;
    (line as u64, column as u64)
}

/// The last non-empty line of stderr: the summary of `coupler check`.
fn summary(err: &str) -> &str {
    err.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
}

/// A file with two errors at known places: an unknown field and an unknown function.
fn file_with_errors() -> String {
    format!(
        "{}
mapping CURRENCY: bc.Currency -> sales.transactioncurrency {{
    where bc: \"ISO Code\" != ''
    fields {{
        Code        -> isocurrencycode | trunc(5)
        Symbl       -> currencysymbol
        Description -> currencyname
    }}
}}
",
        systems()
    )
}

/// A file whose only diagnostic is a warning (W0604: 200 characters into 50).
fn file_with_a_warning() -> String {
    format!(
        "{}
mapping SALESPEOPLE: bc.\"Salesperson/Purchaser\" <- sales.systemuser {{
    fields {{
        Name <- fullname
    }}
}}
",
        systems()
    )
}

#[test]
fn standard_set_checks_clean() {
    let out = run_in(&repo(), &["check", standard_path().to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(exit_code(&out), 0, "{err}");
    assert!(stdout(&out).is_empty());
    let json = run_in(
        &repo(),
        &[
            "check",
            "--format",
            "json",
            standard_path().to_str().unwrap(),
        ],
    );
    assert_eq!(exit_code(&json), 0);
    let diags = json_lines(&json);
    assert!(
        diags.iter().all(|d| d["severity"] == "warning"),
        "{diags:?}"
    );
    let n = diags.len();
    let expected = format!(
        "0 errors, {n} warning{} in 1 file",
        if n == 1 { "" } else { "s" }
    );
    assert_eq!(summary(&err), expected, "{err}");
    // JSON goes to stdout only, without a summary.
    assert!(stderr(&json).is_empty(), "{}", stderr(&json));
}

#[test]
fn errors_are_rendered_for_people() {
    let dir = TempDir::new().unwrap();
    let text = file_with_errors();
    write(dir.path(), "bad.map", &text);
    let out = run_in(dir.path(), &["check", "bad.map"]);
    assert_eq!(exit_code(&out), 1);
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    let (line, col) = position(&text, "trunc(");
    assert!(
        err.contains("error[E0306]: unknown function `trunc`"),
        "{err}"
    );
    assert!(err.contains(&format!("bad.map:{line}:{col}")), "{err}");
    let (line, col) = position(&text, "Symbl");
    assert_eq!((line, col), (8, 9));
    assert!(
        err.contains("error[E0301]: unknown field `Symbl` on table `bc.Currency`"),
        "{err}"
    );
    assert!(err.contains("bad.map:8:9"), "{err}");
    assert!(err.contains("help: did you mean `Symbol`?"), "{err}");
    // Diagnostics come in source order, then the summary.
    assert!(err.find("E0306").unwrap() < err.find("E0301").unwrap());
    assert_eq!(summary(&err), "2 errors, 0 warnings in 1 file");
    // NO_COLOR: no escape sequences.
    assert!(!err.contains('\u{1b}'), "{err}");
}

/// The fields of a diagnostic in `check --format json` (docs/errors.md and the design of the
/// command line list them).
const JSON_FIELDS: [&str; 10] = [
    "severity",
    "code",
    "message",
    "file",
    "line",
    "column",
    "end_line",
    "end_column",
    "labels",
    "help",
];

#[test]
fn errors_as_json_lines() {
    let dir = TempDir::new().unwrap();
    let text = file_with_errors();
    write(dir.path(), "bad.map", &text);
    let out = run_in(dir.path(), &["check", "--format", "json", "bad.map"]);
    assert_eq!(exit_code(&out), 1);
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let raw = stdout(&out);
    assert_eq!(raw.lines().count(), 2, "one object per line:\n{raw}");
    let diags = json_lines(&out);
    for d in &diags {
        let obj = d.as_object().expect("an object");
        for key in JSON_FIELDS {
            assert!(obj.contains_key(key), "`{key}` missing in {d}");
        }
        // The documentation lists exactly the fields above; `notes` is the one addition the renderer makes.
        let extra: Vec<&String> = obj
            .keys()
            .filter(|k| !JSON_FIELDS.contains(&k.as_str()) && k.as_str() != "notes")
            .collect();
        assert!(extra.is_empty(), "undocumented fields {extra:?} in {d}");
        assert_eq!(d["severity"], "error");
        assert_eq!(d["file"], "bad.map");
        assert!(d["message"].is_string() && d["labels"].is_array());
        assert!(d["help"].is_string() || d["help"].is_null());
    }
    let check = |d: &Value, code: &str, needle: &str, message: &str| {
        let (line, col) = position(&text, needle);
        let width = needle.chars().count() as u64;
        assert_eq!(d["code"], code, "{d}");
        assert_eq!(d["message"], message, "{d}");
        assert_eq!(
            (&d["line"], &d["column"], &d["end_line"], &d["end_column"]),
            (
                &Value::from(line),
                &Value::from(col),
                &Value::from(line),
                &Value::from(col + width)
            ),
            "{d}"
        );
        // The first label is the primary span.
        let label = &d["labels"][0];
        assert_eq!(label["file"], "bad.map");
        assert_eq!(
            (&label["line"], &label["column"]),
            (&d["line"], &d["column"])
        );
        assert!(label["message"].is_string());
    };
    check(&diags[0], "E0306", "trunc", "unknown function `trunc`");
    check(
        &diags[1],
        "E0301",
        "Symbl",
        "unknown field `Symbl` on table `bc.Currency`",
    );
    assert_eq!(diags[1]["help"], "did you mean `Symbol`?");
    assert_eq!(
        (&diags[1]["line"], &diags[1]["column"]),
        (&8.into(), &9.into())
    );
}

#[test]
fn deny_warnings_fails_on_a_warning() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "warn.map", &file_with_a_warning());
    let out = run_in(dir.path(), &["check", "warn.map"]);
    let err = stderr(&out);
    assert_eq!(exit_code(&out), 0, "{err}");
    assert!(err.contains("warning[W0604]"), "{err}");
    assert_eq!(summary(&err), "0 errors, 1 warning in 1 file");
    let out = run_in(dir.path(), &["check", "--deny-warnings", "warn.map"]);
    assert_eq!(exit_code(&out), 1);
    assert_eq!(summary(&stderr(&out)), "0 errors, 1 warning in 1 file");
    let out = run_in(
        dir.path(),
        &["check", "--deny-warnings", "--format", "json", "warn.map"],
    );
    assert_eq!(exit_code(&out), 1);
    let diags = json_lines(&out);
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0]["severity"], "warning");
    assert_eq!(diags[0]["code"], "W0604");
    // A clean file stays 0 with the flag.
    let out = run_in(
        &repo(),
        &[
            "check",
            "--deny-warnings",
            standard_path().to_str().unwrap(),
        ],
    );
    let warnings = json_lines(&run_in(
        &repo(),
        &[
            "check",
            "--format",
            "json",
            standard_path().to_str().unwrap(),
        ],
    ))
    .len();
    assert_eq!(exit_code(&out), if warnings == 0 { 0 } else { 1 });
}

/// A folder laid out like a project: `mappings/` with the standard file, `schemas/` beside it.
fn project() -> TempDir {
    let dir = TempDir::new().unwrap();
    let standard = standard_path();
    let text = if standard.ends_with(common::STANDARD) {
        // The real file: keep its relative schema paths, they resolve the same way here.
        copy_schemas(dir.path());
        standard_text()
    } else {
        standard_text_absolute()
    };
    write(dir.path(), "mappings/business-central-sales.map", &text);
    dir
}

#[test]
fn default_path_is_mappings() {
    let dir = project();
    let out = run_in(dir.path(), &["check"]);
    let err = stderr(&out);
    assert_eq!(exit_code(&out), 0, "{err}");
    assert!(summary(&err).starts_with("0 errors, "), "{err}");
    assert!(summary(&err).ends_with(" in 1 file"), "{err}");
    // Every *.map below it, in sub-folders too; other files are ignored.
    // A second file of the set uses the systems the first one declares.
    let extra = "mapping EXTRA-SALESPEOPLE: bc.\"Salesperson/Purchaser\" <- sales.systemuser {\n    fields {\n        Name <- fullname\n    }\n}\n";
    write(dir.path(), "mappings/extra/warn.map", extra);
    write(dir.path(), "mappings/README.md", "# not a mapping");
    let out = run_in(dir.path(), &["check", "--format", "json"]);
    assert_eq!(exit_code(&out), 0);
    let files: Vec<Value> = json_lines(&out).iter().map(|d| d["file"].clone()).collect();
    assert!(
        files.contains(&"mappings/extra/warn.map".into()),
        "{files:?}"
    );
    let out = run_in(dir.path(), &["check"]);
    assert_eq!(exit_code(&out), 0);
    assert!(
        summary(&stderr(&out)).ends_with(" in 2 files"),
        "{}",
        stderr(&out)
    );
    // fmt uses the same default.
    let out = run_in(dir.path(), &["fmt", "--check"]);
    assert_ne!(exit_code(&out), 2, "{}", stderr(&out));
}

#[test]
fn explain_prints_the_long_explanation() {
    let out = run_in(&repo(), &["explain", "E0301"]);
    assert_eq!(exit_code(&out), 0);
    let text = stdout(&out);
    assert!(text.starts_with("## E0301"), "{text}");
    assert!(text.lines().count() > 2, "{text}");
    // The next section is not included.
    assert!(!text.contains("## E0302"), "{text}");
    // Codes are case-insensitive.
    let lower = run_in(&repo(), &["explain", "e0301"]);
    assert_eq!(exit_code(&lower), 0);
    assert_eq!(stdout(&lower), text);
}

#[test]
fn explain_unknown_code_is_a_usage_error() {
    let out = run_in(&repo(), &["explain", "E9999"]);
    assert_eq!(exit_code(&out), 2);
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    assert!(err.contains("unknown diagnostic code `E9999`"), "{err}");
    assert!(err.contains("coupler explain"), "{err}");
}

#[test]
fn explain_alone_lists_every_code() {
    let out = run_in(&repo(), &["explain"]);
    assert_eq!(exit_code(&out), 0);
    let text = stdout(&out);
    let listed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let all: Vec<&str> = coupler::diagnostic::codes::ALL
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, all);
    assert!(text.contains("E0301  unknown field"), "{text}");
    // Every listed code has a long explanation.
    for code in &all {
        let out = run_in(&repo(), &["explain", code]);
        assert_eq!(exit_code(&out), 0, "{code}");
        assert!(stdout(&out).starts_with(&format!("## {code}")), "{code}");
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["frobnicate"],
        &["check", "--format", "xml"],
        &["check", "--no-such-flag"],
        &["fmt", "--check=maybe"],
        &["explain", "E0301", "E0302"],
    ] {
        let out = run_in(&repo(), args);
        assert_eq!(exit_code(&out), 2, "coupler {args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("Usage:") || err.contains("--help"),
            "coupler {args:?}: {err}"
        );
    }
    // Help and version are not errors.
    for args in [&["--help"][..], &["check", "--help"], &["--version"]] {
        let out = run_in(&repo(), args);
        assert_eq!(exit_code(&out), 0, "coupler {args:?}");
        assert!(!stdout(&out).is_empty());
    }
}

/// The standard file with its layout spoiled: no indentation, extra blank lines, spaces around
/// punctuation removed. Nothing in a string or comment changes.
fn badly_formatted(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.starts_with('#') || line.contains('\'') || line.contains('"') {
            out.push_str(line);
        } else {
            out.push_str(&line.split_whitespace().collect::<Vec<_>>().join("  "));
        }
        out.push('\n');
        if line.is_empty() {
            out.push_str("\n\n");
        }
    }
    out.push_str("\n\n\n");
    out
}

#[test]
fn fmt_check_prints_a_diff_and_leaves_the_file() {
    let dir = project();
    let path = dir.path().join("mappings/business-central-sales.map");
    let original = std::fs::read_to_string(&path).unwrap();
    let ugly = badly_formatted(&original);
    assert_ne!(ugly, original);
    std::fs::write(&path, &ugly).unwrap();
    let name = "mappings/business-central-sales.map";

    let out = run_in(dir.path(), &["fmt", "--check", name]);
    assert_eq!(exit_code(&out), 1, "{}", stderr(&out));
    let diff = stdout(&out);
    assert!(
        diff.starts_with(&format!("--- a/{name}\n+++ b/{name}\n")),
        "{diff}"
    );
    assert!(diff.contains("\n@@ -"), "{diff}");
    assert!(diff
        .lines()
        .any(|l| l.starts_with('-') && !l.starts_with("---")));
    assert!(diff
        .lines()
        .any(|l| l.starts_with('+') && !l.starts_with("+++")));
    assert!(
        stderr(&out).contains("1 file is not formatted; run `coupler fmt`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        ugly,
        "--check wrote"
    );

    let out = run_in(dir.path(), &["fmt", name]);
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("formatted {name}")));
    let formatted = std::fs::read_to_string(&path).unwrap();
    assert_ne!(formatted, ugly);

    let out = run_in(dir.path(), &["fmt", "--check", name]);
    assert_eq!(exit_code(&out), 0, "{}", stdout(&out));
    assert!(stdout(&out).is_empty());
    // Formatting changed nothing that `check` sees.
    let out = run_in(dir.path(), &["check", name]);
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
}

/// The committed standard set is in canonical form.
#[test]
fn standard_set_is_formatted() {
    let dir = project();
    let out = run_in(dir.path(), &["fmt", "--check"]);
    assert_eq!(
        exit_code(&out),
        0,
        "`coupler fmt` would change it:\n{}",
        stdout(&out)
    );
    // And a spoiled copy formats back to exactly the committed text.
    let path = dir.path().join("mappings/business-central-sales.map");
    let original = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, badly_formatted(&original)).unwrap();
    let out = run_in(dir.path(), &["fmt"]);
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
}

#[test]
fn fmt_refuses_a_file_with_a_syntax_error() {
    let dir = TempDir::new().unwrap();
    let text = format!(
        "{}\nmapping   CURRENCY: bc.Currency -> sales.transactioncurrency {{\n  fields {{\n  Code = isocurrencycode\n  }}\n}}\n",
        systems()
    );
    let path = write(dir.path(), "broken.map", &text);
    for args in [
        &["fmt", "broken.map"][..],
        &["fmt", "--check", "broken.map"],
    ] {
        let out = run_in(dir.path(), args);
        assert_eq!(exit_code(&out), 1, "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("error[E0101]"), "{err}");
        let (line, col) = position(&text, "= isocurrencycode");
        assert!(err.contains(&format!("broken.map:{line}:{col}")), "{err}");
        assert!(err.contains("not formatting"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }
}

/// A closed stdout (`coupler explain | head -1`) is not a crash.
#[test]
fn closed_stdout_is_not_a_panic() {
    use std::process::Stdio;
    let dir = TempDir::new().unwrap();
    write(dir.path(), "bad.map", &file_with_errors());
    for args in [
        &["explain"][..],
        &["explain", "E0301"],
        &["check", "--format", "json", "bad.map"],
    ] {
        // The reading end is closed before the process starts, so every write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = coupler(args)
            .current_dir(dir.path())
            .stdout(Stdio::from(writer))
            .output();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "coupler {args:?}:\n{err}");
        assert_ne!(out.status.code(), Some(101), "coupler {args:?}:\n{err}");
    }
}
