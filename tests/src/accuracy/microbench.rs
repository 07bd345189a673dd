//! The micro-benchmark set the cost model's unit weights are fitted on (`fit.rs`): small
//! pages, each exercising one or two operation classes at two sizes, written for this set and
//! not taken from the accuracy corpus (which stays held out for scoring). Every loop bound is
//! a literal, so the estimator knows each page's operation counts exactly and the fit sees
//! only the per-class cost, not the uncertainty of unknown bounds.
//!
//! Two sizes per benchmark let the fit see both V8's warm-up (interpreter, then baseline and
//! optimised code) and the steady state; sizes keep each page between a few and a few hundred
//! milliseconds here.

use super::corpus::Page;

/// One benchmark: a name, a script template (`{n}` is replaced by the size) and its sizes.
pub struct Bench {
    pub name: &'static str,
    pub script: &'static str,
    pub sizes: &'static [u64],
}

impl Bench {
    /// The pages of this benchmark, one per size, named `mb-NAME-SIZE`.
    pub fn pages(&self) -> Vec<Page> {
        self.sizes
            .iter()
            .map(|n| Page {
                name: Box::leak(format!("mb-{}-{n}", self.name).into_boxed_str()),
                libs: &[],
                script: self.script.replace("{n}", &n.to_string()),
                body: "",
            })
            .collect()
    }
}

/// The dead-code benchmark: `n` functions that are declared and never called, for the parse
/// and compile cost per byte.
pub fn dead_code(n: u64) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "function unused{i}(a, b) {{ if (a > b) {{ return a * b + {i}; }} const t = [a, b, {i}]; return t.length - a; }}\n"
        ));
    }
    s.push_str("document.title = 'dead';");
    s
}

pub const BENCHES: &[Bench] = &[
    Bench {
        name: "int-arith",
        script: "let a = 1, b = 2;\nfor (let i = 0; i < {n}; i++) { a = (a + b * i) | 0; b = (b ^ a) + 1; }\ndocument.title = String(a + b);",
        sizes: &[300_000, 10_000_000],
    },
    Bench {
        name: "float-arith",
        script: "let x = 0.5, y = 1.5;\nfor (let i = 0; i < {n}; i++) { x = x * 0.999 + y * 0.001; y = y - x * 0.0001; }\ndocument.title = String(x + y);",
        sizes: &[300_000, 10_000_000],
    },
    Bench {
        name: "modulo",
        script: "let s = 0;\nfor (let i = 1; i < {n}; i++) { s = (s + i % 7 + (s % 13)) | 0; }\ndocument.title = String(s);",
        sizes: &[300_000, 5_000_000],
    },
    Bench {
        name: "float-divide",
        script: "let s = 0;\nfor (let i = 1; i < {n}; i++) { s += 1 / i + s / (i + 1); }\ndocument.title = String(s);",
        sizes: &[300_000, 5_000_000],
    },
    Bench {
        name: "power",
        script: "let s = 0;\nfor (let i = 0; i < {n}; i++) { s += i ** 0.5; }\ndocument.title = String(s);",
        sizes: &[100_000, 2_000_000],
    },
    Bench {
        name: "props",
        script: "const o = { a: 1, b: 2, c: 3 };\nfor (let i = 0; i < {n}; i++) { o.a = o.b + o.c; o.c = (o.a - i) & 1023; o.b = o.c + 1; }\ndocument.title = String(o.a);",
        sizes: &[300_000, 5_000_000],
    },
    Bench {
        name: "typed-index",
        script: "const t = new Int32Array(4096);\nfor (let i = 0; i < {n}; i++) { t[i & 4095] = t[(i + 7) & 4095] + i; }\ndocument.title = String(t[5]);",
        sizes: &[300_000, 10_000_000],
    },
    Bench {
        name: "nested-grid",
        script: "const w = 512;\nconst g = new Float64Array(w * w);\nlet s = 0;\nfor (let k = 0; k < {n}; k++) { for (let y = 1; y < 511; y++) { for (let x = 1; x < 511; x++) { g[y * w + x] = (g[y * w + x - 1] + g[(y - 1) * w + x] + k) * 0.5; } } s += g[1000]; }\ndocument.title = String(s);",
        sizes: &[1, 20],
    },
    Bench {
        name: "calls",
        script: "function step(x, i) { return (x * 31 + i) & 65535; }\nlet s = 0;\nfor (let i = 0; i < {n}; i++) { s = step(s, i); }\ndocument.title = String(s);",
        sizes: &[300_000, 5_000_000],
    },
    Bench {
        name: "methods",
        script: "class Counter { constructor() { this.v = 0; } bump(i) { this.v = (this.v + i) & 65535; return this; } }\nconst c = new Counter();\nfor (let i = 0; i < {n}; i++) { c.bump(i).bump(1); }\ndocument.title = String(c.v);",
        sizes: &[300_000, 5_000_000],
    },
    Bench {
        name: "closures",
        script: "let s = 0;\nfor (let i = 0; i < {n}; i++) { const f = (k) => k + i; s = (s + f(1)) & 65535; }\ndocument.title = String(s);",
        sizes: &[200_000, 3_000_000],
    },
    Bench {
        name: "objects",
        script: "const keep = [];\nfor (let i = 0; i < {n}; i++) { const p = { x: i, y: i + 1, z: i * 2 }; if ((i & 1023) === 0) keep.push(p); }\ndocument.title = String(keep.length);",
        sizes: &[200_000, 3_000_000],
    },
    Bench {
        name: "push",
        script: "const a = [];\nfor (let i = 0; i < {n}; i++) { a.push(i & 255); }\ndocument.title = String(a.length);",
        sizes: &[200_000, 3_000_000],
    },
    Bench {
        name: "alloc-typed",
        script: "const a = new Float32Array({n});\nconst b = new Uint8Array({n});\na[1] = 2; b[1] = 3;\ndocument.title = String(a[1] + b[1]);",
        sizes: &[4_000_000, 40_000_000],
    },
    Bench {
        name: "concat",
        script: "let s = '';\nfor (let i = 0; i < {n}; i++) { s += 'ab' + (i & 15); }\ndocument.title = String(s.length);",
        sizes: &[50_000, 500_000],
    },
    Bench {
        name: "template",
        script: "let out = '';\nfor (let i = 0; i < {n}; i++) { out = `${i}:${out.length & 7}`; }\ndocument.title = out;",
        sizes: &[100_000, 1_000_000],
    },
    Bench {
        name: "stringify",
        script: "const rows = [];\nfor (let i = 0; i < {n}; i++) { rows.push([i, i * 2, 'k']); }\nconst text = JSON.stringify(rows);\ndocument.title = String(text.length);",
        sizes: &[20_000, 200_000],
    },
    Bench {
        name: "parse-json",
        script: "let text = '[';\nfor (let i = 0; i < {n}; i++) { text += '{\"a\":' + i + ',\"b\":\"v\"},'; }\ntext += '0]';\nconst back = JSON.parse(text);\ndocument.title = String(back.length);",
        sizes: &[20_000, 200_000],
    },
    Bench {
        name: "sort-default",
        script: "const a = [];\nfor (let i = 0; i < {n}; i++) { a.push((i * 7907) % 10007); }\na.sort();\ndocument.title = String(a[0]);",
        sizes: &[20_000, 200_000],
    },
    Bench {
        name: "math",
        script: "let s = 0;\nfor (let i = 0; i < {n}; i++) { s += Math.sqrt(i) + Math.max(i & 7, 3) + Math.abs(s & 3); }\ndocument.title = String(s);",
        sizes: &[300_000, 5_000_000],
    },
    Bench {
        name: "regex",
        script: "const re = /a(b+)c/;\nlet c = 0;\nfor (let i = 0; i < {n}; i++) { if (re.test('xxabbbc' + (i & 7))) c++; }\ndocument.title = String(c);",
        sizes: &[50_000, 500_000],
    },
    Bench {
        name: "string-methods",
        script: "let c = 0;\nconst words = ['alpha', 'beta', 'gamma', 'delta'];\nfor (let i = 0; i < {n}; i++) { c += words[i & 3].toUpperCase().padStart(8, '-').length; }\ndocument.title = String(c);",
        sizes: &[50_000, 500_000],
    },
    Bench {
        name: "slice-join",
        script: "const base = [];\nfor (let i = 0; i < 1000; i++) { base.push(i); }\nlet t = 0;\nfor (let k = 0; k < {n}; k++) { t += base.slice(0).length + base.indexOf(999); }\ndocument.title = String(t);",
        sizes: &[2_000, 20_000],
    },
    Bench {
        name: "dom-build",
        script: "const host = document.getElementById('host');\nfor (let i = 0; i < {n}; i++) { const e = document.createElement('p'); e.setAttribute('data-i', String(i)); host.appendChild(e); }\ndocument.title = String(host.childElementCount);",
        sizes: &[1_000, 10_000],
    },
    Bench {
        name: "markup",
        script: "let rows = '';\nfor (let i = 0; i < {n}; i++) { rows += '<tr><td>' + i + '</td><td>cell</td></tr>'; }\ndocument.getElementById('host').innerHTML = '<table>' + rows + '</table>';",
        sizes: &[1_000, 10_000],
    },
    Bench {
        name: "queries",
        script: "let c = 0;\nfor (let i = 0; i < {n}; i++) { c += document.querySelectorAll('div').length + (document.getElementById('host') ? 1 : 0); }\ndocument.title = String(c);",
        sizes: &[20_000, 200_000],
    },
];

/// Every benchmark page, plus the dead-code pages.
pub fn pages() -> Vec<Page> {
    let mut out: Vec<Page> = BENCHES.iter().flat_map(Bench::pages).collect();
    for n in [2_000u64, 10_000] {
        out.push(Page {
            name: Box::leak(format!("mb-dead-code-{n}").into_boxed_str()),
            libs: &[],
            script: dead_code(n),
            body: "",
        });
    }
    out
}
