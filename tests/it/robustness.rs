//! Bad input never crashes `coupler`: every case ends with a coded diagnostic that points into the
//! file (exit 1), a warning (exit 0) or an I/O message (exit 2) — never a panic (101) or a signal.
//!
//! Process-level cases run the real binary; the truncation and mutation loops run in-process
//! (parse + analyze + format, as `coupler check` and `coupler fmt` do) for speed.

use crate::support::common;

use common::{check_bytes, exit_code, json_lines, run_in, stderr, stdout, Checked};
use coupler::diagnostic::{render_human, render_json, RenderOptions};
use coupler::source::FileId;
use coupler::syntax::{self, ast};
use serde_json::Value;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The two system lines with absolute schema paths, so generated files can live anywhere.
fn systems() -> String {
    let schemas = common::repo().join("schemas");
    format!(
        "system bc    = business_central \"{}\"\nsystem sales = dataverse        \"{}\"\n",
        schemas.join("business-central.yaml").display(),
        schemas.join("dynamics-365-sales.yaml").display()
    )
}

fn write(dir: &TempDir, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write test input");
    path
}

/// Runs `coupler check --format json FILE` and returns (exit code, diagnostics).
fn check_json(dir: &TempDir, file: &Path) -> (i32, Vec<Value>) {
    let out = run_in(
        dir.path(),
        &["check", "--format", "json", file.to_str().unwrap()],
    );
    let code = exit_code(&out);
    assert!(
        code == 0 || code == 1,
        "exit code {code}\nstderr:\n{}",
        stderr(&out)
    );
    (code, json_lines(&out))
}

/// Asserts a JSON diagnostic has a code and a 1-based location in `file`.
fn assert_located(d: &Value, code: &str, file: &str) {
    assert_eq!(d["code"], code, "{d}");
    assert_eq!(d["file"], file, "{d}");
    for key in ["line", "column", "end_line", "end_column"] {
        assert!(d[key].as_u64().is_some_and(|n| n >= 1), "{key} in {d}");
    }
}

#[test]
fn empty_file_is_a_warning() {
    let dir = TempDir::new().unwrap();
    let file = write(&dir, "empty.map", "");
    let (code, diags) = check_json(&dir, &file);
    assert_eq!(code, 0);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_located(&diags[0], "W0109", "empty.map");
    assert_eq!(diags[0]["severity"], "warning");
}

#[test]
fn only_comments_is_a_warning() {
    let dir = TempDir::new().unwrap();
    let file = write(&dir, "comments.map", "# nothing\n\n   # but comments\n#\n");
    let (code, diags) = check_json(&dir, &file);
    assert_eq!(code, 0);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_located(&diags[0], "W0109", "comments.map");
}

#[test]
fn nul_byte_is_a_binary_file() {
    let dir = TempDir::new().unwrap();
    let mut bytes = systems().into_bytes();
    bytes.extend_from_slice(b"mapping A: bc.Currency -> sales.");
    bytes.extend_from_slice(&[0, 1, 2, 0xff, 0xfe, 0, 0x7f]);
    let file = write(&dir, "binary.map", &bytes);
    let (code, diags) = check_json(&dir, &file);
    assert_eq!(code, 1);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_located(&diags[0], "E0103", "binary.map");
    // The NUL byte is on line 3, after `mapping A: bc.Currency -> sales.` (32 characters).
    assert_eq!(
        (&diags[0]["line"], &diags[0]["column"]),
        (&3.into(), &33.into())
    );
}

#[test]
fn invalid_utf8_is_located() {
    let dir = TempDir::new().unwrap();
    let mut bytes = b"# caf\xc3\xa9\n# na".to_vec();
    bytes.extend_from_slice(&[0xc3, 0x28, b'\n']);
    let file = write(&dir, "latin1.map", &bytes);
    let (code, diags) = check_json(&dir, &file);
    assert_eq!(code, 1);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_located(&diags[0], "E0102", "latin1.map");
    assert_eq!(
        (&diags[0]["line"], &diags[0]["column"]),
        (&2.into(), &5.into())
    );
    // Also in the human rendering.
    let out = run_in(dir.path(), &["check", file.to_str().unwrap()]);
    assert_eq!(exit_code(&out), 1);
    let err = stderr(&out);
    assert!(err.contains("error[E0102]"), "{err}");
    assert!(err.contains("latin1.map:2:5"), "{err}");
}

#[test]
fn ten_thousand_parentheses_are_too_deep() {
    let dir = TempDir::new().unwrap();
    let text = format!(
        "{}mapping CURRENCY: bc.Currency -> sales.transactioncurrency {{\n    where bc: {}Code == 'EUR'{}\n    fields {{\n        Code -> isocurrencycode | truncate(5)\n    }}\n}}\n",
        systems(),
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    let file = write(&dir, "deep.map", text);
    let (code, diags) = check_json(&dir, &file);
    assert_eq!(code, 1);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_located(&diags[0], "E0104", "deep.map");
    assert_eq!(diags[0]["line"], 4);
}

/// `not` is a list in the grammar; nothing downstream may recurse once per `not` either.
/// Regression: lowering nested one `Expr::Not` per `not` (stack overflow from ~30,000); long
/// runs of `not` are now refused with E0104, like deep parentheses.
#[test]
fn hundred_thousand_nots_do_not_overflow_the_stack() {
    let dir = TempDir::new().unwrap();
    let text = format!(
        "{}mapping CURRENCY: bc.Currency -> sales.transactioncurrency {{\n    where bc: {}\"ISO Code\" != ''\n    fields {{\n        Code -> isocurrencycode | truncate(5)\n    }}\n}}\n",
        systems(),
        "not ".repeat(100_000)
    );
    let file = write(&dir, "nots.map", &text);
    let (code, diags) = check_json(&dir, &file);
    for d in &diags {
        assert!(d["code"].is_string() && d["line"].is_u64(), "{d}");
    }
    assert_eq!(code, 1);
    assert!(diags.iter().any(|d| d["code"] == "E0104"), "{diags:?}");
    let out = run_in(dir.path(), &["fmt", "--check", file.to_str().unwrap()]);
    let code = exit_code(&out);
    assert!(code == 0 || code == 1, "fmt: {code}\n{}", stderr(&out));
}

#[test]
fn two_hundred_thousand_lines_check() {
    let dir = TempDir::new().unwrap();
    let mut text = systems();
    // Eleven lines per mapping.
    for n in 0..18_200 {
        text.push_str(&format!(
            "\n# copy {n}\nmapping CURRENCY-{n}: bc.Currency -> sales.transactioncurrency {{\n    where bc: \"ISO Code\" != ''\n    couple by Code == isocurrencycode\n    fields {{\n        Code        -> isocurrencycode | truncate(5)\n        Symbol      -> currencysymbol\n        Description -> currencyname\n    }}\n}}\n"
        ));
    }
    assert!(text.lines().count() >= 200_000);
    let file = write(&dir, "big.map", &text);
    let out = run_in(dir.path(), &["check", file.to_str().unwrap()]);
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    let summary = err.lines().last().unwrap_or("");
    assert!(
        summary.starts_with("0 errors, ") && summary.ends_with(" in 1 file"),
        "{summary}"
    );
}

#[test]
fn five_megabyte_line() {
    let dir = TempDir::new().unwrap();
    let text = format!(
        "{} mapping CURRENCY: bc.Currency -> sales.transactioncurrency {{ where bc: Description == '{}' fields {{ Code -> isocurrencycode | truncate(5) }} }}",
        systems().replace('\n', " "),
        "x".repeat(5 * 1024 * 1024)
    );
    assert_eq!(text.lines().count(), 1);
    let file = write(&dir, "long.map", &text);
    let (code, diags) = check_json(&dir, &file);
    assert_eq!(code, 1);
    // The literal cannot fit the 30-character `Description`.
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_located(&diags[0], "E0605", "long.map");
    assert_eq!(diags[0]["line"], 1);
    assert_eq!(diags[0]["end_line"], 1);
    // The human rendering of such a line must not fail either.
    let out = run_in(dir.path(), &["check", file.to_str().unwrap()]);
    assert_eq!(exit_code(&out), 1);
    assert!(stderr(&out).contains("error[E0605]"));
}

#[test]
fn missing_path_is_an_io_error() {
    let dir = TempDir::new().unwrap();
    let out = run_in(dir.path(), &["check", "no-such-file.map"]);
    assert_eq!(exit_code(&out), 2);
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("no-such-file.map"), "{err}");
    // `fmt` says the same.
    let out = run_in(dir.path(), &["fmt", "no-such-file.map"]);
    assert_eq!(exit_code(&out), 2);
    assert!(stderr(&out).contains("no-such-file.map"));
}

#[test]
fn folder_without_map_files_is_an_io_error() {
    let dir = TempDir::new().unwrap();
    std::fs::create_dir_all(dir.path().join("empty/nested")).unwrap();
    write(&dir, "empty/nested/notes.txt", "not a mapping");
    let out = run_in(dir.path(), &["check", "empty"]);
    assert_eq!(exit_code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("no mapping files"), "{err}");
    assert!(err.contains("`empty`"), "{err}");
    // The default folder `mappings/` missing altogether is the same kind of error.
    let out = run_in(dir.path(), &["check"]);
    assert_eq!(exit_code(&out), 2);
    assert!(stderr(&out).contains("mappings"), "{}", stderr(&out));
}

// ---------------------------------------------------------------------------------------------
// In-process loops over the standard file.

/// What one in-process run over a variant found.
struct Outcome {
    parsed: bool,
    /// `format_checked` refused a file that parsed: fmt would lose meaning (a bug).
    fmt_error: Option<String>,
}

/// Checks, renders and formats `bytes` as `path`; panics propagate to the caller.
fn exercise(path: &Path, bytes: Vec<u8>) -> Outcome {
    let checked = check_bytes(path, bytes);
    assert_diagnostics_located(&checked);
    render_first(&checked);
    let Some(ast) = &checked.ast else {
        return Outcome {
            parsed: false,
            fmt_error: None,
        };
    };
    Outcome {
        parsed: true,
        fmt_error: syntax::format_checked(FileId(0), ast, checked.text()).err(),
    }
}

/// Renders the first diagnostic for people (miette), as `coupler check` would print it.
fn render_first(c: &Checked) {
    if let Some(d) = c.diagnostics.first() {
        let human = render_human(d, &c.sources, RenderOptions::default());
        assert!(human.starts_with(&format!("{}[{}]", severity(d), d.code.id)));
    }
}

fn severity(d: &coupler::diagnostic::Diagnostic) -> &'static str {
    match d.severity() {
        coupler::diagnostic::Severity::Error => "error",
        coupler::diagnostic::Severity::Warning => "warning",
    }
}

/// A file that did not parse says why with an E01 code; every diagnostic points into the file.
fn assert_diagnostics_located(c: &Checked) {
    if c.ast.is_none() {
        assert!(
            c.diagnostics.iter().any(|d| d.code.id.starts_with("E01")),
            "no syntax or input diagnostic for a file that did not parse: {:?}",
            c.codes()
        );
    }
    let len = c.text().len() as u32;
    for d in &c.diagnostics {
        let id = d.code.id;
        assert!(
            id.len() == 5
                && (id.starts_with('E') || id.starts_with('W'))
                && id[1..].bytes().all(|b| b.is_ascii_digit()),
            "bad code {id}"
        );
        assert!(
            d.span.start <= d.span.end && d.span.end <= len,
            "{id} span {:?} outside the {len}-byte file",
            d.span
        );
        let json: Value = serde_json::from_str(&render_json(d, &c.sources)).expect("json");
        assert!(json["line"].as_u64().is_some_and(|l| l >= 1), "{json}");
    }
}

/// Runs `f`, turning a panic into its message.
fn no_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "non-string panic".into())
    })
}

/// Where failing inputs are written so they can be replayed.
fn failure_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("robustness-failures");
    std::fs::create_dir_all(&dir).expect("create failure folder");
    dir
}

fn save_failure(name: &str, bytes: &[u8]) -> PathBuf {
    let path = failure_dir().join(name);
    std::fs::write(&path, bytes).expect("save failing input");
    path
}

/// Runs `f` over `items` on all cores (at most four threads), keeping the order of the results.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4);
    let chunk = items.len().div_ceil(workers).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                let f = &f;
                s.spawn(move || part.iter().map(f).collect::<Vec<R>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker"))
            .collect()
    })
}

/// The standard file cut at every 37th byte (and at each of its last bytes). Every cut is parsed
/// and its diagnostics rendered; the cuts that parse are checked and formatted too, except that
/// of a run of cuts with the same items (a cut inside a comment block) only the first and the
/// last are, since checking the whole set is slow in a debug build.
#[test]
fn truncated_standard_file_never_panics() {
    let path = common::standard_path();
    let bytes = std::fs::read(&path).unwrap();
    let mut cuts: Vec<usize> = (0..bytes.len()).step_by(37).collect();
    cuts.extend(bytes.len().saturating_sub(8)..=bytes.len());
    // Pass 1: decode and parse every cut; render the diagnostics of those that do not parse.
    let parsed: Vec<Result<Option<usize>, String>> = parallel_map(&cuts, |&cut| {
        no_panic(|| {
            let c = common::load_bytes(&path, bytes[..cut].to_vec(), false);
            if c.ast.is_none() {
                assert_diagnostics_located(&c);
                render_first(&c);
            }
            c.ast.map(|ast| ast.items.len())
        })
    });
    let mut panics = Vec::new();
    let mut full = Vec::new();
    for (i, (&cut, p)) in cuts.iter().zip(&parsed).enumerate() {
        match p {
            Err(msg) => {
                let saved = save_failure(&format!("truncated-{cut}.map"), &bytes[..cut]);
                panics.push(format!("cut at {cut}: {msg} (input: {})", saved.display()));
            }
            Ok(Some(items)) => {
                let same = |j: Option<usize>| {
                    j.and_then(|j| parsed.get(j))
                        .is_some_and(|q| matches!(q, Ok(Some(n)) if n == items))
                };
                if !same(i.checked_sub(1)) || !same(Some(i + 1)) {
                    full.push(cut);
                }
            }
            Ok(None) => {}
        }
    }
    // Pass 2: decode, check, render and format as `coupler check` and `coupler fmt` would.
    let outcomes = parallel_map(&full, |&cut| {
        (cut, no_panic(|| exercise(&path, bytes[..cut].to_vec())))
    });
    let mut fmt_errors = Vec::new();
    for (cut, o) in outcomes {
        match o {
            Ok(o) => {
                if let Some(e) = o.fmt_error {
                    let saved = save_failure(&format!("truncated-fmt-{cut}.map"), &bytes[..cut]);
                    fmt_errors.push(format!("cut at {cut}: {e} (input: {})", saved.display()));
                }
            }
            Err(msg) => {
                let saved = save_failure(&format!("truncated-{cut}.map"), &bytes[..cut]);
                panics.push(format!("cut at {cut}: {msg} (input: {})", saved.display()));
            }
        }
    }
    assert!(panics.is_empty(), "panics:\n{}", panics.join("\n"));
    assert!(
        fmt_errors.is_empty(),
        "format_checked refused:\n{}",
        fmt_errors.join("\n")
    );
    // Most cuts fall inside an item.
    let unparsed = parsed.iter().filter(|p| matches!(p, Ok(None))).count();
    assert!(unparsed * 2 > cuts.len(), "{unparsed} of {}", cuts.len());
}

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "\"",
    "'",
    "''",
    "#",
    "|",
    ",",
    ":",
    ".",
    "=",
    "==",
    "!=",
    "<",
    ">=",
    "=>",
    "->",
    "<-",
    "<->",
    "\n",
    " ",
    "\t",
    "\r\n",
    "-",
    "_",
    "0",
    "-1.5",
    "1e9",
    "99999999999999999999999999999999",
    "30m",
    "0s",
    "12h",
    "999999999999999999d",
    "mapping",
    "system",
    "settings",
    "options",
    "where",
    "couple",
    "by",
    "and",
    "or",
    "not",
    "in",
    "via",
    "fields",
    "after",
    "on",
    "create",
    "missing",
    "conflict",
    "delete",
    "wins",
    "schedule",
    "every",
    "idle",
    "key",
    "watermark",
    "when",
    "map",
    "true",
    "false",
    "null",
    "ignoring case",
    "[not null]",
    "[deferred]",
    "[clear on fail]",
    "| trim",
    "| truncate(5)",
    "| substring(0)",
    "| round(-1)",
    "| regex_match('(')",
    "| map { 'a' => 'b' }",
    "| format_date('%Q')",
    "| default(null)",
    "via CURRENCY",
    "via CUSTOMER",
    "é",
    "ß",
    "→",
    "😀",
    "\u{200b}",
    "\u{feff}",
    "\u{0301}",
    "Ω",
    "漢字",
    "bc.",
    "sales.",
    "bc.Customer",
    "sales.account",
    "\"No.\"",
    "\"\"",
    "bc",
    "sales",
];

const NAMES: &[&str] = &[
    "bc",
    "sales",
    "Customer",
    "account",
    "Name",
    "name",
    "\"No.\"",
    "\"Salesperson/Purchaser\"",
    "CUSTOMER",
    "CONTACT",
    "CURRENCY",
    "\"PAYMENT TERMS\"",
    "statecode",
    "_",
    "x",
    "and",
    "not",
    "via",
    "null",
    "mapping",
    "\"a\nb\"",
    "\"é\"",
];

fn random_text(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..1 + rng.below(4) {
        match rng.below(4) {
            0 => s.push_str(rng.pick::<&str>(TOKENS)),
            1 => s.push(char::from(b' ' + rng.below(95) as u8)),
            2 => s.push(char::from_u32(0x80 + rng.below(0x2FF80) as u32).unwrap_or('\u{FFFD}')),
            _ => {
                for _ in 0..1 + rng.below(10) {
                    s.push(char::from(b'a' + rng.below(26) as u8));
                }
            }
        }
    }
    s
}

/// Byte ranges of the identifiers (bare words) of a text.
fn words(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_alphabetic() || bytes[i] == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push((start, i));
        } else {
            i += 1;
        }
    }
    out
}

fn line_ranges(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            out.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < bytes.len() {
        out.push((start, bytes.len()));
    }
    out
}

/// Applies one random mutation.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let len = bytes.len();
    let at = rng.below(len + 1);
    match rng.below(9) {
        // Delete a byte range.
        0 => {
            let end = (at + 1 + rng.below(40)).min(len);
            bytes.drain(at..end);
        }
        // Duplicate a range in place or elsewhere.
        1 => {
            let end = (at + 1 + rng.below(80)).min(len);
            let chunk = bytes[at..end].to_vec();
            let to = if rng.below(2) == 0 {
                end
            } else {
                rng.below(len + 1)
            };
            bytes.splice(to..to, chunk);
        }
        // Insert tokens, punctuation, keywords, non-ASCII text.
        2 | 3 => {
            let text = random_text(rng);
            bytes.splice(at..at, text.into_bytes());
        }
        // Swap two lines.
        4 => {
            let lines = line_ranges(bytes);
            if lines.len() >= 2 {
                let (mut a, mut b) = (*rng.pick(&lines), *rng.pick(&lines));
                if a.0 > b.0 {
                    std::mem::swap(&mut a, &mut b);
                }
                if a != b {
                    let (la, lb) = (bytes[a.0..a.1].to_vec(), bytes[b.0..b.1].to_vec());
                    bytes.splice(b.0..b.1, la);
                    bytes.splice(a.0..a.1, lb);
                }
            }
        }
        // Delete or duplicate a whole line.
        5 => {
            let lines = line_ranges(bytes);
            if !lines.is_empty() {
                let (s, e) = *rng.pick(&lines);
                if rng.below(2) == 0 {
                    bytes.drain(s..e);
                } else {
                    let line = bytes[s..e].to_vec();
                    bytes.splice(e..e, line);
                }
            }
        }
        // Replace an identifier with another name or a random one.
        6 | 7 => {
            let ws = words(bytes);
            if !ws.is_empty() {
                let (s, e) = *rng.pick(&ws);
                let name = if rng.below(2) == 0 {
                    rng.pick(NAMES).to_string()
                } else {
                    random_text(rng)
                };
                bytes.splice(s..e, name.into_bytes());
            }
        }
        // Raw bytes: NUL, invalid UTF-8, a cut in the middle of a character.
        _ => {
            let raw: &[&[u8]] = &[b"\0", b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80"];
            bytes.splice(at..at, rng.pick(raw).to_vec());
        }
    }
}

/// The base inputs: the whole standard file, and windows of one to three consecutive items
/// behind its declarations. Small files keep the loop fast: a window's systems point at copies of
/// the real catalogs in which the tables the window does not name are cut down to their keys (so
/// every lookup target still exists), because parsing the full YAML would dominate the loop.
fn bases(path: &Path, text: &str) -> Vec<String> {
    let (ast, diags) = syntax::parse_file(FileId(0), text);
    let ast = ast.unwrap_or_else(|| panic!("the standard file does not parse: {diags:?}"));
    let is_decl = |i: &ast::Item| matches!(i, ast::Item::System(_) | ast::Item::Settings(_));
    let header_end = ast
        .items
        .iter()
        .take_while(|i| is_decl(i))
        .last()
        .map(|i| i.span().end as usize)
        .unwrap_or(0);
    let systems: Vec<&ast::SystemDecl> = ast
        .items
        .iter()
        .filter_map(|i| match i {
            ast::Item::System(s) if (s.span.end as usize) <= header_end => Some(s),
            _ => None,
        })
        .collect();
    let dir = path.parent().expect("the standard file has a folder");
    let catalogs: Vec<(String, serde_norway::Value)> = systems
        .iter()
        .map(|s| {
            let yaml = std::fs::read_to_string(dir.join(&s.schema.value)).expect("catalog");
            let value = serde_norway::from_str(&yaml).expect("catalog is YAML");
            (s.schema.value.clone(), value)
        })
        .collect();
    let stub_root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("robustness-catalogs");
    let mut stubs: std::collections::HashMap<Vec<String>, String> = Default::default();
    let items: Vec<&ast::Item> = ast.items.iter().filter(|i| !is_decl(i)).collect();
    let mut out = vec![text.to_string()];
    for size in 1..=3 {
        for w in items.windows(size) {
            let mut tables: Vec<String> = w.iter().flat_map(|i| table_names(i)).collect();
            tables.sort();
            tables.dedup();
            let n = stubs.len();
            let header = stubs.entry(tables.clone()).or_insert_with(|| {
                let stub_dir = stub_root.join(n.to_string());
                std::fs::create_dir_all(&stub_dir).expect("create stub folder");
                let mut header = text[..header_end].to_string();
                // Replace from the end so earlier spans stay valid.
                for (s, (schema, catalog)) in systems.iter().zip(&catalogs).rev() {
                    let file = stub_dir.join(Path::new(schema).file_name().expect("file name"));
                    let yaml =
                        serde_norway::to_string(&stub_catalog(catalog, &tables)).expect("YAML out");
                    std::fs::write(&file, yaml).expect("write stub catalog");
                    header.replace_range(s.schema.span.range(), &format!("\"{}\"", file.display()));
                }
                header
            });
            let (start, end) = (w[0].span().start as usize, w[size - 1].span().end as usize);
            let start = comments_above(text, header_end, start);
            out.push(format!("{header}\n\n{}\n", &text[start..end]));
        }
    }
    out
}

/// The tables an item names.
fn table_names(item: &ast::Item) -> Vec<String> {
    match item {
        // A `blank is` clause reads its one-row table: the window keeps it whole.
        ast::Item::Mapping(m) => [m.left.table.name.clone(), m.right.table.name.clone()]
            .into_iter()
            .chain(m.clauses.iter().flat_map(|c| {
                match c {
                    ast::Clause::Blank(b) => vec![b.target.table.name.clone()],
                    // A `through` table is read by its line: the window keeps it whole too.
                    ast::Clause::Fields(f) => f
                        .lines
                        .iter()
                        .filter_map(|l| l.through.as_ref().map(|t| t.table.table.name.clone()))
                        .collect(),
                    _ => Vec::new(),
                }
            }))
            .collect(),
        ast::Item::Options(o) => [&o.left, &o.right]
            .into_iter()
            .chain(&o.also)
            .map(|f| f.table.name.clone())
            .collect(),
        _ => Vec::new(),
    }
}

/// `catalog` with every table not in `keep` reduced to its key and modification fields. Every
/// table stays, so every lookup target still exists.
fn stub_catalog(catalog: &serde_norway::Value, keep: &[String]) -> serde_norway::Value {
    use serde_norway::Value;
    let mut out = catalog.clone();
    let Some(tables) = out.get_mut("tables").and_then(Value::as_mapping_mut) else {
        return out;
    };
    for (name, table) in tables.iter_mut() {
        if name.as_str().is_some_and(|n| keep.iter().any(|k| k == n)) {
            continue;
        }
        let mut needed: Vec<String> = Vec::new();
        for key in ["key", "modified_on", "modified_by"] {
            match table.get(key) {
                Some(Value::String(s)) => needed.push(s.clone()),
                Some(Value::Sequence(v)) => {
                    needed.extend(v.iter().filter_map(|s| s.as_str().map(str::to_string)))
                }
                _ => {}
            }
        }
        if let Some(fields) = table.get_mut("fields").and_then(Value::as_mapping_mut) {
            fields.retain(|k, _| k.as_str().is_some_and(|k| needed.iter().any(|n| n == k)));
        }
    }
    out
}

/// Where the comment lines right above `start` begin (not before `floor`).
fn comments_above(text: &str, floor: usize, start: usize) -> usize {
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1).max(floor);
    let mut begin = line_start;
    for line in text[floor..line_start].split_inclusive('\n').rev() {
        let t = line.trim();
        if !(t.is_empty() || t.starts_with('#')) {
            break;
        }
        begin -= line.len();
    }
    begin
}

struct Mutant {
    seed: u64,
    bytes: Vec<u8>,
}

fn mutant(seed: u64, bases: &[String]) -> Mutant {
    let mut rng = Rng::new(seed);
    // One in eighty variants mutates the whole file: it takes ten times as long to check as a
    // window in a debug build.
    let base = if rng.below(80) == 0 {
        &bases[0]
    } else {
        &bases[1 + rng.below(bases.len() - 1)]
    };
    let mut bytes = base.as_bytes().to_vec();
    for _ in 0..1 + rng.below(3) {
        mutate(&mut rng, &mut bytes);
    }
    Mutant { seed, bytes }
}

struct MutationReport {
    variants: usize,
    parsed: usize,
    elapsed: Duration,
    panics: Vec<String>,
    fmt_errors: Vec<String>,
}

/// Variants to run: at least 2,000; `COUPLER_MUTATIONS` raises it for a longer soak.
fn variant_count() -> u64 {
    std::env::var("COUPLER_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

/// The mutation loop, run once per test binary and shared by the tests that assert on it.
fn mutation_report() -> &'static MutationReport {
    static REPORT: OnceLock<MutationReport> = OnceLock::new();
    REPORT.get_or_init(|| {
        let path = common::standard_path();
        let bases = bases(&common::standard_path(), &common::standard_text());
        let count = variant_count();
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .min(4) as u64;
        let started = Instant::now();
        let results: Vec<(usize, Vec<String>, Vec<String>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    let (path, bases) = (&path, &bases);
                    s.spawn(move || {
                        let (mut parsed, mut panics, mut fmt_errors) = (0, Vec::new(), Vec::new());
                        for seed in (w..count).step_by(workers as usize) {
                            let m = mutant(seed, bases);
                            match no_panic(|| exercise(path, m.bytes.clone())) {
                                Ok(o) => {
                                    parsed += usize::from(o.parsed);
                                    if let Some(e) = o.fmt_error {
                                        let saved = save_failure(
                                            &format!("fmt-seed-{}.map", m.seed),
                                            &m.bytes,
                                        );
                                        fmt_errors.push(format!(
                                            "seed {}: {e} (input: {})",
                                            m.seed,
                                            saved.display()
                                        ));
                                    }
                                }
                                Err(msg) => {
                                    let saved = save_failure(
                                        &format!("panic-seed-{}.map", m.seed),
                                        &m.bytes,
                                    );
                                    panics.push(format!(
                                        "seed {}: {msg} (input: {})",
                                        m.seed,
                                        saved.display()
                                    ));
                                }
                            }
                        }
                        (parsed, panics, fmt_errors)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut report = MutationReport {
            variants: count as usize,
            parsed: 0,
            elapsed: started.elapsed(),
            panics: Vec::new(),
            fmt_errors: Vec::new(),
        };
        for (parsed, panics, fmt_errors) in results {
            report.parsed += parsed;
            report.panics.extend(panics);
            report.fmt_errors.extend(fmt_errors);
        }
        eprintln!(
            "mutations: {} variants ({} parsed) in {:.1?}",
            report.variants, report.parsed, report.elapsed
        );
        report
    })
}

#[test]
fn mutated_standard_file_never_panics() {
    let r = mutation_report();
    assert!(r.variants >= 2_000);
    assert!(
        r.panics.is_empty(),
        "{} of {} variants panicked:\n{}",
        r.panics.len(),
        r.variants,
        r.panics.join("\n")
    );
    // The loop is only useful if a good share of the variants reaches the checker and fmt.
    assert!(r.parsed * 5 > r.variants, "only {} parsed", r.parsed);
}

/// fmt never loses meaning: every variant that parses formats (`format_checked` is Ok).
#[test]
fn mutated_standard_file_always_formats() {
    let r = mutation_report();
    assert!(
        r.fmt_errors.is_empty(),
        "format_checked refused {} of {} parsed variants:\n{}",
        r.fmt_errors.len(),
        r.parsed,
        r.fmt_errors.join("\n")
    );
}

/// The unmutated windows are sound inputs: their cut-down catalogs load, and every table they
/// name keeps all its fields.
#[test]
fn mutation_bases_are_sound() {
    let path = common::standard_path();
    let bases = bases(&path, &common::standard_text());
    assert!(bases.len() > 3);
    for base in &bases {
        let c = common::check_text(&path, base);
        assert!(c.ast.is_some(), "{:?}\n{base}", c.codes());
        for code in c.codes() {
            // Vias and `after`s to mappings outside the window are expected; nothing else.
            assert!(
                matches!(code, "E0304" | "W0604" | "W0801" | "E0309"),
                "{code} in a window of the standard file:\n{base}\n{:#?}",
                c.diagnostics
            );
        }
    }
}

/// Same seed, same variant: a failure report can be replayed.
#[test]
fn mutations_are_deterministic() {
    let bases = bases(&common::standard_path(), &common::standard_text());
    for seed in [0, 1, 17, 1_999] {
        assert_eq!(mutant(seed, &bases).bytes, mutant(seed, &bases).bytes);
    }
}
