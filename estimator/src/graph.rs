//! The execution dependency graph: what code a page has and how it gets run.
//!
//! Nodes are the document, its scripts, every body of code (script top level, function,
//! method, class, inline handler), every handler and timer registration, worker creation and
//! network request, plus one node standing for "some code we could not identify" that every
//! unresolved call points to, so that no call site is dropped from the graph. Edges say how
//! one thing leads to another: containment, calls, registration of a callback, spawning a
//! worker, loading over the network. The cost pass walks the call edges; the summary counts
//! everything for display.

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use foresight_shared::protocol::demand::{GraphSummary, PageSources, ScriptKind};

use crate::ir::{BodyId, BodyKind, Collected, LibId, NetId, RegId, RegKind, ScriptStatus, SpawnId};
use crate::resolve::{Resolution, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    Document,
    /// A script, by index into `PageSources.scripts`.
    Script(usize),
    Body(BodyId),
    Handler(RegId),
    Timer(RegId),
    Worker(SpawnId),
    Network(NetId),
    /// A recognised library (`Collected.libraries`): its code is not in the graph, its
    /// measured entry points are.
    Library(LibId),
    /// The unknown callee of every unresolved call.
    Unresolved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// The source's code defines or includes the target.
    Contains,
    /// The source's code calls the target.
    Calls,
    /// A registration makes the target run later (handler or timer -> callback).
    Registers,
    /// Code creates a worker; a worker runs its script.
    Spawns,
    /// Code fetches something (network request, worker script).
    Loads,
}

pub struct ExecGraph {
    pub graph: DiGraph<Node, Edge>,
    /// The node of each body, by body id.
    pub bodies: Vec<NodeIndex>,
}

impl ExecGraph {
    pub fn body_node(&self, b: BodyId) -> Option<NodeIndex> {
        self.bodies.get(b).copied()
    }

    /// The bodies `b` calls (resolved calls only), in edge order.
    pub fn callees(&self, b: BodyId) -> impl Iterator<Item = BodyId> + '_ {
        self.body_node(b)
            .into_iter()
            .flat_map(move |n| self.graph.edges(n))
            .filter(|e| *e.weight() == Edge::Calls)
            .filter_map(|e| match self.graph.node_weight(e.target()) {
                Some(Node::Body(t)) => Some(*t),
                _ => None,
            })
    }
}

/// Builds the graph from the collected and resolved page. `worker_urls` are the resolved URLs
/// of `c.spawns`, used to link a worker to its script when the page sources include it.
pub fn build(
    c: &Collected,
    r: &Resolution,
    worker_urls: &[Option<String>],
    sources: &PageSources,
) -> ExecGraph {
    let mut g: DiGraph<Node, Edge> = DiGraph::new();
    let document = g.add_node(Node::Document);
    let scripts: Vec<NodeIndex> = (0..c.scripts.len())
        .map(|i| {
            let n = g.add_node(Node::Script(i));
            g.add_edge(document, n, Edge::Contains);
            n
        })
        .collect();
    let bodies: Vec<NodeIndex> = (0..c.bodies.len())
        .map(|b| g.add_node(Node::Body(b)))
        .collect();
    let unresolved = g.add_node(Node::Unresolved);
    let libraries: Vec<NodeIndex> = c
        .libraries
        .iter()
        .enumerate()
        .map(|(id, lib)| {
            let n = g.add_node(Node::Library(id));
            if let Some(&s) = scripts.get(lib.script) {
                g.add_edge(s, n, Edge::Contains);
            }
            n
        })
        .collect();

    for (i, status) in c.scripts.iter().enumerate() {
        if let (ScriptStatus::Parsed(b), Some(&s)) = (status, scripts.get(i))
            && let Some(&bn) = bodies.get(*b)
        {
            g.add_edge(s, bn, Edge::Contains);
        }
    }
    for (b, body) in c.bodies.iter().enumerate() {
        if let (Some(p), Some(&child)) = (body.parent, bodies.get(b))
            && let Some(&parent) = bodies.get(p)
        {
            g.add_edge(parent, child, Edge::Contains);
        }
    }
    for (site, target) in c.sites.iter().zip(&r.sites) {
        let Some(&from) = bodies.get(site.body) else {
            continue;
        };
        match target {
            Target::Bodies(callees) => {
                for callee in callees {
                    if let Some(&to) = bodies.get(*callee) {
                        g.add_edge(from, to, Edge::Calls);
                    }
                }
            }
            Target::Unresolved => {
                g.add_edge(from, unresolved, Edge::Calls);
            }
            Target::Library { lib, .. } => {
                if let Some(&to) = libraries.get(*lib) {
                    g.add_edge(from, to, Edge::Calls);
                }
            }
            Target::Builtin(_) | Target::Ignored => {}
        }
    }
    for (id, (reg, callback)) in c.registrations.iter().zip(&r.callbacks).enumerate() {
        let node = g.add_node(match reg.kind {
            RegKind::Event { .. } => Node::Handler(id),
            RegKind::Timer { .. } => Node::Timer(id),
        });
        let owner = reg
            .body
            .and_then(|b| bodies.get(b).copied())
            .unwrap_or(document);
        g.add_edge(owner, node, Edge::Contains);
        match callback.and_then(|b| bodies.get(b).copied()) {
            Some(cb) => {
                g.add_edge(node, cb, Edge::Registers);
            }
            // A handler whose callback is not page code we can see still runs something.
            None => {
                g.add_edge(node, unresolved, Edge::Registers);
            }
        }
    }
    for (id, spawn) in c.spawns.iter().enumerate() {
        let node = g.add_node(Node::Worker(id));
        if let Some(&from) = bodies.get(spawn.body) {
            g.add_edge(from, node, Edge::Spawns);
        }
        let url = worker_urls.get(id).and_then(|u| u.as_deref());
        if let Some(script) = url.and_then(|u| worker_script(sources, u))
            && let Some(&s) = scripts.get(script)
        {
            g.add_edge(node, s, Edge::Loads);
        }
    }
    for (id, net) in c.nets.iter().enumerate() {
        let node = g.add_node(Node::Network(id));
        if let Some(&from) = bodies.get(net.body) {
            g.add_edge(from, node, Edge::Loads);
        }
    }
    ExecGraph { graph: g, bodies }
}

/// The index of the worker script fetched for `url`, if the page sources include it.
pub fn worker_script(sources: &PageSources, url: &str) -> Option<usize> {
    sources
        .scripts
        .iter()
        .position(|s| s.kind == ScriptKind::Worker && s.url.as_deref() == Some(url))
}

pub fn summary(c: &Collected, r: &Resolution, g: &ExecGraph) -> GraphSummary {
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    GraphSummary {
        nodes: count(g.graph.node_count()),
        edges: count(g.graph.edge_count()),
        scripts: count(c.scripts.len()),
        functions: count(
            c.bodies
                .iter()
                .filter(|b| !matches!(b.kind, BodyKind::Script | BodyKind::InlineHandler))
                .count(),
        ),
        unresolved_calls: r.unresolved_calls,
        parse_errors: c.parse_errors,
    }
}
