//! Properties of plan compilation on random mapping sets: on acyclic sets every dependency runs
//! in an earlier stage and stages are minimal; on any set, a cycle is reported exactly when the
//! dependency graph has one, once per strongly connected component.

use coupler::cli::load;
use coupler::diagnostic::codes;
use petgraph::algo::{is_cyclic_directed, tarjan_scc};
use petgraph::graph::DiGraph;
use proptest::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A mapping set with `n` mappings, declared in `order`, where mapping i runs after `deps[i]`.
fn source(n: usize, deps: &[Vec<usize>], order: &[usize]) -> String {
    let mut text = String::from(
        "system bc    = business_central \"schemas/business-central.yaml\"\n\
         system sales = dataverse        \"schemas/dynamics-365-sales.yaml\"\n",
    );
    for &i in order.iter().take(n) {
        text.push_str(&format!(
            "\nmapping M{i}: bc.Customer -> sales.account {{\n"
        ));
        if !deps[i].is_empty() {
            let names: Vec<String> = deps[i].iter().map(|d| format!("M{d}")).collect();
            text.push_str(&format!("    after {}\n", names.join(", ")));
        }
        text.push_str("    fields {\n        Name -> name\n    }\n}\n");
    }
    text
}

fn plan_of(text: &str) -> (Vec<String>, coupler::plan::Plan) {
    let (loaded, model) = load::check_text(&root().join("generated.map"), text);
    let errors: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity() == coupler::diagnostic::Severity::Error)
        .map(|d| format!("{} {}", d.code.id, d.message))
        .collect();
    (errors, coupler::plan::compile(&model, None))
}

fn dag() -> impl Strategy<Value = (usize, Vec<Vec<usize>>, Vec<usize>)> {
    (1usize..40)
        .prop_flat_map(|n| {
            let deps = (0..n)
                .map(|i| proptest::collection::vec(0..i.max(1), 0..3.min(i + 1)))
                .collect::<Vec<_>>();
            let order = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
            (Just(n), deps, order)
        })
        .prop_map(|(n, deps, order)| {
            // Only earlier mappings: acyclic by construction (a mapping never depends on itself).
            let deps = deps
                .into_iter()
                .enumerate()
                .map(|(i, d)| {
                    let mut d: Vec<usize> = d.into_iter().filter(|&x| x < i).collect();
                    d.sort();
                    d.dedup();
                    d
                })
                .collect();
            (n, deps, order)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn acyclic_sets_give_minimal_ordered_stages((n, deps, order) in dag()) {
        let (errors, plan) = plan_of(&source(n, &deps, &order));
        prop_assert!(errors.is_empty(), "unexpected errors: {errors:?}");
        let stage: HashMap<String, usize> = plan.mappings.iter().map(|m| (m.name.clone(), m.stage)).collect();
        prop_assert_eq!(stage.len(), n);
        for (i, ds) in deps.iter().enumerate() {
            let si = stage[&format!("M{i}")];
            for d in ds {
                prop_assert!(stage[&format!("M{d}")] < si, "M{} (stage {}) must run before M{} (stage {})", d, stage[&format!("M{d}")], i, si);
            }
            // Minimal: a mapping sits right after its latest dependency, or first.
            let expected = ds.iter().map(|d| stage[&format!("M{d}")] + 1).max().unwrap_or(1);
            prop_assert_eq!(si, expected, "M{} is not in its earliest stage", i);
        }
        // Stages list exactly the mappings with that stage number.
        for (k, names) in plan.stages.iter().enumerate() {
            for name in names {
                prop_assert_eq!(stage[name], k + 1);
            }
        }
    }

    #[test]
    fn cycles_are_reported_once_per_component(n in 1usize..12, edges in proptest::collection::vec((0usize..12, 0usize..12), 0..20)) {
        let mut deps = vec![Vec::new(); n];
        let mut graph = DiGraph::<(), ()>::new();
        let nodes: Vec<_> = (0..n).map(|_| graph.add_node(())).collect();
        for (a, b) in edges {
            let (a, b) = (a % n, b % n);
            if !deps[a].contains(&b) {
                deps[a].push(b);
                graph.add_edge(nodes[a], nodes[b], ());
            }
        }
        let order: Vec<usize> = (0..n).collect();
        let (loaded, _) = load::check_text(&root().join("generated.map"), &source(n, &deps, &order));
        let cycles = loaded.diagnostics.iter().filter(|d| d.code == codes::CYCLE).count();
        let components = tarjan_scc(&graph)
            .into_iter()
            .filter(|c| c.len() > 1 || graph.contains_edge(c[0], c[0]))
            .count();
        prop_assert_eq!(cycles > 0, is_cyclic_directed(&graph));
        prop_assert_eq!(cycles, components);
    }
}
