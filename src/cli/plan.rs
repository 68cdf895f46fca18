//! `coupler plan`

use super::args::{PlanArgs, PlanFormat};
use super::setup::{self, Stop};
use crate::plan::{self, graph::DepGraph, select};

pub fn run(args: PlanArgs) -> i32 {
    let model = match setup::checked_model_with(&args.paths, true, "no plan") {
        Ok(m) => m,
        Err(Stop(code)) => return code,
    };
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
