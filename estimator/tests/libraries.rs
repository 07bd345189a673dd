//! Recognised libraries: priced from their measured profiles instead of parsed, and page code
//! calling them resolves to their measured entry points.

mod common;

use common::{inline, page, run, script};
use foresight_estimator::analyse;
use foresight_estimator::graph::Node;
use foresight_estimator::ir::ScriptStatus;
use foresight_estimator::libraries::PROFILES;
use foresight_estimator::resolve::Target;
use foresight_shared::protocol::demand::ScriptKind;

/// A jQuery build as far as the recogniser can tell: its banner, then code it never parses
/// (deliberately not even valid JavaScript).
const FAKE_JQUERY: &str = "/*! jQuery v3.6.4 | (c) OpenJS Foundation and other contributors */\n\
                           !function(e,t){ this is not parsed ((((";
const FAKE_LODASH: &str =
    "/**\n * @license\n * Lodash <https://lodash.com/>\n */\n;(function(){ var _ = {}; }());";

const PAGE_CODE: &str = r#"
    const rows = [];
    document.getElementById('sort').addEventListener('click', () => {
        const sorted = _.sortBy(rows, 'score');
        $('.row').addClass('sorted');
        jQuery('#list').html(sorted.join(''));
    });
"#;

fn lib_page() -> foresight_shared::protocol::demand::PageSources {
    page(vec![
        script(
            ScriptKind::Classic,
            Some("http://127.0.0.1:8080/jquery.min.js"),
            FAKE_JQUERY,
        ),
        script(
            ScriptKind::Classic,
            Some("http://127.0.0.1:8080/lodash.js"),
            FAKE_LODASH,
        ),
        inline(PAGE_CODE),
    ])
}

#[test]
fn recognised_libraries_are_not_parsed_and_bind_their_globals() {
    let a = analyse(&lib_page());
    let c = &a.collected;
    assert_eq!(c.scripts[0], ScriptStatus::Library(0));
    assert_eq!(c.scripts[1], ScriptStatus::Library(1));
    assert_eq!(c.libraries[0].profile.name, "jquery");
    assert_eq!(c.libraries[1].profile.name, "lodash");
    // The broken "jQuery" body was never handed to swc.
    assert_eq!(c.parse_errors, 0);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // Every call in the page code resolves: the library calls to measured entry points.
    let entries: Vec<&str> = a
        .resolution
        .sites
        .iter()
        .filter_map(|t| match t {
            Target::Library { entry, .. } => Some(entry.map_or("?", |e| e.name)),
            _ => None,
        })
        .collect();
    assert_eq!(entries, vec!["sortBy", "$", "addClass", "$", "html"]);
    assert_eq!(a.resolution.unresolved_calls, 0);
    let libs = a
        .graph
        .graph
        .node_weights()
        .filter(|n| matches!(n, Node::Library(_)))
        .count();
    assert_eq!(libs, 2);
}

#[test]
fn a_library_is_priced_from_its_profile_whatever_its_code() {
    let jquery = PROFILES
        .iter()
        .find(|p| p.name == "jquery")
        .expect("jquery profile");
    // Two builds of the same size but different code cost the same to load.
    let body = |filler: &str| {
        let mut s = String::from("/*! jQuery v3.7.1 | (c) OpenJS Foundation */\n");
        while s.len() < jquery.bytes as usize {
            s.push_str(filler);
        }
        s.truncate(jquery.bytes as usize);
        s
    };
    let light = run(&page(vec![inline(&body("var a = 1;\n"))]));
    let heavy = run(&page(vec![inline(&body("for(;;){}\n"))]));
    assert_eq!(light.paths[0].cpu_ms, heavy.paths[0].cpu_ms);
    // At the measuring machine's speed the load is the measured one (within the spread).
    let ms = jquery.load_units / 1e6;
    let p50 = light.paths[0].cpu_ms.p50;
    assert!(p50 >= ms && p50 < ms * 1.2 + 1.0, "{p50} vs measured {ms}");
}

#[test]
fn calls_into_a_library_cost_its_measured_entry_points() {
    let d = run(&lib_page());
    let click = &d.paths[1];
    assert_eq!(click.target.as_deref(), Some("#sort"));
    // sortBy, two $() selections, addClass and html on an unknown number of items: more
    // than the bare dispatch, bounded by the profiles (each entry at the unknown size's p90
    // with its first call, widened by the measurement's and the model's spreads).
    let entry = |lib: &str, name: &str| {
        PROFILES
            .iter()
            .find(|p| p.name == lib)
            .and_then(|p| p.entry(name))
            .map_or(0.0, |e| {
                e.fixed_units
                    + e.units_per_item * foresight_estimator::libraries::UNKNOWN_ITEMS.p90
                    + e.first_call_units
            })
    };
    let bound_ms = (entry("lodash", "sortBy")
        + 2.0 * entry("jquery", "$")
        + entry("jquery", "addClass")
        + entry("jquery", "html"))
        * 1.3
        * 6.0
        / 1e6;
    assert!(click.cpu_ms.p50 > 0.001, "{:?}", click.cpu_ms);
    assert!(
        click.cpu_ms.p90 < bound_ms,
        "{:?} vs {bound_ms}",
        click.cpu_ms
    );
    assert_eq!(d.graph.unresolved_calls, 0);
}

#[test]
fn module_builds_and_lookalikes_are_parsed_as_usual() {
    let module = "/** Copyright 2010-2023 Three.js Authors */\nexport const REVISION = '149';";
    let a = analyse(&page(vec![script(ScriptKind::Module, None, module)]));
    assert!(matches!(a.collected.scripts[0], ScriptStatus::Parsed(_)));
    assert!(a.collected.libraries.is_empty());
}

#[test]
fn an_entry_points_first_call_is_charged_once_however_often_it_runs() {
    // A library's functions compile lazily, on their first call: a page that builds one
    // chart pays mostly that, and a loop of a thousand pays it once, not a thousand times.
    let chart = PROFILES
        .iter()
        .find(|p| p.name == "chart.js")
        .and_then(|p| p.entry("Chart"))
        .expect("Chart profile");
    assert!(chart.first_call_units > 0.0, "{chart:?}");
    let banner = "/*!\n * Chart.js v4.4.1\n * https://www.chartjs.org\n */\n(function(){})();";
    let ms = |calls: u32| {
        run(&page(vec![
            inline(banner),
            inline(&format!(
                "const el = document.getElementById('c');\nfor (let i = 0; i < {calls}; i++) {{ new Chart(el, {{ type: 'line' }}); }}"
            )),
        ]))
        .paths[0]
            .cpu_ms
            .p50
    };
    let (none, one, many) = (ms(0), ms(1), ms(1_000));
    let warm = chart
        .cost(foresight_estimator::libraries::UNKNOWN_ITEMS)
        .p50
        / 1e6;
    let first = chart.first_call_units / 1e6;
    // One call: a warm call and the first-call extra (the model's spread only widens it).
    assert!(
        one - none > 0.8 * (warm + first),
        "{none} -> {one}; {warm} + {first}"
    );
    // 999 more: warm calls only.
    let more = (many - one) / (999.0 * warm);
    assert!(more > 0.5 && more < 2.0, "{one} -> {many}: {more}");
}
