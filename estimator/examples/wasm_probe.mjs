// Measures the estimator built for wasm (see wasm_probe.rs for how to build it).
//
//   node wasm_probe.mjs             how deep each kind of nesting can go before the 1 MiB
//                                   stack runs out, and whether the prescan refuses it first
//   node wasm_probe.mjs a.js b.js   how long estimating each file takes
//
// WASM=path overrides the module's location.
import { readFileSync } from 'node:fs';

const path = process.env.WASM ??
  new URL('../../target/wasm32-unknown-unknown/wasm-release/examples/wasm_probe.wasm', import.meta.url);
const module = new WebAssembly.Module(readFileSync(path));
const files = process.argv.slice(2);

function call(fn, src) {
  // A trap leaves the instance unusable, so every call gets a fresh one.
  const { exports } = new WebAssembly.Instance(module, {});
  const bytes = new TextEncoder().encode(src);
  const ptr = exports.probe_alloc(bytes.length);
  new Uint8Array(exports.memory.buffer, ptr, bytes.length).set(bytes);
  try {
    return { ok: true, value: exports[fn](ptr, bytes.length) };
  } catch (e) {
    return { ok: false, error: String(e) };
  }
}

const shapes = {
  parens: n => `x = ${'('.repeat(n)}1${')'.repeat(n)};`,
  arrays: n => `x = ${'['.repeat(n)}1${']'.repeat(n)};`,
  functions: n => `${'function f(){'.repeat(n)}${'}'.repeat(n)}`,
  calls: n => `x = ${'f('.repeat(n)}1${')'.repeat(n)};`,
  else_if: n => `if (a) {}${' else if (a) {}'.repeat(n)}`,
  binary: n => `x = a${' + a'.repeat(n)};`,
  member_calls: n => `x = a${'.b()'.repeat(n)};`,
  unary: n => `x = ${'!'.repeat(n)}a;`,
  ternary: n => `x = ${'a ? b : '.repeat(n)}c;`,
  assign: n => `${'a = '.repeat(n)}1;`,
  typeof: n => `x = ${'typeof '.repeat(n)}a;`,
  new: n => `x = ${'new '.repeat(n)}A;`,
  arrows: n => `x = ${'a => '.repeat(n)}1;`,
  templates: n => `x = ${'`${'.repeat(n)}1${'}`'.repeat(n)};`,
  objects: n => `x = ${'{a:'.repeat(n)}1${'}'.repeat(n)};`,
  lines_binary: n => `x = a${'\n+ a'.repeat(n)};`,
  lines_member: n => `x = a${'\n.b()'.repeat(n)};`,
  nested_if: n => `${'if (a) '.repeat(n)}x;`,
  nested_while: n => `${'while (a) '.repeat(n)}x;`,
  nested_for: n => `${'for (;;) '.repeat(n)}x;`,
  labels: n => Array.from({ length: n }, (_, i) => `l${i}: `).join('') + 'x;',
  do_while: n => `${'do '.repeat(n)}x;${' while (a)'.repeat(n)}`,
  mixed: n => `x = ${'('.repeat(Math.min(n, 399))}a${' = a'.repeat(n)}${')'.repeat(Math.min(n, 399))};`,
};

// The deepest n (up to `hi`) for which `fn` does not trap, by bisection.
function limit(fn, shape, hi) {
  let lo = 1;
  if (call(fn, shape(hi)).ok) return `>= ${hi}`;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (call(fn, shape(mid)).ok) lo = mid; else hi = mid;
  }
  return lo;
}

// The largest n the estimator analyses without a warning (the prescan accepts it), checking
// that no call on the way traps: a trap there is a hole in the prescan.
function accepted(shape, hi) {
  let lo = 0;
  let trap = null;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    const r = call('probe_estimate', shape(mid));
    if (!r.ok) { trap = mid; hi = mid; continue; }
    if (r.value === 0) lo = mid; else hi = mid;
  }
  return trap === null ? String(lo) : `TRAP at ${trap}`;
}

for (const file of files) {
  const src = readFileSync(file, 'utf8');
  const t0 = performance.now();
  const r = call('probe_estimate', src);
  const ms = performance.now() - t0;
  console.log(`${file}: ${src.length} bytes estimated in ${ms.toFixed(0)} ms (incl. instantiation)`, r);
}
if (files.length) process.exit(0);

let holes = 0;
for (const [name, shape] of Object.entries(shapes)) {
  const unguarded = limit('probe_unguarded', shape, 30000);
  const acc = accepted(shape, 30000);
  const guarded = call('probe_estimate', shape(100000));
  if (acc.startsWith('TRAP') || !guarded.ok) holes++;
  console.log(`${name.padEnd(14)} traps unguarded at ${String(unguarded).padStart(8)}   accepted up to ${acc.padStart(6)}   at 100k: ${guarded.ok ? 'refused, ok' : 'TRAP ' + guarded.error}`);
}
console.log(holes ? `${holes} HOLES` : 'no holes');

