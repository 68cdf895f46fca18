//! `coupler check`

use super::args::{CheckArgs, DiagnosticFormat};
use super::setup::{self, Stop};
use super::{load, output};
use crate::analysis::Model;
use crate::diagnostic::{Diagnostic, Severity};
use std::path::Path;

pub fn run(args: CheckArgs) -> i32 {
    let (loaded, mut model) = match load::check(&args.paths) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}", e.0);
            return 2;
        }
    };
    let mut diags: Vec<_> = loaded.diagnostics.iter().cloned().collect();
    if let Some(name) = &args.profile {
        match endpoint_diagnostics(&mut model, name, args.config.as_deref()) {
            Ok(more) => {
                diags.extend(more);
                diags.sort_by_key(|d| (d.span.file, d.span.start));
            }
            Err(Stop(code)) => return code,
        }
    }
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

/// The profile's settings applied to the model, then what its endpoints cannot serve.
fn endpoint_diagnostics(
    model: &mut Model,
    profile: &str,
    config: Option<&Path>,
) -> Result<Vec<Diagnostic>, Stop> {
    let profile = setup::bind_for(model, profile, config, crate::config::Use::Static)?;
    setup::serve_endpoints(model, &profile)
}
