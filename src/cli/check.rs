//! `coupler check`

use super::args::{CheckArgs, DiagnosticFormat};
use super::{load, output};
use crate::diagnostic::Severity;

pub fn run(args: CheckArgs) -> i32 {
    let (loaded, _model) = match load::check(&args.paths) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}", e.0);
            return 2;
        }
    };
    let diags: Vec<_> = loaded.diagnostics.iter().cloned().collect();
    match args.format {
        DiagnosticFormat::Human => {
            output::print_human(&diags, &loaded.sources);
            eprintln!("{}", output::summary(&diags, loaded.file_count));
        }
        DiagnosticFormat::Json => output::print_json(&diags, &loaded.sources),
    }
    let errors = diags.iter().any(|d| d.severity() == Severity::Error);
    let warnings = diags.iter().any(|d| d.severity() == Severity::Warning);
    if errors || (args.deny_warnings && warnings) {
        1
    } else {
        0
    }
}
