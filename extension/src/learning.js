// Learning on the device: what pages really cost here, kept per origin and script set, and
// used to correct later estimates for the same origin. Nothing leaves the device: records
// live in extension storage (`storage.local`, key "learning") and are only read by the
// background.
//
// Where observations come from:
// - content-isolated.js watches the page (PerformanceObserver: long tasks — or, without
//   long-task timing, as in Firefox, a timer probe's late ticks — event timing, resource
//   timing; `performance.memory` where Chrome has it) and reports once the load has
//   settled ("page-observed") and again as events come in ("page-events");
// - the orchestrator reports the CPU the broker measured for each remote worker, converted to
//   this browser's time with the broker's speed factor (parity when it is not measured, as the
//   planner assumes).
//
// CPU observations from the page (long tasks, event timing) are wall-clock times, so they are
// not learned while other programs keep the CPUs busy (`cpuContended`, from the host's
// contention snapshot); memory and network are learned whatever the load.
//
// What is learned: for each quantity (load CPU, memory, network; CPU per event type; CPU per
// worker URL) the running mean and spread of ln(observed / predicted), where "predicted" is
// the estimator's raw p50 (never an already-corrected one, so corrections do not compound).
// Long tasks only see tasks over 50 ms, so their sum is a lower bound of the load's CPU: a sum
// of zero says only that no task took more than 50 ms, and teaches something only when the
// prediction said otherwise (then the prediction is pulled towards that bound).
//
// How it corrects: each quantile of a learned quantity is multiplied by exp(s * mean), with a
// shrinkage s = n / (n + 0.5) (one observation moves the estimate two thirds of the way in
// log space, several almost all of it), halved when the page's script set changed since (same
// origin, different code). With two or more observations the interval is re-centred and its
// width taken from the observed spread (never narrower than +-15%). Demand curves are scaled
// like their path.
//
// Bounds: at most MAX_ORIGINS origins (least recently seen evicted), MAX_PAGES script sets per
// origin and MAX_KEYS quantities per record; counts saturate at MAX_COUNT so old observations
// keep fading out (an exponential moving average once saturated).
//
// This module is pure apart from `LearningStore`, which is handed the storage area, so the
// rules are unit-tested under Node (extension/tests/learning.test.mjs).

export const STORAGE_KEY = "learning";
export const VERSION = 1;
export const MAX_ORIGINS = 64;
export const MAX_PAGES = 8;
export const MAX_KEYS = 32;
export const MAX_COUNT = 8;
/** Long tasks are tasks over this many ms. */
export const LONG_TASK_MS = 50;
/**
 * Ratios outside this range are clamped: a measurement, not a model, broke. Wide, because a
 * loop bounded by the clock or by data the syntax cannot see is predicted at microseconds and
 * may run for seconds (10^6 times more).
 */
const MAX_LN_RATIO = Math.log(1e6);
/** Narrowest learned interval around the median: +-15%. */
const MIN_SPREAD = Math.log(1.15);
/** z of the 90th percentile of a normal distribution. */
const Z90 = 1.2816;

/** A short, stable hash (FNV-1a, 32 bits, hex) of `text`. */
export function hash(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}

/** The page's script set: the hash of its script URLs and inline sources, in page order. */
export function scriptsKey(sources) {
  const parts = (sources?.scripts ?? []).map((s) =>
    s.url ? `u:${s.url}` : `i:${hash(String(s.source ?? ""))}:${s.bytes ?? 0}`,
  );
  return hash(parts.join("\n"));
}

/** The origin of `url`, or null for anything that has none (about:, data:, file: pages). */
export function originOf(url) {
  try {
    const o = new URL(url).origin;
    return o && o !== "null" ? o : null;
  } catch {
    return null;
  }
}

function emptyStore() {
  return { v: VERSION, origins: {} };
}

/** A stored value, validated: anything another version wrote that does not fit is dropped. */
export function validStore(value) {
  if (!value || typeof value !== "object" || value.v !== VERSION || typeof value.origins !== "object") {
    return emptyStore();
  }
  return value;
}

function stat(entry) {
  return entry && Number.isFinite(entry.mean) && Number.isFinite(entry.m2) && entry.n > 0 ? entry : null;
}

/** Adds one log-ratio to a running mean/variance (Welford; weights saturate at MAX_COUNT). */
function update(entry, lnRatio) {
  const x = Math.max(-MAX_LN_RATIO, Math.min(MAX_LN_RATIO, lnRatio));
  const e = stat(entry) ?? { n: 0, mean: 0, m2: 0 };
  const n = Math.min(e.n + 1, MAX_COUNT);
  const delta = x - e.mean;
  const mean = e.mean + delta / n;
  // Once saturated, the old spread is down-weighted like the old mean.
  const m2 = (e.n >= MAX_COUNT ? e.m2 * (1 - 1 / n) : e.m2) + delta * (x - mean);
  return { n, mean, m2 };
}

function touch(store, origin, page, now) {
  const o = (store.origins[origin] ??= { at: now, pages: {}, all: {} });
  o.at = now;
  const p = (o.pages[page] ??= { at: now, keys: {} });
  p.at = now;
  // Bounds: least recently seen script sets, then origins, go first.
  const pages = Object.entries(o.pages);
  if (pages.length > MAX_PAGES) {
    pages.sort((a, b) => a[1].at - b[1].at);
    for (const [k] of pages.slice(0, pages.length - MAX_PAGES)) delete o.pages[k];
  }
  const origins = Object.entries(store.origins);
  if (origins.length > MAX_ORIGINS) {
    origins.sort((a, b) => a[1].at - b[1].at);
    for (const [k] of origins.slice(0, origins.length - MAX_ORIGINS)) delete store.origins[k];
  }
  return { o, p };
}

function learn(record, key, lnRatio) {
  if (!(key in record) && Object.keys(record).length >= MAX_KEYS) return;
  record[key] = update(record[key], lnRatio);
}

/**
 * Records one observation for `key` ("load:cpu", "load:memory", "load:network",
 * "event:click", "worker:URL") of the page `page` (its scripts key) on `origin`: the raw
 * predicted p50 and what was observed. Returns whether anything was learned.
 */
export function observe(store, { origin, page, key, predicted, observed, lowerBound = false, now = Date.now() }) {
  if (!origin || !page || !(predicted > 0) || !(observed >= 0) || !Number.isFinite(observed)) return false;
  let ratio;
  if (lowerBound) {
    // Long tasks: `observed` is a lower bound. Zero means only "no task over 50 ms".
    if (observed > 0) ratio = Math.max(observed, Math.min(predicted, LONG_TASK_MS)) / predicted;
    else if (predicted > LONG_TASK_MS) ratio = LONG_TASK_MS / predicted;
    else return false;
  } else {
    if (!(observed > 0)) return false;
    ratio = observed / predicted;
  }
  const { o, p } = touch(store, origin, page, now);
  learn(p.keys, key, Math.log(ratio));
  learn(o.all, key, Math.log(ratio));
  return true;
}

/** The correction for `key`: {factor, spread|null, n, exact} or null when nothing is known. */
export function correction(store, origin, page, key) {
  const o = store.origins?.[origin];
  if (!o) return null;
  const exact = stat(o.pages?.[page]?.keys?.[key]);
  const e = exact ?? stat(o.all?.[key]);
  if (!e) return null;
  const shrink = (e.n / (e.n + 0.5)) * (exact ? 1 : 0.5);
  const sd = e.n >= 2 ? Math.sqrt(e.m2 / (e.n - 1)) : null;
  return {
    factor: Math.exp(shrink * e.mean),
    spread: sd == null ? null : Math.max(MIN_SPREAD, Z90 * sd),
    n: e.n,
    exact: Boolean(exact),
  };
}

function corrected(q, c) {
  if (!q || !c) return q;
  const p50 = q.p50 * c.factor;
  if (c.spread == null) return { p10: q.p10 * c.factor, p50, p90: q.p90 * c.factor };
  // Observed often enough: the interval is what the observations scatter by.
  return { p10: p50 * Math.exp(-c.spread), p50, p90: p50 * Math.exp(c.spread) };
}

function scaleCurve(curve, cpu, mem, net) {
  if (!curve?.buckets) return curve;
  return {
    ...curve,
    buckets: curve.buckets.map((b) => ({
      ...b,
      cpu_ms: cpu ? scaleQ(b.cpu_ms, cpu.factor) : b.cpu_ms,
      memory_bytes: mem ? scaleQ(b.memory_bytes, mem.factor) : b.memory_bytes,
      network_bytes: net ? scaleQ(b.network_bytes, net.factor) : b.network_bytes,
    })),
  };
}

function scaleQ(q, k) {
  return q && { p10: q.p10 * k, p50: q.p50 * k, p90: q.p90 * k };
}

/**
 * `demand` (a PageDemand) corrected by what was learned for `origin` and `page`, and a
 * summary of what was applied ({key: {factor, n, exact}}). The input is not modified.
 */
export function correctDemand(store, origin, page, demand) {
  const applied = {};
  const get = (key) => {
    const c = correction(store, origin, page, key);
    if (c) applied[key] = { factor: c.factor, n: c.n, exact: c.exact };
    return c;
  };
  const paths = (demand.paths ?? []).map((p) => {
    const cpu = get(p.kind === "load" ? "load:cpu" : `event:${p.event}`);
    const mem = p.kind === "load" ? get("load:memory") : null;
    const net = p.kind === "load" ? get("load:network") : null;
    if (!cpu && !mem && !net) return p;
    return {
      ...p,
      cpu_ms: corrected(p.cpu_ms, cpu),
      memory_bytes: corrected(p.memory_bytes, mem),
      network_bytes: corrected(p.network_bytes, net),
      curve: scaleCurve(p.curve, cpu, mem, net),
    };
  });
  const components = (demand.components ?? []).map((c) => {
    const cpu = c.url ? get(`worker:${c.url}`) : null;
    return cpu ? { ...c, cpu_ms: corrected(c.cpu_ms, cpu) } : c;
  });
  return { demand: { ...demand, paths, components }, applied };
}

/**
 * What a page report teaches, as `observe` arguments: load CPU (long tasks, a lower bound),
 * heap, network bytes, and CPU per event type against the interaction paths of that event.
 * `raw` is the uncorrected demand the page was planned with.
 */
export function pageObservations(raw, report, contention = null) {
  const out = [];
  // Long tasks and event processing are wall-clock times: on a machine whose other programs
  // keep the CPUs busy they stretch with the wait for a core, and learning them would teach
  // the page to be heavier than it is (then offload it when the machine is quiet again).
  const cpu = !cpuContended(contention);
  const load = raw?.paths?.find((p) => p.kind === "load");
  if (load && report?.load) {
    const r = report.load;
    if (cpu && r.longTasks !== false && Number.isFinite(r.longTaskMs)) {
      out.push({ key: "load:cpu", predicted: load.cpu_ms.p50, observed: r.longTaskMs, lowerBound: true });
    }
    if (Number.isFinite(r.heapBytes) && r.heapBytes > 0) {
      out.push({ key: "load:memory", predicted: load.memory_bytes.p50, observed: r.heapBytes });
    }
    if (Number.isFinite(r.networkBytes) && r.networkBytes > 0) {
      out.push({ key: "load:network", predicted: load.network_bytes.p50, observed: r.networkBytes });
    }
  }
  for (const [event, e] of Object.entries(cpu ? (report?.events ?? {}) : {})) {
    if (!(e?.count > 0) || !Number.isFinite(e.ms)) continue;
    const paths = (raw?.paths ?? []).filter((p) => p.kind === "interaction" && p.event === event);
    if (paths.length === 0) continue;
    // One dispatch runs the handlers of one target; the mean over the page's handlers for
    // this event is the prediction for "an event of this type".
    const predicted = paths.reduce((s, p) => s + p.cpu_ms.p50, 0) / paths.length;
    out.push({ key: `event:${event}`, predicted, observed: e.ms / e.count });
  }
  return out;
}

/** Share of the browser's CPUs that other programs keep busy above which CPU is not learned. */
export const CONTENDED_SHARE = 0.5;

/**
 * Whether `contention` (the host's snapshot) says other programs held at least
 * CONTENDED_SHARE of the browser's CPUs. Without the host's split between this browser and
 * everything else (the browser's own reading counts the page's own work too), it cannot be
 * told, and is taken as not contended.
 */
export function cpuContended(contention) {
  const cpus = contention?.logical_cpus;
  const others = contention?.others?.cpu_millicores;
  if (!(cpus > 0) || !Number.isFinite(others)) return false;
  return others >= CONTENDED_SHARE * cpus * 1000;
}

/** The learning store in extension storage; one read-modify-write at a time. */
export class LearningStore {
  constructor(area) {
    this.area = area;
    this.queue = Promise.resolve();
  }

  async read() {
    const stored = await this.area.get(STORAGE_KEY);
    return validStore(stored?.[STORAGE_KEY]);
  }

  /** Applies `change(store)` and writes the result back, serialised with other changes. */
  change(fn) {
    const run = this.queue.then(async () => {
      const store = await this.read();
      const changed = fn(store);
      if (changed) await this.area.set({ [STORAGE_KEY]: store });
      return changed;
    });
    this.queue = run.catch(() => {});
    return run;
  }

  /** Records each observation in `list` for `origin`/`page`. */
  record(origin, page, list) {
    return this.change((store) => list.map((o) => observe(store, { origin, page, ...o })).some(Boolean));
  }
}

/**
 * What the orchestrator calls: corrects an estimate before planning and learns from the
 * page's and the broker's reports afterwards. Errors are swallowed (logged): learning is an
 * improvement, never a reason for an analysis to fail.
 */
export class Learner {
  constructor(area) {
    this.store = new LearningStore(area);
  }

  /**
   * The corrected demand for the page captured in `sources`, plus what the learner needs to
   * learn from this page later: {demand, learning: {origin, page, raw, applied}}.
   */
  async correct(sources, raw) {
    const origin = originOf(sources.url);
    const page = scriptsKey(sources);
    try {
      const { demand, applied } = correctDemand(await this.store.read(), origin, page, raw);
      return { demand, learning: { origin, page, raw, applied } };
    } catch (error) {
      console.warn("foresight: learned corrections unavailable", error);
      return { demand: raw, learning: { origin, page, raw, applied: {} } };
    }
  }

  /** A content script's "page-observed" or "page-events" report, against the raw estimate. */
  /** Learns from a page report, taken while the machine was as `contention` says. */
  async page(learning, report, contention = null) {
    if (!learning?.origin) return false;
    const list = pageObservations(learning.raw, report, contention);
    return this.store.record(learning.origin, learning.page, list).catch((error) => {
      console.warn("foresight: could not record an observation", error);
      return false;
    });
  }

  /**
   * What learning from a remote worker's CPU report needs, taken when it is placed (the page
   * may be gone by the time the broker reports): null when the estimate did not price it,
   * or when the engine's speed against this browser is unmeasured. Its CPU time cannot be
   * turned into this browser's time then: QuickJS takes 5-40x V8's time, and learning that
   * at parity would teach the page's worker to be that much heavier here.
   */
  static forWorker(learning, url, speedFactor) {
    const component = learning?.raw?.components?.find((c) => c.url === url);
    if (!learning?.origin || !component || !(speedFactor > 0)) return null;
    return {
      origin: learning.origin,
      page: learning.page,
      url,
      predicted: component.cpu_ms.p50,
      speed: speedFactor,
    };
  }

  /**
   * The CPU the broker measured for a remote worker, in this browser's time: divided by the
   * broker's speed factor (how long it takes for 1 ms here), parity when unmeasured (as the
   * planner assumes).
   */
  async worker(learn, usedMs) {
    if (!learn || !(usedMs >= 0)) return false;
    return this.store
      .record(learn.origin, learn.page, [
        { key: `worker:${learn.url}`, predicted: learn.predicted, observed: usedMs / learn.speed },
      ])
      .catch(() => false);
  }
}
