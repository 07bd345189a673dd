//! Graph shape for small pages: what the estimator finds and how it links it.

mod common;

use common::{handler, inline, page, run, script};
use foresight_estimator::analyse;
use foresight_estimator::graph::{Edge, Node};
use foresight_estimator::ir::{BodyKind, CalleeRef, RegKind};
use foresight_estimator::resolve::Target;
use foresight_shared::protocol::demand::{PathKind, ScriptKind};
use petgraph::visit::EdgeRef;

const FIRST: &str = r#"
function helper(x) { return x * 2; }
var counter = 0;
document.addEventListener('DOMContentLoaded', function () { init(); });
"#;

const SECOND: &str = r#"
function init() {
  const btn = document.getElementById('go');
  btn.addEventListener('click', onGo);
  setTimeout(() => helper(1), 100);
  fetch('/api/data').then((r) => r.json());
  const w = new Worker('w.js');
  mystery(counter);
}
function onGo(e) { counter += helper(3); }
window.onresize = function () { helper(2); };
"#;

fn two_scripts() -> foresight_shared::protocol::demand::PageSources {
    page(vec![
        inline(FIRST),
        script(
            ScriptKind::Classic,
            Some("http://127.0.0.1:8080/app/js/app.js"),
            SECOND,
        ),
    ])
}

fn count(g: &petgraph::graph::DiGraph<Node, Edge>, f: impl Fn(&Node) -> bool) -> usize {
    g.node_weights().filter(|n| f(n)).count()
}

#[test]
fn finds_functions_handlers_timers_workers_and_requests() {
    let a = analyse(&two_scripts());
    let g = &a.graph.graph;
    assert!(
        a.collected.warnings.is_empty(),
        "{:?}",
        a.collected.warnings
    );
    assert_eq!(count(g, |n| matches!(n, Node::Document)), 1);
    assert_eq!(count(g, |n| matches!(n, Node::Script(_))), 2);
    // helper, DOMContentLoaded callback, init, timer arrow, then arrow, onGo, onresize.
    let functions = a
        .collected
        .bodies
        .iter()
        .filter(|b| b.kind != BodyKind::Script)
        .count();
    assert_eq!(functions, 7);
    assert_eq!(count(g, |n| matches!(n, Node::Handler(_))), 3);
    assert_eq!(count(g, |n| matches!(n, Node::Timer(_))), 1);
    assert_eq!(count(g, |n| matches!(n, Node::Worker(_))), 1);
    assert_eq!(count(g, |n| matches!(n, Node::Network(_))), 1);
    let events: Vec<(String, String)> = a
        .collected
        .registrations
        .iter()
        .filter_map(|r| match &r.kind {
            RegKind::Event { event, target } => Some((event.clone(), target.clone())),
            RegKind::Timer { .. } => None,
        })
        .collect();
    assert_eq!(
        events,
        vec![
            ("DOMContentLoaded".to_string(), "document".to_string()),
            ("click".to_string(), "#go".to_string()),
            ("resize".to_string(), "window".to_string()),
        ]
    );
    // Every registration leads to its callback's body.
    for (i, cb) in a.resolution.callbacks.iter().enumerate() {
        assert!(cb.is_some(), "registration {i} has no callback");
    }
    assert_eq!(
        a.worker_urls,
        vec![Some("http://127.0.0.1:8080/app/w.js".to_string())]
    );
}

#[test]
fn calls_resolve_across_classic_scripts() {
    let a = analyse(&two_scripts());
    let c = &a.collected;
    let named = |name: &str| {
        c.bodies
            .iter()
            .position(|b| b.name.as_deref() == Some(name))
            .expect("body exists")
    };
    let (helper, init) = (named("helper"), named("init"));
    // `init()` in the first script calls the function the second script declares, and the
    // second script's callbacks call `helper` from the first.
    let calls_to = |callee: usize| {
        a.graph
            .graph
            .edge_references()
            .filter(|e| *e.weight() == Edge::Calls)
            .filter(|e| a.graph.graph[e.target()] == Node::Body(callee))
            .count()
    };
    assert_eq!(calls_to(init), 1);
    assert_eq!(calls_to(helper), 3);
    let d = run(&two_scripts());
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(d.graph.scripts, 2);
    assert_eq!(d.graph.functions, 7);
    assert_eq!(d.graph.nodes as usize, a.graph.graph.node_count());
    assert_eq!(d.graph.edges as usize, a.graph.graph.edge_count());
}

#[test]
fn an_unresolved_call_is_counted_and_kept_in_the_graph() {
    let a = analyse(&two_scripts());
    // `mystery(counter)`: declared nowhere, not a builtin.
    assert_eq!(a.resolution.unresolved_calls, 1);
    let (i, _) = a
        .collected
        .sites
        .iter()
        .enumerate()
        .find(|(_, s)| matches!(&s.callee, CalleeRef::Name(n) if n.as_str() == "mystery"))
        .expect("the call site is recorded");
    assert_eq!(a.resolution.sites[i], Target::Unresolved);
    let unresolved = a
        .graph
        .graph
        .node_indices()
        .find(|n| a.graph.graph[*n] == Node::Unresolved)
        .expect("one unresolved node");
    let into = a
        .graph
        .graph
        .edges_directed(unresolved, petgraph::Direction::Incoming)
        .filter(|e| *e.weight() == Edge::Calls)
        .count();
    assert_eq!(into, 1);
    assert_eq!(run(&two_scripts()).graph.unresolved_calls, 1);
}

#[test]
fn paths_follow_load_order_and_handlers() {
    let mut p = two_scripts();
    p.handlers
        .push(handler("button#save", "click", "save(this.form)"));
    let d = run(&p);
    let names: Vec<&str> = d.paths.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["load", "click #go", "resize window", "click button#save"]
    );
    assert_eq!(d.paths[0].kind, PathKind::Load);
    assert_eq!(d.paths[0].probability, 1.0);
    for p in &d.paths[1..] {
        assert_eq!(p.kind, PathKind::Interaction);
        assert!(p.probability > 0.0 && p.probability < 1.0);
    }
    // The external script's bytes and the fetch inside `init` (run by the DOMContentLoaded
    // handler) are on the load path.
    assert!(d.paths[0].network_bytes.p50 >= SECOND.len() as f64 + 1_000.0);
    // `save` is unresolved: the inline handler still gets a path, priced as unknown code.
    assert_eq!(d.graph.unresolved_calls, 2);
}

#[test]
fn load_path_includes_timers_and_load_handlers_but_not_clicks() {
    let heavy_loop = "for (let i = 0; i < 5e6; i++) { x = x + i; }";
    let timer = format!("let x = 0; setTimeout(function () {{ {heavy_loop} }}, 0);");
    let click =
        format!("let x = 0; document.body.addEventListener('click', () => {{ {heavy_loop} }});");
    let onload = format!("let x = 0; window.onload = () => {{ {heavy_loop} }};");
    let load_ms = |src: &str| run(&page(vec![inline(src)])).paths[0].cpu_ms.p50;
    assert!(load_ms(&timer) > 10.0, "timer {}", load_ms(&timer));
    assert!(load_ms(&onload) > 10.0, "onload {}", load_ms(&onload));
    assert!(load_ms(&click) < 1.0, "click {}", load_ms(&click));
    let d = run(&page(vec![inline(&click)]));
    assert_eq!(d.paths[1].name, "click body");
    assert!(d.paths[1].cpu_ms.p50 > 10.0);
}

#[test]
fn scripts_run_in_browser_order() {
    // A defer script that calls a function the later classic script declares still resolves
    // (globals are shared), and both scripts' work is on the load path.
    let d = run(&page(vec![
        script(
            ScriptKind::Defer,
            Some("http://127.0.0.1:8080/d.js"),
            "work();",
        ),
        inline("function work() { for (let i = 0; i < 1e6; i++) {} }"),
    ]));
    assert_eq!(d.graph.unresolved_calls, 0);
    assert!(d.paths[0].cpu_ms.p50 > 2.0);
    // Worker scripts are not part of the page's load.
    let w = run(&page(vec![script(
        ScriptKind::Worker,
        Some("http://127.0.0.1:8080/w.js"),
        "for (let i = 0; i < 1e8; i++) {}",
    )]));
    assert!(w.paths[0].cpu_ms.p90 < 5.0, "{:?}", w.paths[0].cpu_ms);
    assert!(w.components.is_empty());
}

#[test]
fn methods_and_classes_resolve_by_name() {
    let src = r#"
        class Grid {
          constructor() { this.cells = new Float64Array(CELLS); }
          render() { for (let i = 0; i < 1000; i++) { this.paint(i); } }
          paint(i) { return i + 1; }
        }
        const api = { load() { return 1; }, save: function () { return 2; } };
        const CELLS = 1 << 20;
        const g = new Grid();
        g.render();
        api.load();
        api.save();
    "#;
    let a = analyse(&page(vec![inline(src)]));
    assert_eq!(a.resolution.unresolved_calls, 0, "{:?}", a.resolution.sites);
    let d = run(&page(vec![inline(src)]));
    // The typed array's 8 MiB are on the load path (its size is a `const` declared after the
    // class that uses it).
    assert!(d.paths[0].memory_bytes.p50 >= 8.0 * 1024.0 * 1024.0);
}
