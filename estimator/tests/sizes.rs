//! Costly builtins and library entry points priced by the size of what they are handed, when
//! the page builds it in counted loops (`rows.push(...)`, `html += ...`).

mod common;

use common::{inline, page, run, run_hand_set};

/// The load's median CPU at the hand-set unit costs: these tests are about sizes, which the
/// fitted weights and their warm-up (a constant for the first trips) would only blur.
fn load_ms(src: &str) -> f64 {
    run_hand_set(&page(vec![inline(src)])).paths[0].cpu_ms.p50
}

#[test]
fn sorting_a_pushed_array_costs_n_log_n_of_its_length() {
    let sort = |n: u32| {
        load_ms(&format!(
            "const rows = [];\nfor (let i = 0; i < {n}; i++) {{ rows.push(i % 7); }}\nrows.sort((a, b) => a - b);"
        ))
    };
    let (small, big) = (sort(10_000), sort(100_000));
    let ratio = big / small;
    // Ten times the items, a little more than ten times the work (n log n plus the loop).
    assert!(ratio > 10.0 && ratio < 13.5, "{small} -> {big}: {ratio}");
    assert!(big > 50.0, "{big}");
}

#[test]
fn json_and_html_sinks_scale_with_what_they_are_handed() {
    let json = |n: u32| {
        load_ms(&format!(
            "const rows = [];\nfor (let i = 0; i < {n}; i++) {{ rows.push({{ id: i }}); }}\nconst text = JSON.stringify(rows);"
        ))
    };
    let ratio = json(100_000) / json(10_000);
    assert!(ratio > 8.0 && ratio < 11.0, "{ratio}");
    let html = load_ms(
        "let html = '';\nfor (let i = 0; i < 5000; i++) { html += '<li>' + i + '</li>'; }\ndocument.getElementById('list').innerHTML = html;",
    );
    // 5,000 elements parsed and rendered: well over 100 ms at the default calibration.
    assert!(html > 100.0, "{html}");
}

#[test]
fn a_size_the_loops_do_not_give_keeps_the_unknown_size_guess() {
    let known = load_ms(
        "const rows = [];\nfor (let i = 0; i < 100000; i++) { rows.push(i); }\nrows.sort();",
    );
    let unknown = load_ms("const rows = [];\nwhile (more()) { rows.push(next()); }\nrows.sort();");
    assert!(unknown < known / 10.0, "{unknown} vs {known}");
    // Pushing elsewhere (a function called from anywhere) adds one item, not a loop's worth.
    let elsewhere = load_ms(
        "const rows = [];\nfunction add(x) { rows.push(x); }\nfor (let i = 0; i < 100000; i++) { add(i); }\nrows.sort();",
    );
    assert!(elsewhere < known / 10.0, "{elsewhere} vs {known}");
}

#[test]
fn a_library_entry_point_gets_the_size_of_its_argument() {
    let lodash = "/**\n * @license\n * Lodash <https://lodash.com/>\n */\n;(function(){}());";
    let sort_by = |n: u32| {
        let d = run(&page(vec![
            inline(lodash),
            inline(&format!(
                "const rows = [];\nfor (let i = 0; i < {n}; i++) {{ rows.push({{ score: i % 100 }}); }}\nconst s = _.sortBy(rows, 'score');"
            )),
        ]));
        d.paths[0].cpu_ms.p50
    };
    let (small, big) = (sort_by(1_000), sort_by(100_000));
    // The 99,000 extra rows cost at least their measured per-item price (the model's spread
    // can only widen it).
    let per_item = foresight_estimator::libraries::PROFILES
        .iter()
        .find(|p| p.name == "lodash")
        .and_then(|p| p.entry("sortBy"))
        .map_or(0.0, |e| e.units_per_item);
    assert!(per_item > 0.0);
    let expected_ms = 99_000.0 * per_item / 1e6;
    assert!(
        big - small > 0.7 * expected_ms,
        "{small} -> {big}, expected +{expected_ms}"
    );
}

#[test]
fn a_size_reaches_a_library_entry_point_through_the_value_its_argument_builds() {
    // `render(React.createElement('ul', null, items))` renders as many rows as `items` has:
    // the size of a name handed over inside a call, `new`, object or array literal argument
    // counts when the argument is not a plain name.
    let react = "/**\n * @license React\n * react-dom.production.min.js\n */\n(function(){})();";
    let render = |n: u32| {
        run(&page(vec![
            inline(react),
            inline(&format!(
                "const items = [];\nfor (let i = 0; i < {n}; i++) {{ items.push(React.createElement('li', {{ key: i }}, 'row ' + i)); }}\nReactDOM.createRoot(document.getElementById('host')).render(React.createElement('ul', null, items));"
            )),
        ]))
        .paths[0]
            .cpu_ms
            .p50
    };
    let per_item = foresight_estimator::libraries::PROFILES
        .iter()
        .find(|p| p.name == "react")
        .and_then(|p| p.entry("render"))
        .map_or(0.0, |e| e.units_per_item);
    assert!(per_item > 0.0);
    let (small, big) = (render(100), render(5_100));
    let expected_ms = 5_000.0 * per_item / 1e6;
    assert!(
        big - small > 0.7 * expected_ms,
        "{small} -> {big}, expected +{expected_ms}"
    );
    // A chart configured with `labels: nums` draws `nums`.
    let chart = "/*!\n * Chart.js v4.4.1\n * https://www.chartjs.org\n */\n(function(){})();";
    let draw = |n: u32| {
        run(&page(vec![
            inline(chart),
            inline(&format!(
                "const nums = [];\nfor (let i = 0; i < {n}; i++) {{ nums.push(i); }}\nnew Chart(document.getElementById('c'), {{ type: 'line', data: {{ labels: nums, datasets: [{{ data: nums }}] }} }});"
            )),
        ]))
        .paths[0]
            .cpu_ms
            .p50
    };
    assert!(
        draw(20_000) > 2.0 * draw(10),
        "{} vs {}",
        draw(20_000),
        draw(10)
    );
}

#[test]
fn an_unsized_nested_argument_keeps_the_unknown_size_guess() {
    // Nothing the loops grew is nested in the argument: the size stays the unknown guess, the
    // same as for an argument the syntax does not name at all.
    let react = "/**\n * @license React\n * react-dom.production.min.js\n */\n(function(){})();";
    let render = |arg: &str| {
        run(&page(vec![
            inline(react),
            inline(&format!(
                "const items = window.rows;\nReactDOM.createRoot(document.getElementById('host')).render({arg});"
            )),
        ]))
        .paths[0]
            .cpu_ms
    };
    let nested = render("React.createElement('ul', null, items)");
    let opaque = render("window.app");
    assert!(
        (nested.p50 / opaque.p50 - 1.0).abs() < 0.05,
        "{nested:?} vs {opaque:?}"
    );
}

#[test]
fn a_grown_size_flows_through_a_call_into_the_callees_loops() {
    // `render(items)` loops over its parameter once per item of what each call hands over:
    // 30,000 items cost about 100 times what 300 do, in a for-of and in a forEach alike.
    let page_with = |body: &str, n: u32| {
        load_ms(&format!(
            "function render(rows) {{ let s = 0; {body} return s; }}\nconst items = [];\nfor (let i = 0; i < {n}; i++) {{ items.push(i); }}\nrender(items);"
        ))
    };
    for body in [
        "for (const r of rows) { for (let k = 0; k < 100; k++) { s += r * k; } }",
        "rows.forEach((r) => { for (let k = 0; k < 100; k++) { s += r * k; } });",
    ] {
        let (small, big) = (page_with(body, 300), page_with(body, 30_000));
        assert!(
            big / small > 50.0 && big / small < 150.0,
            "{body}: {small} -> {big}"
        );
    }
    // Two calls with different sizes each get their own.
    let two = load_ms(
        "function render(rows) { let s = 0; for (const r of rows) { for (let k = 0; k < 100; k++) { s += r * k; } } return s; }\nconst a = [], b = [];\nfor (let i = 0; i < 30000; i++) { a.push(i); }\nfor (let i = 0; i < 300; i++) { b.push(i); }\nrender(a);\nrender(b);",
    );
    let one = page_with(
        "for (const r of rows) { for (let k = 0; k < 100; k++) { s += r * k; } }",
        30_000,
    );
    assert!(two / one > 0.95 && two / one < 1.1, "{two} vs {one}");
    // A top-level loop over a grown array runs once per item too.
    let top = |n: u32| {
        load_ms(&format!(
            "const items = [];\nfor (let i = 0; i < {n}; i++) {{ items.push(i); }}\nlet s = 0;\nfor (const r of items) {{ for (let k = 0; k < 100; k++) {{ s += r * k; }} }}"
        ))
    };
    let ratio = top(30_000) / top(300);
    assert!(ratio > 50.0 && ratio < 150.0, "{ratio}");
}

#[test]
fn a_callee_handed_an_unsized_value_keeps_the_unknown_trip_count() {
    // Nothing says how many rows `window.rows` has: the same as a loop of unknown length.
    let handed = load_ms(
        "function render(rows) { let s = 0; for (const r of rows) { for (let k = 0; k < 100; k++) { s += r * k; } } return s; }\nrender(window.rows);",
    );
    let unknown = load_ms(
        "function render(rows) { let s = 0; while (s < rows) { for (let k = 0; k < 100; k++) { s += k; } } return s; }\nrender(window.rows);",
    );
    assert!(
        handed / unknown > 0.5 && handed / unknown < 2.0,
        "{handed} vs {unknown}"
    );
}
