//! The dependency graph and its stages.

use crate::analysis::{DependencyKind, Model};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
use std::collections::HashMap;

/// Mappings as nodes (declaration order), ordering edges from dependency to dependent.
pub struct DepGraph {
    pub graph: DiGraph<String, EdgeInfo>,
    pub index: HashMap<String, NodeIndex>,
}

#[derive(Clone, Debug)]
pub struct EdgeInfo {
    pub kind: DependencyKind,
    pub field: String,
}

impl DepGraph {
    pub fn build(model: &Model) -> DepGraph {
        let mut graph = DiGraph::new();
        let mut index = HashMap::new();
        for name in model.mappings.keys() {
            index.insert(name.clone(), graph.add_node(name.clone()));
        }
        for d in &model.dependencies {
            if let (Some(&from), Some(&to)) = (index.get(&d.to), index.get(&d.from)) {
                graph.add_edge(
                    from,
                    to,
                    EdgeInfo {
                        kind: d.kind,
                        field: d.reason.clone(),
                    },
                );
            }
        }
        DepGraph { graph, index }
    }

    /// Ordering edges only: deferred lookups do not order mappings.
    fn ordering_preds(&self, n: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph
            .edges_directed(n, Direction::Incoming)
            .filter(|e| e.weight().kind != DependencyKind::Deferred)
            .map(|e| petgraph::visit::EdgeRef::source(&e))
    }

    /// Stage of every node (0-based): one more than the latest stage it depends on, so every
    /// mapping runs as early as it can and a stage never holds two dependent mappings.
    /// The graph must be acyclic on ordering edges (the checker proved it).
    pub fn stages(&self) -> Vec<usize> {
        let n = self.graph.node_count();
        let mut stage = vec![usize::MAX; n];
        // Iterative depth-first evaluation: deep chains must not exhaust the stack.
        for start in self.graph.node_indices() {
            let mut stack = vec![(start, false)];
            while let Some((node, expanded)) = stack.pop() {
                if stage[node.index()] != usize::MAX {
                    continue;
                }
                if expanded {
                    let s = self
                        .ordering_preds(node)
                        .map(|p| stage[p.index()].saturating_add(1))
                        .max()
                        .unwrap_or(0);
                    stage[node.index()] = s;
                } else {
                    stack.push((node, true));
                    for p in self.ordering_preds(node) {
                        if stage[p.index()] == usize::MAX {
                            stack.push((p, false));
                        }
                    }
                }
            }
        }
        stage
    }

    /// A node and everything that depends on it (transitively), following all edge kinds.
    pub fn descendants(&self, start: NodeIndex) -> Vec<NodeIndex> {
        self.walk(start, Direction::Outgoing)
    }

    /// A node and everything it depends on (transitively).
    pub fn ancestors(&self, start: NodeIndex) -> Vec<NodeIndex> {
        self.walk(start, Direction::Incoming)
    }

    fn walk(&self, start: NodeIndex, dir: Direction) -> Vec<NodeIndex> {
        let mut seen = vec![false; self.graph.node_count()];
        let mut out = Vec::new();
        let mut stack = vec![start];
        while let Some(n) = stack.pop() {
            if std::mem::replace(&mut seen[n.index()], true) {
                continue;
            }
            out.push(n);
            for m in self.graph.neighbors_directed(n, dir) {
                stack.push(m);
            }
        }
        out
    }
}
