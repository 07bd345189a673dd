// Unit tests for the on-device learning rules (extension/src/learning.js), run by
// `cargo xtask test` with `node --test`.
import assert from "node:assert/strict";
import test from "node:test";

import {
  LONG_TASK_MS,
  MAX_ORIGINS,
  MAX_PAGES,
  LearningStore,
  Learner,
  correctDemand,
  correction,
  observe,
  originOf,
  pageObservations,
  cpuContended,
  scriptsKey,
  validStore,
} from "../src/learning.js";

const O = "http://127.0.0.1:8000";
const q = (p50) => ({ p10: p50 / 2, p50, p90: p50 * 2 });
const demand = (cpu) => ({
  url: `${O}/p.html`,
  paths: [
    { name: "load", kind: "load", probability: 1, cpu_ms: q(cpu), memory_bytes: q(1e6), network_bytes: q(1e4), curve: { bucket_ms: 1, buckets: [{ cpu_ms: q(cpu), memory_bytes: q(1e6), network_bytes: q(1e4) }] } },
    { name: "click #go", kind: "interaction", probability: 0.5, event: "click", target: "#go", cpu_ms: q(2), memory_bytes: q(0), network_bytes: q(0), curve: { bucket_ms: 1, buckets: [] } },
  ],
  components: [{ id: "worker-0", url: `${O}/w.js`, cpu_ms: q(10), memory_bytes: q(1e6) }],
});

test("one observation moves the prediction most of the way, more move it further", () => {
  const store = validStore(null);
  observe(store, { origin: O, page: "a", key: "load:cpu", predicted: 10, observed: 400, lowerBound: true });
  const one = correctDemand(store, O, "a", demand(10)).demand.paths[0].cpu_ms.p50;
  assert.ok(one > 100 && one < 400, `${one}`);
  observe(store, { origin: O, page: "a", key: "load:cpu", predicted: 10, observed: 400, lowerBound: true });
  observe(store, { origin: O, page: "a", key: "load:cpu", predicted: 10, observed: 400, lowerBound: true });
  const three = correctDemand(store, O, "a", demand(10)).demand.paths[0].cpu_ms;
  assert.ok(three.p50 > one && three.p50 < 400, `${three.p50}`);
  // Identical observations: the interval is the narrowest allowed around the learned median.
  assert.ok(three.p10 < three.p50 && three.p90 > three.p50 && three.p90 / three.p50 < 1.2, JSON.stringify(three));
});

test("a changed script set on the same origin gets half the correction; other origins none", () => {
  const store = validStore(null);
  observe(store, { origin: O, page: "a", key: "load:cpu", predicted: 10, observed: 1000, lowerBound: true });
  const same = correction(store, O, "a", "load:cpu");
  const changed = correction(store, O, "b", "load:cpu");
  assert.ok(same.exact && !changed.exact);
  assert.ok(Math.abs(Math.log(changed.factor) - Math.log(same.factor) / 2) < 1e-9);
  assert.equal(correction(store, "http://other.test", "a", "load:cpu"), null);
});

test("no long task teaches only when the prediction said there would be one", () => {
  const store = validStore(null);
  assert.equal(observe(store, { origin: O, page: "a", key: "load:cpu", predicted: 20, observed: 0, lowerBound: true }), false);
  assert.equal(observe(store, { origin: O, page: "a", key: "load:cpu", predicted: 500, observed: 0, lowerBound: true }), true);
  const c = correction(store, O, "a", "load:cpu");
  assert.ok(500 * c.factor < 500 && 500 * c.factor > LONG_TASK_MS, `${c.factor}`);
});

test("events, workers, memory and network correct their own quantities and curves", () => {
  const store = validStore(null);
  const report = { load: { longTaskMs: 0, heapBytes: 4e6, networkBytes: 4e4 }, events: { click: { count: 2, ms: 40 } } };
  for (const o of pageObservations(demand(10), report)) observe(store, { origin: O, page: "a", ...o });
  observe(store, { origin: O, page: "a", key: `worker:${O}/w.js`, predicted: 10, observed: 90 });
  const { demand: d, applied } = correctDemand(store, O, "a", demand(10));
  assert.equal(d.paths[0].cpu_ms.p50, 10, "no CPU lesson from a page with no long tasks it did not predict");
  assert.ok(d.paths[0].memory_bytes.p50 > 1e6 && d.paths[0].curve.buckets[0].memory_bytes.p50 > 1e6);
  assert.ok(d.paths[0].network_bytes.p50 > 1e4);
  assert.ok(d.paths[1].cpu_ms.p50 > 2 * 3, "a click observed at 20 ms against 2 predicted");
  assert.ok(d.components[0].cpu_ms.p50 > 10 * 3);
  assert.deepEqual(Object.keys(applied).sort(), ["event:click", "load:memory", "load:network", `worker:${O}/w.js`]);
});

test("CPU is not learned while other programs keep the CPUs busy; memory and network are", () => {
  const report = { load: { longTaskMs: 900, heapBytes: 4e6, networkBytes: 4e4 }, events: { click: { count: 1, ms: 300 } } };
  const busy = { logical_cpus: 2, cpu_usage: 1, others: { processes: 3, cpu_millicores: 1900, memory_bytes: 0 } };
  const quiet = { logical_cpus: 2, cpu_usage: 0.6, others: { processes: 3, cpu_millicores: 100, memory_bytes: 0 } };
  assert.equal(cpuContended(busy), true);
  assert.equal(cpuContended(quiet), false, "the browser's own load is not contention");
  assert.equal(cpuContended({ logical_cpus: 2, cpu_usage: 1 }), false, "no process split: the page's own work, maybe");
  assert.equal(cpuContended(null), false);
  const keys = (c) => pageObservations(demand(10), report, c).map((o) => o.key).sort();
  assert.deepEqual(keys(busy), ["load:memory", "load:network"]);
  assert.deepEqual(keys(quiet), ["event:click", "load:cpu", "load:memory", "load:network"]);
});

test("the store stays bounded and survives foreign data", () => {
  const store = validStore({ v: 0, junk: true });
  assert.deepEqual(store.origins, {});
  for (let i = 0; i < MAX_ORIGINS + 10; i += 1) {
    for (let p = 0; p < MAX_PAGES + 3; p += 1) {
      observe(store, { origin: `http://h${i}.test`, page: `p${p}`, key: "load:network", predicted: 1, observed: 2, now: i * 100 + p });
    }
  }
  assert.equal(Object.keys(store.origins).length, MAX_ORIGINS);
  assert.ok(!("http://h0.test" in store.origins), "the least recently seen origin went first");
  for (const o of Object.values(store.origins)) assert.ok(Object.keys(o.pages).length <= MAX_PAGES);
  assert.equal(observe(store, { origin: O, page: "a", key: "k", predicted: 0, observed: 5 }), false);
  assert.equal(observe(store, { origin: O, page: "a", key: "k", predicted: 5, observed: NaN }), false);
});

test("keys identify origins and script sets", () => {
  assert.equal(originOf("http://127.0.0.1:8000/x?y"), O);
  assert.equal(originOf("about:blank"), null);
  const a = { scripts: [{ url: null, source: "a()", bytes: 3 }, { url: `${O}/x.js` }] };
  const b = { scripts: [{ url: null, source: "b()", bytes: 3 }, { url: `${O}/x.js` }] };
  assert.equal(scriptsKey(a), scriptsKey(structuredClone(a)));
  assert.notEqual(scriptsKey(a), scriptsKey(b));
});

test("the storage wrapper serialises read-modify-write", async () => {
  const data = {};
  const area = { get: async (k) => ({ [k]: data[k] }), set: async (o) => Object.assign(data, structuredClone(o)) };
  const s = new LearningStore(area);
  await Promise.all([1, 2, 3].map(() => s.record(O, "a", [{ key: "load:network", predicted: 1, observed: 3 }])));
  assert.equal((await s.read()).origins[O].pages.a.keys["load:network"].n, 3);
});

test("a remote worker's CPU is learned only when its engine's speed here is known", () => {
  const learning = {
    origin: "https://example.test",
    page: "p",
    raw: { components: [{ url: "https://example.test/w.js", cpu_ms: { p50: 5 } }] },
  };
  const url = "https://example.test/w.js";
  // QuickJS CPU time is not this browser's time: unmeasured, it must teach nothing.
  assert.equal(Learner.forWorker(learning, url, null), null);
  assert.equal(Learner.forWorker(learning, url, 0), null);
  assert.deepEqual(Learner.forWorker(learning, url, 12), {
    origin: "https://example.test",
    page: "p",
    url,
    predicted: 5,
    speed: 12,
  });
});
