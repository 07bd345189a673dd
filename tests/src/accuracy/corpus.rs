//! The accuracy corpus: pages of varied intensity built from real npm libraries (installed at
//! run time, never committed) and small page scripts. Some do a few milliseconds of work, some
//! seconds; some load libraries and never use them; some register handlers that the load never
//! triggers (their cost must not count on the load path).
//!
//! Every page includes the same prelude: `window.__pending` counts work still scheduled
//! (timers), so the measurement waits for it to drain after the load event.

/// npm packages the corpus uses, and where each library file lands under `/lib/`.
pub const PACKAGES: &[&str] = &[
    "jquery@3.7.1",
    "lodash@4.17.21",
    "moment@2.30.1",
    "d3@7.8.5",
    "chart.js@4.4.1",
    "three@0.149.0",
    "react@18.3.1",
    "react-dom@18.3.1",
];

/// (file under node_modules, name under /lib/).
pub const LIB_FILES: &[(&str, &str)] = &[
    ("jquery/dist/jquery.min.js", "jquery.min.js"),
    ("jquery/dist/jquery.js", "jquery.js"),
    ("lodash/lodash.min.js", "lodash.min.js"),
    ("moment/min/moment.min.js", "moment.min.js"),
    ("d3/dist/d3.min.js", "d3.min.js"),
    ("chart.js/dist/chart.umd.js", "chart.umd.js"),
    ("three/build/three.min.js", "three.min.js"),
    (
        "react/umd/react.production.min.js",
        "react.production.min.js",
    ),
    (
        "react-dom/umd/react-dom.production.min.js",
        "react-dom.production.min.js",
    ),
    // Not among the profiled builds by hash: recognised by banner, or analysed as code.
    ("d3/dist/d3.js", "d3.js"),
];

pub struct Page {
    pub name: &'static str,
    /// Library files (names under /lib/) loaded in order before the page's own script.
    pub libs: &'static [&'static str],
    /// The page's own script (inline).
    pub script: String,
    /// Extra body markup.
    pub body: &'static str,
}

const PRELUDE: &str = "<script>window.__pending = 0;</script>";

impl Page {
    pub fn html(&self) -> String {
        let libs: String = self
            .libs
            .iter()
            .map(|l| format!("<script src=\"/lib/{l}\"></script>\n"))
            .collect();
        format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>\n{PRELUDE}\n{libs}</head>\n<body>\n<div id=\"host\"></div><canvas id=\"chart\" width=\"400\" height=\"200\"></canvas>\n{}\n<script>\n{}\n</script>\n</body></html>\n",
            self.name, self.body, self.script
        )
    }
}

fn p(name: &'static str, libs: &'static [&'static str], script: &str) -> Page {
    Page {
        name,
        libs,
        script: script.to_string(),
        body: "",
    }
}

fn loop_page(name: &'static str, n: u64) -> Page {
    p(
        name,
        &[],
        &format!(
            "let acc = 0;\nfor (let i = 0; i < {n}; i++) {{ acc = (acc + i * 7) % 1000003; }}\ndocument.title = String(acc);"
        ),
    )
}

/// The corpus, 30 pages.
pub fn pages() -> Vec<Page> {
    vec![
        p("empty", &[], "document.title = 'empty';"),
        loop_page("loop-1e5", 100_000),
        loop_page("loop-1e6", 1_000_000),
        loop_page("loop-1e7", 10_000_000),
        loop_page("loop-1e8", 100_000_000),
        p(
            "nested-loops",
            &[],
            "let s = 0;\nfor (let i = 0; i < 2000; i++) { for (let j = 0; j < 2000; j++) { s += i ^ j; } }\ndocument.title = String(s);",
        ),
        p(
            "array-push",
            &[],
            "const a = [];\nfor (let i = 0; i < 1000000; i++) { a.push(i * 2); }\ndocument.title = String(a.length);",
        ),
        p(
            "typed-array",
            &[],
            "const N = 5000000;\nconst a = new Float64Array(N);\nfor (let i = 0; i < N; i++) { a[i] = i * 0.5; }\ndocument.title = String(a[N - 1]);",
        ),
        p(
            "string-build",
            &[],
            "let s = '';\nfor (let i = 0; i < 200000; i++) { s += 'x' + i; }\ndocument.title = String(s.length);",
        ),
        p(
            "json-roundtrip",
            &[],
            "const rows = [];\nfor (let i = 0; i < 100000; i++) { rows.push({ id: i, name: 'row ' + i }); }\nconst back = JSON.parse(JSON.stringify(rows));\ndocument.title = String(back.length);",
        ),
        p(
            "sort-numbers",
            &[],
            "const a = [];\nfor (let i = 0; i < 300000; i++) { a.push((i * 7919) % 100003); }\na.sort((x, y) => x - y);\ndocument.title = String(a[0]);",
        ),
        p(
            "dom-create",
            &[],
            "const host = document.getElementById('host');\nfor (let i = 0; i < 5000; i++) { const d = document.createElement('div'); d.textContent = 'item ' + i; host.appendChild(d); }",
        ),
        p(
            "inner-html",
            &[],
            "let html = '';\nfor (let i = 0; i < 5000; i++) { html += '<li>row ' + i + '</li>'; }\ndocument.getElementById('host').innerHTML = '<ul>' + html + '</ul>';",
        ),
        p(
            "recursion-fib",
            &[],
            "function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }\ndocument.title = String(fib(27));",
        ),
        p(
            "timer-work",
            &[],
            "window.__pending++;\nsetTimeout(() => { let s = 0; for (let i = 0; i < 20000000; i++) { s += i % 3; } document.title = String(s); window.__pending--; }, 50);",
        ),
        p(
            "click-not-triggered",
            &[],
            "document.getElementById('host').addEventListener('click', () => { let s = 0; for (let i = 0; i < 500000000; i++) { s += i; } document.title = String(s); });",
        ),
        p(
            "jquery-unused",
            &["jquery.min.js"],
            "document.title = 'jq';",
        ),
        p(
            "jquery-dev-unused",
            &["jquery.js"],
            "document.title = 'jq dev';",
        ),
        p(
            "lodash-unused",
            &["lodash.min.js"],
            "document.title = 'lodash';",
        ),
        p(
            "moment-unused",
            &["moment.min.js"],
            "document.title = 'moment';",
        ),
        p("d3-unused", &["d3.min.js"], "document.title = 'd3';"),
        p("d3-dev-unused", &["d3.js"], "document.title = 'd3 dev';"),
        p(
            "chart-unused",
            &["chart.umd.js"],
            "document.title = 'chart';",
        ),
        p(
            "three-unused",
            &["three.min.js"],
            "document.title = 'three';",
        ),
        p(
            "react-unused",
            &["react.production.min.js", "react-dom.production.min.js"],
            "document.title = 'react';",
        ),
        p(
            "all-libraries",
            &[
                "jquery.min.js",
                "lodash.min.js",
                "moment.min.js",
                "d3.min.js",
                "chart.umd.js",
                "three.min.js",
                "react.production.min.js",
                "react-dom.production.min.js",
            ],
            "document.title = 'all';",
        ),
        p(
            "jquery-work",
            &["jquery.min.js"],
            "const host = $('#host');\nlet html = '';\nfor (let i = 0; i < 3000; i++) { html += '<div class=\"item\">item ' + i + '</div>'; }\nhost.html(html);\n$('.item').addClass('on');",
        ),
        p(
            "lodash-work",
            &["lodash.min.js"],
            "const rows = [];\nfor (let i = 0; i < 100000; i++) { rows.push({ id: i, score: (i * 7919) % 1000 }); }\nconst sorted = _.sortBy(rows, 'score');\nconst groups = _.groupBy(sorted, (r) => r.score % 10);\ndocument.title = String(Object.keys(groups).length);",
        ),
        p(
            "moment-work",
            &["moment.min.js"],
            "let out = '';\nfor (let i = 0; i < 5000; i++) { out = moment('2024-03-01T10:00:00Z').add(i, 'minutes').format('YYYY-MM-DD HH:mm'); }\ndocument.title = out;",
        ),
        p(
            "d3-work",
            &["d3.min.js"],
            "const nums = [];\nfor (let i = 0; i < 3000; i++) { nums.push(i); }\nd3.select('#host').selectAll('div').data(nums).enter().append('div').text((d) => d);",
        ),
        p(
            "chart-work",
            &["chart.umd.js"],
            "const nums = [];\nfor (let i = 0; i < 2000; i++) { nums.push((i * 7919) % 1000); }\nnew Chart(document.getElementById('chart'), { type: 'line', options: { animation: false, responsive: false }, data: { labels: nums, datasets: [{ data: nums }] } });",
        ),
        p(
            "react-work",
            &["react.production.min.js", "react-dom.production.min.js"],
            "const items = [];\nfor (let i = 0; i < 3000; i++) { items.push(React.createElement('li', { key: i }, 'row ' + i)); }\nReactDOM.flushSync(() => ReactDOM.createRoot(document.getElementById('host')).render(React.createElement('ul', null, items)));",
        ),
    ]
}
