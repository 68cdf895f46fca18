//! Dependency cycles: every strongly connected component of the dependency graph is reported,
//! with the whole cycle, a label on each edge and the deferred-lookup fix.

use super::{Cx, Dependency, DependencyKind};
use crate::diagnostic::{codes, Diagnostic};
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::HashMap;

pub(crate) fn check_cycles(cx: &mut Cx<'_>) {
    let names: Vec<String> = cx.model.mappings.keys().cloned().collect();
    let index: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut graph: DiGraph<usize, usize> = DiGraph::new();
    let nodes: Vec<NodeIndex> = (0..names.len()).map(|i| graph.add_node(i)).collect();
    for (di, d) in cx.model.dependencies.iter().enumerate() {
        if d.kind == DependencyKind::Deferred {
            continue;
        }
        if let (Some(&a), Some(&b)) = (index.get(d.from.as_str()), index.get(d.to.as_str())) {
            graph.add_edge(nodes[a], nodes[b], di);
        }
    }
    let mut sccs = tarjan_scc(&graph);
    // Report in declaration order, whatever order tarjan found them.
    for scc in &mut sccs {
        scc.sort_by_key(|n| graph[*n]);
    }
    sccs.sort_by_key(|scc| graph[scc[0]]);
    for scc in sccs {
        let self_loop = scc.len() == 1 && graph.contains_edge(scc[0], scc[0]);
        if scc.len() < 2 && !self_loop {
            continue;
        }
        let edges = find_cycle(&graph, &scc);
        let deps: Vec<Dependency> = edges
            .iter()
            .map(|&e| cx.model.dependencies[e].clone())
            .collect();
        report_cycle(cx, &deps);
    }
}

/// One cycle through the component, as dependency indexes, starting at its first node.
fn find_cycle(graph: &DiGraph<usize, usize>, scc: &[NodeIndex]) -> Vec<usize> {
    let start = scc[0];
    let in_scc = |n: NodeIndex| scc.contains(&n);
    // Breadth-first search for the shortest way back to `start`.
    let mut prev: HashMap<NodeIndex, (NodeIndex, usize)> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        let mut edges: Vec<_> = graph
            .edges(n)
            .map(|e| (petgraph::visit::EdgeRef::target(&e), *e.weight()))
            .collect();
        edges.sort_by_key(|(t, w)| (graph[*t], *w));
        for (t, w) in edges {
            if !in_scc(t) {
                continue;
            }
            if t == start {
                let mut path = vec![w];
                let mut cur = n;
                while cur != start {
                    let (p, pw) = prev[&cur];
                    path.push(pw);
                    cur = p;
                }
                path.reverse();
                return path;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(t) {
                e.insert((n, w));
                queue.push_back(t);
            }
        }
    }
    Vec::new()
}

fn report_cycle(cx: &mut Cx<'_>, deps: &[Dependency]) {
    let Some(first) = deps.first() else {
        return;
    };
    let mut path: Vec<&str> = deps.iter().map(|d| d.from.as_str()).collect();
    path.push(first.from.as_str());
    let shown = path.join(" -> ");
    let mut d = Diagnostic::new(
        codes::CYCLE,
        first.span,
        format!("dependency cycle `{shown}`"),
    )
    .label(edge_label(first));
    for dep in &deps[1..] {
        d = d.with_label(dep.span, edge_label(dep));
    }
    let lookup = deps.iter().find(|d| d.kind == DependencyKind::Via);
    d = d.help(match lookup {
        Some(l) => {
            let via = crate::syntax::printer::mapping_name(&crate::syntax::ast::Ident {
                name: l.to.clone(),
                quoted: false,
                span: Default::default(),
            });
            format!(
                "defer one lookup so it is patched after both mappings ran: in mapping `{}`, end the `{}` line with `via {via} [deferred]`",
                l.from, l.reason
            )
        }
        None => "remove one of the `after` dependencies: mappings must run in some order".into(),
    });
    cx.report(d);
}

fn edge_label(d: &Dependency) -> String {
    match d.kind {
        DependencyKind::After => format!("`{}` runs after `{}`", d.from, d.to),
        _ => format!("`{}` looks up `{}` through `{}`", d.from, d.reason, d.to),
    }
}
