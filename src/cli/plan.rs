//! `coupler plan`

use super::args::{PlanArgs, PlanFormat};
use super::{load, output};
use crate::diagnostic::Severity;
use crate::plan::{self, graph::DepGraph, select};

pub fn run(args: PlanArgs) -> i32 {
    let (loaded, model) = match load::check(&args.paths) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}", e.0);
            return 2;
        }
    };
    let errors: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity() == Severity::Error)
        .cloned()
        .collect();
    if !errors.is_empty() {
        output::print_human(&errors, &loaded.sources);
        eprintln!(
            "error: no plan: {}",
            output::summary(&errors, loaded.file_count)
        );
        return 1;
    }
    let selection = match &args.select {
        Some(spec) => match select::select(&DepGraph::build(&model), spec) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        },
        None => None,
    };
    let plan = plan::compile(&model, selection.as_ref());
    let text = match args.format {
        PlanFormat::Text => plan::render_text(&plan),
        PlanFormat::Json => serde_json::to_string_pretty(&plan)
            .map(|s| s + "\n")
            .unwrap_or_default(),
        PlanFormat::Yaml => serde_norway::to_string(&plan).unwrap_or_default(),
        PlanFormat::Dot => plan::render_dot(&plan),
        PlanFormat::Mermaid => plan::render_mermaid(&plan),
    };
    crate::out!("{text}");
    0
}
