//! `coupler plan`

use super::args::{PlanArgs, PlanFormat};
use super::setup::{self, Stop};
use crate::diagnostic::Severity;
use crate::plan::{self, graph::DepGraph, select};

pub fn run(args: PlanArgs) -> i32 {
    let mut model = match setup::checked_model_with(&args.paths, true, "no plan") {
        Ok(m) => m,
        Err(Stop(code)) => return code,
    };
    if let Some(name) = &args.profile {
        let applied = setup::bind_for(
            &mut model,
            name,
            args.config.as_deref(),
            crate::config::Use::Static,
        )
        .and_then(|p| setup::serve_endpoints(&mut model, &p));
        match applied {
            // The plan shows what is left out; `check --profile` explains it.
            Ok(d) if !d.iter().any(|d| d.severity() == Severity::Error) => {}
            Ok(_) => {
                eprintln!("error: the profile's endpoints cannot run the mapping set; `coupler check --profile {name}` says why");
                return 1;
            }
            Err(Stop(code)) => return code,
        }
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
