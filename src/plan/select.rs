//! `--select`: `CUSTOMER`, `CUSTOMER+` (and what depends on it), `+CUSTOMER` (and what it
//! depends on), comma-separated.

use super::graph::DepGraph;
use crate::diagnostic::suggest;
use std::collections::BTreeSet;

/// Resolves a selection to node indexes, or says which name is unknown.
pub fn select(graph: &DepGraph, spec: &str) -> Result<BTreeSet<usize>, String> {
    let mut chosen = BTreeSet::new();
    for raw in spec.split(',') {
        let item = raw.trim();
        if item.is_empty() {
            continue;
        }
        let up = item.starts_with('+');
        let rest = item.strip_prefix('+').unwrap_or(item);
        let down = rest.ends_with('+');
        let name = rest.strip_suffix('+').unwrap_or(rest).trim();
        if name.is_empty() || name.starts_with('+') || name.ends_with('+') {
            return Err(format!(
                "`{item}` in --select: write `NAME`, `+NAME` (and what it depends on) or `NAME+` (and what depends on it)"
            ));
        }
        let Some(&node) = graph.index.get(name) else {
            // Sorted, so the suggestion does not depend on hashing order.
            let mut names: Vec<&str> = graph.index.keys().map(String::as_str).collect();
            names.sort_unstable();
            let hint = suggest::did_you_mean(name, names)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(format!("unknown mapping `{name}` in --select{hint}"));
        };
        chosen.insert(node.index());
        if up {
            chosen.extend(graph.ancestors(node).iter().map(|n| n.index()));
        }
        if down {
            chosen.extend(graph.descendants(node).iter().map(|n| n.index()));
        }
    }
    if chosen.is_empty() {
        return Err("--select names no mapping".into());
    }
    Ok(chosen)
}
