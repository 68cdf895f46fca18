//! Printing diagnostics and summaries.

use crate::diagnostic::{render_human, render_json, Diagnostic, RenderOptions, Severity};
use crate::source::SourceMap;
use std::io::IsTerminal;

/// Colour when stderr is a terminal and NO_COLOR is not set.
pub fn stderr_options() -> RenderOptions {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    RenderOptions { color, width: 100 }
}

pub fn print_human(diags: &[Diagnostic], sources: &SourceMap) {
    let opts = stderr_options();
    for d in diags {
        eprintln!("{}", render_human(d, sources, opts));
    }
}

pub fn print_json(diags: &[Diagnostic], sources: &SourceMap) {
    for d in diags {
        crate::outln!("{}", render_json(d, sources));
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `2 errors, 1 warning in 1 file`
pub fn summary(diags: &[Diagnostic], files: usize) -> String {
    let errors = diags
        .iter()
        .filter(|d| d.severity() == Severity::Error)
        .count();
    let warnings = diags.len() - errors;
    format!(
        "{}, {} in {}",
        plural(errors, "error"),
        plural(warnings, "warning"),
        plural(files, "file")
    )
}

/// `print!` that does not panic when stdout is closed (`coupler plan | head`).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// `println!` that does not panic when stdout is closed.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
