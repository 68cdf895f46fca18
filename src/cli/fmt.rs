//! `coupler fmt [--check]`

use super::args::FmtArgs;
use super::{load, output};

pub fn run(args: FmtArgs) -> i32 {
    let loaded = match load::load(&args.paths) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {}", e.0);
            return 2;
        }
    };
    let diags: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity() == crate::diagnostic::Severity::Error)
        .cloned()
        .collect();
    if !diags.is_empty() {
        output::print_human(&diags, &loaded.sources);
        eprintln!(
            "error: not formatting: {}",
            output::summary(&diags, loaded.file_count)
        );
        return 1;
    }
    let mut unformatted = 0;
    for (id, ast) in &loaded.asts {
        let file = loaded.sources.file(*id);
        let formatted = match crate::syntax::format_checked(*id, ast, &file.text) {
            Ok(f) => f,
            Err(why) => {
                eprintln!("error: internal error formatting `{}`: {why}; the file was left unchanged. Please report this bug.", file.name);
                return 2;
            }
        };
        if formatted == *file.text {
            continue;
        }
        unformatted += 1;
        if args.check {
            let diff = unified_diff(&file.name, &file.text, &formatted);
            crate::out!("{diff}");
            if !diff.ends_with('\n') {
                crate::outln!();
            }
        } else if let Err(e) = std::fs::write(&file.path, &formatted) {
            eprintln!("error: cannot write `{}`: {e}", file.name);
            return 2;
        } else {
            eprintln!("formatted {}", file.name);
        }
    }
    if args.check && unformatted > 0 {
        eprintln!(
            "{} not formatted; run `coupler fmt`",
            if unformatted == 1 {
                "1 file is".to_string()
            } else {
                format!("{unformatted} files are")
            }
        );
        return 1;
    }
    0
}

fn unified_diff(name: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}
