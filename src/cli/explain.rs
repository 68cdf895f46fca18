//! `coupler explain CODE`

use super::args::ExplainArgs;
use crate::diagnostic::{codes, suggest};

pub fn run(args: ExplainArgs) -> i32 {
    let Some(code) = args.code else {
        for c in codes::ALL {
            crate::outln!("{}  {}", c.id, c.title);
        }
        return 0;
    };
    match codes::find(&code) {
        Some(c) => {
            match codes::explanation(c) {
                Some(text) => crate::outln!("{text}"),
                None => crate::outln!("{}: {}", c.id, c.title),
            }
            0
        }
        None => {
            let ids = codes::ALL.iter().map(|c| c.id);
            let hint = suggest::did_you_mean(&code, ids)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            eprintln!(
                "error: unknown diagnostic code `{code}`{hint}; `coupler explain` lists them all"
            );
            2
        }
    }
}
