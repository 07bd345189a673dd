// Unit tests for pricing the broker's engines against this browser (run by `cargo xtask test`
// with `node --test`): what the planner gets from a broker's hello.
import assert from "node:assert/strict";
import test from "node:test";

import { engineTerms } from "../src/engines.js";

const hello = {
  available: true,
  rtt_ms: 2,
  capacity: { cpu_millicores: 2000, memory_bytes: 1 << 30 },
  offers: [
    { engine: "quickjs", kernel_ms: 300, startup_ms: 1.1, max_workers: 0, webassembly: false },
    { engine: "node", kernel_ms: 21, startup_ms: 1.4, max_workers: 8, webassembly: true },
  ],
};

test("an engine's speed factor is its kernel time over this browser's", () => {
  const terms = engineTerms(hello, 20);
  assert.equal(terms.offers, undefined);
  assert.equal(terms.rtt_ms, 2);
  assert.deepEqual(terms.engines, [
    { engine: "quickjs", speed_factor: 15, startup_ms: 1.1, max_workers: 0 },
    { engine: "node", speed_factor: 1.05, startup_ms: 1.4, max_workers: 8 },
  ]);
});

test("without this browser's time or the engine's, the factor is left to the planner", () => {
  assert.deepEqual(
    engineTerms(hello, null).engines.map((e) => e.speed_factor),
    [null, null],
  );
  const unmeasured = { ...hello, offers: [{ engine: "node", max_workers: -3, startup_ms: "x" }] };
  assert.deepEqual(engineTerms(unmeasured, 20).engines, [
    { engine: "node", speed_factor: null, startup_ms: null, max_workers: 0 },
  ]);
});

test("an older broker's terms pass through without engines", () => {
  const { offers: _, ...old } = hello;
  assert.deepEqual(engineTerms({ ...old, offers: [] }, 20), old);
  assert.equal(engineTerms(null, 20), null);
});
