//! Hostile and broken input: never a panic, never a stack overflow, always a usable estimate
//! with a warning saying what was not analysed.

mod common;

use common::{handler, inline, page, run, script};
use foresight_estimator::{Budget, Calibration, analyse, estimate, estimate_within};
use foresight_shared::protocol::demand::{PageSources, ScriptKind, ScriptSource};

const SHOP: &str = include_str!("fixtures/shop.js");

#[test]
fn ten_thousand_nested_parens_are_refused_with_a_warning() {
    let deep = format!("x = {}1{};", "(".repeat(10_000), ")".repeat(10_000));
    let d = run(&page(vec![inline(&deep), inline("let ok = 1;")]));
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    assert!(d.warnings[0].contains("nest"), "{}", d.warnings[0]);
    // Priced by size: parse cost of ~20 KB is there, and nothing is infinite.
    assert!(d.paths[0].cpu_ms.p50 > 0.1);
}

#[test]
fn every_kind_of_deep_nesting_is_refused() {
    let n = 10_000;
    let shapes = [
        format!("x = {}1{};", "[".repeat(n), "]".repeat(n)),
        format!("{}{}", "function f(){".repeat(n), "}".repeat(n)),
        format!("x = {}1;", "a => ".repeat(n)),
        format!("x = {}a;", "!".repeat(n)),
        format!("x = {}c;", "a ? b : ".repeat(n)),
        format!("{}1;", "a = ".repeat(n)),
        format!("x = a{};", " + a".repeat(n * 5)),
        format!("x = a{};", "\n  .then(f)".repeat(n)),
        format!("{}x;", "if (a) ".repeat(n)),
        format!("if (a) {{}}{}", " else if (a) {}".repeat(n)),
        format!("x = {}1{};", "`${".repeat(n), "}`".repeat(n)),
        (0..n).map(|i| format!("l{i}: ")).collect::<String>() + "x;",
    ];
    for src in &shapes {
        let d = run(&page(vec![inline(src)]));
        assert_eq!(d.warnings.len(), 1, "{:?} for {}", d.warnings, &src[..40]);
        assert_eq!(d.graph.parse_errors, 0);
    }
    // Inline handlers go through the same guard.
    let mut p = page(vec![]);
    p.handlers.push(handler("div", "click", &shapes[0]));
    let d = run(&p);
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    assert_eq!(d.paths.len(), 2);
}

#[test]
fn the_deepest_accepted_input_parses() {
    // 400 brackets is the most the prescan accepts. Debug builds use far more stack per level
    // than the wasm-release build the extension ships (measured by examples/wasm_probe.rs), so
    // this runs on a large stack; the point is that swc accepts it and nothing is refused.
    let src = format!("x = {}1{};", "(".repeat(400), ")".repeat(400));
    let d = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || estimate(&page(vec![inline(&src)]), &Calibration::default()))
        .expect("thread starts")
        .join()
        .expect("no panic");
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

#[test]
fn a_syntax_error_spoils_only_its_script() {
    let heavy = "for (let i = 0; i < 1e8; i++) { s = s + i; }";
    let d = run(&page(vec![
        inline("var s = 0;"),
        script(
            ScriptKind::Classic,
            Some("http://127.0.0.1:8080/broken.js"),
            "function (x { return }",
        ),
        inline(heavy),
    ]));
    assert_eq!(d.graph.parse_errors, 1);
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    assert!(d.warnings[0].contains("broken.js"), "{}", d.warnings[0]);
    assert!(d.warnings[0].contains("syntax error"), "{}", d.warnings[0]);
    // The third script's loop is still priced: ~1e8 iterations are hundreds of ms.
    assert!(d.paths[0].cpu_ms.p50 > 100.0, "{:?}", d.paths[0].cpu_ms);
}

#[test]
fn a_script_without_source_is_priced_by_size() {
    let mut p = page(vec![inline("var a = 1;")]);
    p.scripts.push(ScriptSource {
        url: Some("http://127.0.0.1:8080/vendor.js".into()),
        kind: ScriptKind::Async,
        source: None,
        bytes: 500_000,
    });
    let d = run(&p);
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    assert!(d.warnings[0].contains("vendor.js"));
    // 500 KB: ~5 ms to parse at default calibration, plus a wide guess for running it.
    assert!(d.paths[0].cpu_ms.p50 > 5.0 * 0.7, "{:?}", d.paths[0].cpu_ms);
    assert!(d.paths[0].cpu_ms.p90 > d.paths[0].cpu_ms.p10 * 10.0);
    assert!(d.paths[0].network_bytes.p50 >= 500_000.0);
}

#[test]
fn degenerate_input_stays_finite_and_ordered() {
    let sources = [
        "",
        "// only a comment",
        "'use strict'; \u{1F600}; var \u{00E9} = '\u{2028}';",
        "for (let i = 0; i < 1e308; i++) { for (let j = 0; j < 1e308; j++) { new Float64Array(1e300); } }",
        "for (let i = 0; i < 0 / 0; i++) {}",
        "const a = new Array(-5); const b = new Uint8Array(NaN);",
        "function f() { f(); } f();",
        "function a() { b(); } function b() { a(); } a();",
        "while (true) { while (true) { while (true) { while (true) { while (true) { x(); } } } } }",
        "x = `${`${`${y}`}`}`; /re/g.test(`a`); a?.b?.(c)?.[d];",
        "class A extends B { #p = 1; static { init(); } get x() { return super.x; } }",
        "label: for (;;) { break label; }",
        "import('./lazy.js'); new WebSocket('ws://x'); new SharedWorker(url);",
        "\u{FEFF}var bom = 1;",
        "a\n/b/g",
        "x = y / 2 / 3; z = '/'; w = /[/]/;",
        "`unterminated",
        "/* unterminated",
        "'unterminated\nnext()",
        ")))]]]}}}",
    ];
    for src in sources {
        for calibration in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-300, 1e300, 1e6] {
            let p = page(vec![inline(src), script(ScriptKind::Module, None, src)]);
            let d = estimate(
                &p,
                &Calibration {
                    units_per_ms: calibration,
                },
            );
            common::assert_well_formed(&d);
        }
    }
}

#[test]
fn recursion_counts_as_an_unknown_loop() {
    let mut p = page(vec![inline(
        "function walk(n) { for (let i = 0; i < 1e5; i++) { t += i; } if (n > 0) walk(n - 1); }
         let t = 0; walk(Number(location.hash));",
    )]);
    p.html_bytes = 0;
    let d = run(&p);
    let cpu = d.paths[0].cpu_ms;
    // Widened by the unknown depth: p90 is at least 100 times p10.
    assert!(cpu.p90 >= cpu.p10 * 100.0, "{cpu:?}");
    assert_eq!(d.graph.unresolved_calls, 0);
}

#[test]
fn same_input_same_output() {
    let p = PageSources {
        url: "https://shop.example/".into(),
        html_bytes: 40_000,
        scripts: vec![
            script(
                ScriptKind::Classic,
                Some("https://shop.example/js/shop.js"),
                SHOP,
            ),
            inline("window.addEventListener('load', () => setTimeout(() => fetch('/ping'), 100));"),
            script(
                ScriptKind::Module,
                Some("https://shop.example/js/m.js"),
                "new Worker(new URL('./w.js', import.meta.url));",
            ),
        ],
        handlers: vec![handler("form#f", "submit", "return validate(this)")],
        ..Default::default()
    };
    let first = estimate(&p, &Calibration::default());
    for _ in 0..3 {
        assert_eq!(estimate(&p, &Calibration::default()), first);
    }
}

#[test]
fn a_realistic_page_script_estimates_without_warnings() {
    let p = PageSources {
        url: "https://shop.example/catalogue".into(),
        html_bytes: 35_000,
        scripts: vec![script(
            ScriptKind::Defer,
            Some("https://shop.example/js/shop.js"),
            SHOP,
        )],
        ..Default::default()
    };
    let d = run(&p);
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(d.graph.parse_errors, 0);
    assert!(d.graph.functions >= 30, "{:?}", d.graph);
    // Load: HTML, parse of ~7 KB, the DOMContentLoaded init with its fetch and XHR.
    let load = &d.paths[0];
    assert!(
        load.cpu_ms.p50 > 0.1 && load.cpu_ms.p50 < 50.0,
        "{:?}",
        load.cpu_ms
    );
    assert!(
        load.network_bytes.p50 > SHOP.len() as f64,
        "{:?}",
        load.network_bytes
    );
    // The Float32Array(365) of the chart.
    assert!(load.memory_bytes.p50 > 365.0 * 4.0);
    let names: Vec<&str> = d.paths.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "load",
            "input #search",
            "change #sort",
            "click #more",
            "click #products",
            "click tab",
        ]
    );
    // A handful of calls go to parameters (`fn.apply`) and are honestly unresolved.
    assert!(d.graph.unresolved_calls <= 5, "{:?}", d.graph);
}

#[test]
fn a_megabyte_of_code_estimates() {
    // ~1 MB from the fixture repeated inside separate functions.
    let mut big = String::new();
    let mut i = 0;
    while big.len() < 1_000_000 {
        big.push_str(&format!("function chunk{i}() {{\n{SHOP}\n}}\n"));
        i += 1;
    }
    let d = run(&page(vec![inline(&big)]));
    // Its ~900 handlers exceed the path limit, which is the only thing worth a warning.
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    assert!(
        d.warnings[0].contains("more event handlers"),
        "{:?}",
        d.warnings
    );
    assert_eq!(d.paths.len(), 1 + 100);
    // Parse alone is ~10 ms per MB at default calibration.
    assert!(d.paths[0].cpu_ms.p50 > 5.0);
    assert!(d.graph.functions > 1_000);
}

#[test]
fn analysis_exposes_the_graph_for_tools() {
    let a = analyse(&page(vec![inline(SHOP)]));
    assert!(a.graph.graph.node_count() > 50);
    assert_eq!(a.collected.scripts.len(), 1);
}

/// A fixed-seed generator, so the test is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as usize
    }
}

#[test]
fn mangled_real_code_never_panics() {
    // Cut, duplicate and splice pieces of real code: half-open strings, comments, templates
    // and brackets in every combination the parser's error paths have to survive.
    let pieces = [
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        "`",
        "${",
        "'",
        "\"",
        "/",
        "/*",
        "*/",
        "//",
        "\n",
        "=>",
        "?.",
        "...",
        "#",
        "@",
        "\\",
        "\u{2028}",
        "<!--",
        "-->",
        "<",
        ">",
        "class ",
        "async ",
        "yield ",
        "await ",
        "import(",
        "new.target",
        "super",
        "0x",
        "1e",
        "1_",
        ".5",
        "\u{0}",
    ];
    let mut rng = Lcg(0x5eed);
    let rounds = std::env::var("MANGLE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(300);
    for round in 0..rounds {
        let mut src: Vec<char> = SHOP.chars().collect();
        for _ in 0..(1 + round % 8) {
            let at = rng.next() % (src.len() + 1);
            match rng.next() % 3 {
                0 => {
                    let piece = pieces[rng.next() % pieces.len()];
                    for (k, ch) in piece.chars().enumerate() {
                        src.insert(at + k, ch);
                    }
                }
                1 => {
                    let len = (rng.next() % 40).min(src.len() - at.min(src.len()));
                    src.drain(at.min(src.len())..at.min(src.len()) + len);
                }
                _ => {
                    let from = rng.next() % src.len().max(1);
                    let len = (rng.next() % 60).min(src.len().saturating_sub(from));
                    let chunk: Vec<char> = src[from..from + len].to_vec();
                    let at = at.min(src.len());
                    src.splice(at..at, chunk);
                }
            }
        }
        let text: String = src.into_iter().collect();
        let kind = if round % 2 == 0 {
            ScriptKind::Classic
        } else {
            ScriptKind::Module
        };
        let mut p = page(vec![script(
            kind,
            Some("http://127.0.0.1:8080/m.js"),
            &text,
        )]);
        let head: String = text.chars().take(200).collect();
        p.handlers.push(handler("a", "click", &head));
        common::assert_well_formed(&estimate(&p, &Calibration::default()));
    }
}

fn chain(links: usize) -> String {
    format!("if (a) {{}}{}", " else if (a) {}".repeat(links))
}

#[test]
fn many_long_else_if_chains_are_cut_off_by_the_budget_not_parsed_for_seconds() {
    // Ten blocks of 4,900 links each pass the per-block limit, but would cost swc ~1 s
    // natively (quadratic); the page budget stops after two of them.
    let scripts: Vec<ScriptSource> = (0..10)
        .map(|_| inline(&format!("function f() {{ {} }}", chain(4_900))))
        .collect();
    let d = run(&page(scripts));
    assert!(d.truncated);
    let cut: Vec<&String> = d
        .warnings
        .iter()
        .filter(|w| w.contains("truncated:") && w.contains("else if"))
        .collect();
    assert_eq!(cut.len(), 8, "{:?}", d.warnings);
    // What was cut is still priced, by size.
    assert!(d.paths[0].cpu_ms.p50 > 0.5, "{:?}", d.paths[0].cpu_ms);
}

#[test]
fn a_page_over_the_byte_budget_is_priced_by_size_with_a_truncated_warning() {
    let budget = Budget {
        parse_bytes: 1_000,
        script_bytes: 600,
        ..Budget::default()
    };
    let body = "x = x + 1;\n".repeat(50); // 550 bytes
    let big = "y = 2;\n".repeat(100); // 700 bytes
    let p = page(vec![
        inline(&body),
        inline(&big),
        inline(&body),
        inline("z = 1;"),
    ]);
    let d = estimate_within(&p, &Calibration::default(), budget);
    assert!(d.truncated);
    let labels: Vec<&str> = d
        .warnings
        .iter()
        .map(|w| w.split(':').next().unwrap_or(""))
        .collect();
    // The second is too big on its own; the third no longer fits; the small fourth still does.
    assert_eq!(
        labels,
        vec!["inline script #1", "inline script #2"],
        "{:?}",
        d.warnings
    );
    assert!(
        d.warnings
            .iter()
            .all(|w| w.contains("truncated:") && w.contains("priced by its size"))
    );
    // Within budget nothing is truncated.
    let d = estimate_within(&page(vec![inline(&body)]), &Calibration::default(), budget);
    assert!(!d.truncated && d.warnings.is_empty(), "{:?}", d.warnings);
}

#[test]
fn the_node_budget_stops_the_walk_and_prices_the_rest_by_size() {
    let budget = Budget {
        nodes: 1_000,
        ..Budget::default()
    };
    let src = "x = x + 1;\n".repeat(2_000);
    let p = page(vec![inline(&src), inline(&src)]);
    let d = estimate_within(&p, &Calibration::default(), budget);
    assert!(d.truncated);
    assert_eq!(d.warnings.len(), 2, "{:?}", d.warnings);
    assert!(
        d.warnings[0].starts_with("inline script #0: truncated:"),
        "{}",
        d.warnings[0]
    );
    assert!(
        d.warnings[1].contains("not analysed, truncated:"),
        "{}",
        d.warnings[1]
    );
    // The unwalked rest of the first script and the whole second are priced by size, so the
    // truncated estimate is no cheaper than the full one.
    let full = estimate(&p, &Calibration::default());
    assert!(!full.truncated);
    assert!(d.paths[0].cpu_ms.p50 >= full.paths[0].cpu_ms.p50 * 0.5);
}
