// Measures the cost profiles of widely used JavaScript libraries in headless Chromium and
// writes them as the estimator's table (estimator/src/libraries/profiles.rs).
//
//   node tools/lib-profiles/measure.mjs [--chromium PATH] [--runs N] [--out FILE]
//
// Reproducible: the libraries are installed from npm at pinned versions into an ignored
// folder (target/lib-profiles; third-party code is never committed), each measurement runs
// in a fresh headless Chromium (`--dump-dom` of a file:// page that times itself and writes
// JSON into its body), repeated `--runs` times, median kept. Every millisecond is stored as
// work units (ms times this machine's units per ms, from the estimator's calibration kernel
// timed on the same clock): a device's own calibration turns them back into its ms.
//
// Per library: the cost of loading it and the JS heap it leaves, measured as pages load it
// (`<script src>` over loopback HTTP, compiled while streaming) in main-thread CPU time over
// CDP by `foresight-accuracy --loads-only` (converted with the kernel timed the same way, in
// the same browser); and for its main entry points the time per call at several input sizes
// n (timed in the page, with the style and layout they leave pending), fitted as fixed +
// per_item * n by least squares, and what their first call costs beyond a warm one (V8
// compiles a library's functions lazily, when first called: a page that calls `new Chart`
// once pays mostly that). The entry points are converted with the kernel timed in the
// same page, between them: a page clock counts whatever else the machine does, and only a
// kernel timed at the same moment under the same load turns it into this machine's units.
// (Timing the kernel in a page of its own, at another moment, once gave 1.45M units per ms
// against 7.16M for the loads: entry points priced 5x too low on a busy machine.)

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const chromium = opt("--chromium", process.env.FORESIGHT_CHROMIUM ?? "/usr/lib/chromium/chromium");
const runs = Number(opt("--runs", "5"));
const out = opt("--out", join(root, "estimator/src/libraries/profiles.rs"));
const work = join(root, "target/lib-profiles");

// Input sizes each entry point is timed at.
const SIZES = [10, 100, 1000, 5000];

// name, npm package@version, file inside it, the globals it defines, and the entry points:
// [entry name as the page calls it, setup, run, mode]: `setup` runs untimed, `run` is timed
// at each size n. Mode "fresh": the run needs its setup again before each repetition;
// "per-call": the run makes n calls, and the profile is the cost of one (a fixed cost).
const LIBRARIES = [
  {
    name: "jquery",
    pkg: "jquery@3.7.1",
    file: "dist/jquery.min.js",
    globals: ["$", "jQuery"],
    entries: [
      // $(selector) over a page with n matching elements.
      ["$", "setup: makeItems(n)", "run: $('.item').length"],
      ["html", "setup: html = markup(n)", "run: $('#host').html(html)"],
      ["addClass", "setup: makeItems(n)", "run: $('.item').addClass('on')"],
      ["each", "setup: makeItems(n)", "run: $('.item').each(function () { this.x = 1; })"],
    ],
  },
  {
    name: "lodash",
    pkg: "lodash@4.17.21",
    file: "lodash.min.js",
    globals: ["_"],
    entries: [
      ["sortBy", "setup: rows = makeRows(n)", "run: _.sortBy(rows, 'score')"],
      ["groupBy", "setup: rows = makeRows(n)", "run: _.groupBy(rows, (r) => r.score % 10)"],
      ["cloneDeep", "setup: rows = makeRows(n)", "run: _.cloneDeep(rows)"],
      ["uniq", "setup: nums = rows0(n)", "run: _.uniq(nums)"],
    ],
  },
  {
    name: "moment",
    pkg: "moment@2.30.1",
    file: "min/moment.min.js",
    globals: ["moment"],
    // Timed as n calls; stored per call ("per-call").
    entries: [
      ["moment", "setup: 0", "run: for (let i = 0; i < n; i++) moment('2024-03-0' + (1 + i % 9) + 'T10:00:00Z')", "per-call"],
      ["format", "setup: m = moment('2024-03-01T10:00:00Z')", "run: for (let i = 0; i < n; i++) m.format('YYYY-MM-DD HH:mm')", "per-call"],
    ],
  },
  {
    name: "d3",
    pkg: "d3@7.8.5",
    file: "dist/d3.min.js",
    globals: ["d3"],
    entries: [
      ["data", "setup: host.textContent = ''; nums = rows0(n)", "run: d3.select('#host').selectAll('div').data(nums).enter().append('div').text((d) => d)", "fresh"],
      ["csvParse", "setup: csv = makeCsv(n)", "run: d3.csvParse(csv)"],
    ],
  },
  {
    name: "chart.js",
    pkg: "chart.js@4.4.1",
    file: "dist/chart.umd.js",
    globals: ["Chart"],
    entries: [
      ["Chart", "setup: canvas = freshCanvas(); nums = rows0(n)", "run: new Chart(canvas, { type: 'line', options: { animation: false, responsive: false }, data: { labels: nums, datasets: [{ data: nums }] } }).destroy()"],
    ],
  },
  {
    name: "three",
    pkg: "three@0.149.0",
    file: "build/three.min.js",
    globals: ["THREE"],
    entries: [
      // n segments each way: about n * n vertices.
      ["SphereGeometry", "setup: 0", "run: new THREE.SphereGeometry(1, Math.ceil(Math.sqrt(n)), Math.ceil(Math.sqrt(n))).dispose()"],
      ["computeVertexNormals", "setup: geo = new THREE.SphereGeometry(1, Math.ceil(Math.sqrt(n)), Math.ceil(Math.sqrt(n)))", "run: geo.computeVertexNormals()"],
    ],
  },
  {
    name: "react",
    pkg: ["react@18.3.1", "react-dom@18.3.1"],
    file: ["react/umd/react.production.min.js", "react-dom/umd/react-dom.production.min.js"],
    globals: ["React", "ReactDOM"],
    entries: [
      ["createElement", "setup: 0", "run: for (let i = 0; i < n; i++) React.createElement('li', { key: i }, 'x')", "per-call"],
      ["render", "setup: if (root) root.unmount(); host.textContent = ''; root = ReactDOM.createRoot(host)", "run: ReactDOM.flushSync(() => root.render(React.createElement('ul', null, rows0(n).map((i) => React.createElement('li', { key: i }, 'row ' + i)))))", "fresh"],
    ],
  },
];

// The estimator's calibration kernel, copied from estimator/src/calibration.rs.
const KERNEL_JS = /pub const KERNEL_JS: &str = "([\s\S]*?)";/.exec(
  readFileSync(join(root, "estimator/src/calibration.rs"), "utf8"),
)[1];

const HELPERS = `
const host = document.getElementById('host');
function makeItems(n) { host.innerHTML = ''; for (let i = 0; i < n; i++) { const d = document.createElement('div'); d.className = 'item'; d.textContent = 'item ' + i; host.appendChild(d); } }
function markup(n) { let s = ''; for (let i = 0; i < n; i++) s += '<div class="item">item ' + i + '</div>'; return s; }
function makeRows(n) { const r = []; for (let i = 0; i < n; i++) r.push({ id: i, name: 'row ' + i, score: (i * 7919) % 1000 }); return r; }
function rows0(n) { const r = []; for (let i = 0; i < n; i++) r.push((i * 7919) % 1000); return r; }
function makeCsv(n) { let s = 'id,name,score\\n'; for (let i = 0; i < n; i++) s += i + ',row ' + i + ',' + (i * 7919) % 1000 + '\\n'; return s; }
function freshCanvas() { const c = document.createElement('canvas'); c.width = 400; c.height = 200; host.innerHTML = ''; host.appendChild(c); return c; }
let rows, nums, csv, canvas, m, geo, root, html;
// One timed run of the calibration kernel: the page's own clock, now, in ms.
let kernelSink = 0;
const kernelMs = [];
function calibrate() { const t = performance.now(); kernelSink += foresightKernel(); kernelMs.push(performance.now() - t); }
`;

function sh(cmd, argv, options = {}) {
  return execFileSync(cmd, argv, { encoding: "utf8", maxBuffer: 64 << 20, ...options });
}

function install() {
  mkdirSync(work, { recursive: true });
  if (!existsSync(join(work, "package.json"))) writeFileSync(join(work, "package.json"), '{"private":true}');
  const pkgs = LIBRARIES.flatMap((l) => [l.pkg].flat());
  console.error(`npm install ${pkgs.join(" ")}`);
  sh("npm", ["install", "--no-audit", "--no-fund", "--ignore-scripts", ...pkgs], { cwd: work, stdio: ["ignore", "ignore", "inherit"] });
}

function dumpDom(page) {
  const profile = mkdtempSync(join(tmpdir(), "foresight-profile-"));
  try {
    const dom = sh(chromium, [
      "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--enable-precise-memory-info", "--allow-file-access-from-files",
      `--user-data-dir=${profile}`, "--dump-dom", pathToFileURL(page).href,
    ], { stdio: ["ignore", "pipe", "ignore"] });
    const m = /FORESIGHT(.*?)END/s.exec(dom);
    if (!m) throw new Error(`no measurement from ${page}:\n${dom.slice(0, 2000)}`);
    return JSON.parse(m[1]);
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

function libraryPage(dir, lib) {
  const files = [lib.file].flat().map((f, i) => {
    const pkgName = [lib.pkg].flat()[i].replace(/@[^@]*$/, "");
    const path = [lib.file].flat().length > 1 ? join(work, "node_modules", f) : join(work, "node_modules", pkgName, f);
    return path;
  });
  // Inlined, so the load measured is compile and top-level code, not the file loader's
  // latency (a real page's network time is modelled separately, from bytes).
  const tags = files
    .map((f) => `<script>${readFileSync(f, "utf8").replace(/<\/script/gi, "<\\/script")}</script>`)
    .join("\n");
  // performance.now() is coarsened to 0.1 ms on a file:// page, so each size is timed over
  // enough repetitions to last ~20 ms. A call whose repetition is not idempotent (marked
  // "fresh": it needs its setup again) is timed as repetitions of setup + call minus as many
  // of setup alone.
  const entries = lib.entries.map(([name, setup, run, fresh]) => {
    const S = setup.replace(/^setup: /, "");
    // Reading offsetHeight forces the style and layout the call left pending, which the
    // browser would otherwise do after the script, on the same main thread: part of the
    // call's cost to a page (and free when nothing changed).
    const R = `${run.replace(/^run: /, "")}; void document.body.offsetHeight`;
    const timing = fresh === "fresh"
      ? `const once = () => { ${S}; ${R}; };
      const setupOnly = () => { ${S}; };
      let t = performance.now(); once(); const cold = performance.now() - t;
      once();
      t = performance.now(); once(); const guess = Math.max(performance.now() - t, 0.05);
      const reps = Math.min(Math.max(Math.ceil(20 / guess), 3), 400);
      t = performance.now(); for (let r = 0; r < reps; r++) once(); const both = performance.now() - t;
      t = performance.now(); for (let r = 0; r < reps; r++) setupOnly(); const alone = performance.now() - t;
      samples.push([n, Math.max(both - alone, 0) / reps]);
      if (first === null) first = [cold, both / reps];`
      : `${S};
      const call = () => { ${R}; };
      let t = performance.now(); call(); const cold = performance.now() - t;
      call();
      t = performance.now(); call(); const guess = Math.max(performance.now() - t, 0.05);
      const reps = Math.min(Math.max(Math.ceil(20 / guess), 3), 2000);
      t = performance.now(); for (let r = 0; r < reps; r++) call();
      const warm = (performance.now() - t) / reps;
      samples.push([n, warm]);
      if (first === null) first = [cold, warm];`;
    return `
  calibrate();
  {
    const samples = [];
    // The first call at the smallest size, cold (the library's functions compile lazily, on
    // first use), next to a warm one of the same size.
    let first = null;
    for (const n of ${JSON.stringify(SIZES)}) {
      ${timing}
    }
    result.entries[${JSON.stringify(name)}] = samples;
    result.first[${JSON.stringify(name)}] = first;
  }
  calibrate();`;
  }).join("\n");
  const page = join(dir, `${lib.name}.html`);
  writeFileSync(page, `<!DOCTYPE html><html><body><div id="host"></div>
<script>const H0 = performance.memory.usedJSHeapSize; const T0 = performance.now();</script>
${tags}
<script>const LOAD_MS = performance.now() - T0; const HEAP = performance.memory.usedJSHeapSize - H0;</script>
<script>${KERNEL_JS}
${HELPERS}
const result = { load_ms: LOAD_MS, heap_bytes: HEAP, entries: {}, first: {} };
// Warm, so that every timed kernel run is optimised code, as the entry points' runs are.
for (let r = 0; r < 3; r++) kernelSink += foresightKernel();
${entries}
result.kernel_ms = kernelMs;
result.kernel_sink = kernelSink;
document.body.textContent = 'FORESIGHT' + JSON.stringify(result) + 'END';
</script></body></html>`);
  return { page, files };
}

function fit(samples) {
  // Least squares for ms = a + b * n; negative parts clamp to zero.
  const k = samples.length;
  const sx = samples.reduce((s, [n]) => s + n, 0);
  const sy = samples.reduce((s, [, y]) => s + y, 0);
  const sxx = samples.reduce((s, [n]) => s + n * n, 0);
  const sxy = samples.reduce((s, [n, y]) => s + n * y, 0);
  const b = (k * sxy - sx * sy) / (k * sxx - sx * sx);
  const a = (sy - b * sx) / k;
  return { fixed: Math.max(a, 0), per_item: Math.max(b, 0) };
}

function fnv1a64(bytes) {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h;
}

function rust(n) {
  // A float literal Rust accepts.
  const s = Number.isFinite(n) ? n.toPrecision(4) : "0";
  return /[.e]/.test(s) ? s.replace(/e\+?/, "e") : `${s}.0`;
}

function main() {
  install();
  const dir = mkdtempSync(join(tmpdir(), "foresight-libs-"));
  const kernelUnits = Number(sh("cargo", ["run", "-q", "-p", "foresight-estimator", "--example", "kernel_units"], { cwd: root }).trim());
  const rows = [];
  const pageUpms = [];
  for (const lib of LIBRARIES) {
    const { page, files } = libraryPage(dir, lib);
    const results = Array.from({ length: runs }, () => dumpDom(page));
    const loadMs = median(results.map((r) => r.load_ms));
    const heap = median(results.map((r) => r.heap_bytes));
    // Each run in its own units: its ms times the units per ms of the kernel timed in it.
    const upms = results.map((r) => kernelUnits / median(r.kernel_ms));
    pageUpms.push(...upms);
    const entries = lib.entries.map(([name, , , mode]) => {
      const samples = SIZES.map((n, i) => [n, median(results.map((r, k) => r.entries[name][i][1] * upms[k]))]);
      const f = fit(samples);
      // What the first call costs beyond a warm one: once per page, not per call.
      const firstCall = median(results.map((r, k) => Math.max(r.first[name][0] - r.first[name][1], 0) * upms[k]));
      return mode === "per-call"
        ? { name, fixed: f.per_item, per_item: 0, first: firstCall, samples }
        : { name, fixed: f.fixed, per_item: f.per_item, first: firstCall, samples };
    });
    console.error(`${lib.name}: page clock at ${upms.map((u) => (u / 1e6).toFixed(2)).join(", ")}M units/ms`);
    const bytes = files.map((f) => readFileSync(f));
    // The load is replaced below by its CDP measurement (main-thread CPU as pages load it).
    rows.push({ lib, loadUnits: 0, heap, entries, bytes: bytes.reduce((s, b) => s + b.length, 0), hashes: bytes.map(fnv1a64) });
    console.error(`${lib.name}: load ${loadMs.toFixed(2)} ms, heap ${heap} B; ${entries.map((e) => `${e.name} ${JSON.stringify(e.samples)}`).join("; ")}`);
  }
  rmSync(dir, { recursive: true, force: true });
  // Loads in main-thread CPU time, as pages load the libraries.
  const printed = sh("cargo", ["run", "-q", "--release", "-p", "foresight-tests", "--bin", "foresight-accuracy", "--",
    "--loads-only", "--work", join(work, "cdp"), "--chromium", chromium],
  { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  const loads = JSON.parse(printed.trim().split("\n").pop());
  for (const row of rows) {
    const measured = loads.libraries[row.lib.name];
    if (!measured) throw new Error(`no load measured for ${row.lib.name}`);
    row.loadUnits = measured.load_ms * loads.units_per_ms;
    row.heap = measured.heap_bytes;
  }
  const body = rows.map(({ lib, loadUnits, heap, entries, bytes, hashes }) => `    LibraryProfile {
        name: ${JSON.stringify(lib.name)},
        measured: ${JSON.stringify([lib.pkg].flat().join(" + "))},
        globals: &[${lib.globals.map((g) => JSON.stringify(g)).join(", ")}],
        hashes: &[${hashes.map((h) => `0x${h.toString(16).padStart(16, "0")}`).join(", ")}],
        bytes: ${bytes},
        load_units: ${rust(loadUnits)},
        heap_bytes: ${rust(Math.max(heap, 0))},
        entries: &[
${entries.map((e) => `            EntryProfile {
                name: ${JSON.stringify(e.name)},
                fixed_units: ${rust(e.fixed)},
                units_per_item: ${rust(e.per_item)},
                first_call_units: ${rust(e.first)},
            },`).join("\n")}
        ],
    },`).join("\n");
  writeFileSync(out, `//! Measured cost profiles of widely used libraries: GENERATED by
//! \`node tools/lib-profiles/measure.mjs\` (headless Chromium; loads in main-thread CPU time at
//! ${loads.units_per_ms.toFixed(0)} work units per ms, entry points in page time with the kernel timed
//! between them in the same page, median ${median(pageUpms).toFixed(0)}; medians of ${runs} runs). Do not edit
//! by hand; re-run the tool.

use super::{EntryProfile, LibraryProfile};

pub static PROFILES: &[LibraryProfile] = &[
${body}
];
`);
  sh("rustfmt", ["--edition", "2024", out]);
  console.error(`wrote ${out}`);
}

main();
