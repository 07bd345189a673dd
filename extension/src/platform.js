// Every difference between Chrome and Firefox that the extension's modules care about lives
// in this file, so the rest of the code is written once for both browsers.
//
// - The API namespace: Firefox has `browser` (and a promise-returning `chrome`), Chrome has
//   `chrome`. Both return promises in Manifest V3 when no callback is passed.
// - The background's global: Chrome runs it as a service worker (no `window`), Firefox as an
//   event page (a `Window`). Nothing here may assume either.
// - Why a native port disconnected: Chrome sets `runtime.lastError`, Firefox sets
//   `port.error`.
// - What the machine looks like without a native host: Chrome may grant `system.cpu` and
//   `system.memory` (whole-machine figures); Firefox exposes only `hardwareConcurrency`.

export const api = globalThis.browser ?? globalThis.chrome;

/** `"firefox"` or `"chrome"` (Chromium and other Chrome-based browsers). */
export const browserName = api.runtime.getURL("").startsWith("moz-extension:")
  ? "firefox"
  : "chrome";

/** The reason a native-messaging or runtime port closed, in either browser. */
export function disconnectReason(port) {
  const error = port.error ?? api.runtime.lastError;
  return error?.message ?? "disconnected";
}

/**
 * Registers `handler(message, sender) -> Promise<reply>` for `runtime.sendMessage`, using the
 * `sendResponse` + `return true` form that both browsers honour.
 */
export function onRuntimeMessage(handler) {
  api.runtime.onMessage.addListener((message, sender, sendResponse) => {
    Promise.resolve()
      .then(() => handler(message, sender))
      .then(
        (reply) => sendResponse(reply),
        (error) => sendResponse({ error: String(error?.message ?? error) }),
      );
    return true;
  });
}

/** What the browser tells us about the machine, for the planner when no native host runs. */
export async function browserContention() {
  const cpus = Math.max(1, navigator.hardwareConcurrency || 1);
  // deviceMemory is Chrome-only and capped at 8 GiB; Firefox exposes nothing.
  const gib = navigator.deviceMemory ?? 4;
  let total = Math.round(gib * 1024 * 1024 * 1024);
  // The browser cannot see other applications: assume half the machine is busy...
  let usage = 0.5;
  let available = Math.round(total / 2);
  // ...unless Chrome's system APIs are granted (`system.cpu` / `system.memory`), which
  // measure the whole machine. Firefox has neither.
  const measured = await systemUsage();
  if (measured.usage != null) usage = measured.usage;
  if (measured.total != null) {
    total = measured.total;
    available = measured.available;
  }
  return {
    source: "browser",
    taken_at_ms: Date.now(),
    logical_cpus: cpus,
    cpu_usage: usage,
    available_cpu_millicores: Math.round(cpus * 1000 * (1 - usage)),
    total_memory_bytes: total,
    available_memory_bytes: available,
    load_average_1m: null,
  };
}

// CPU usage is a difference of cumulative counters between two readings; the previous one
// is kept here (losing it when the background restarts only costs one estimate).
let previousCpu = null;

async function systemUsage() {
  const out = { usage: null, total: null, available: null };
  try {
    const memory = await api.system?.memory?.getInfo?.();
    if (memory?.capacity > 0) {
      out.total = memory.capacity;
      out.available = Math.min(memory.availableCapacity, memory.capacity);
    }
    const cpu = await api.system?.cpu?.getInfo?.();
    const totals = (cpu?.processors ?? []).reduce(
      (acc, p) => ({ idle: acc.idle + p.usage.idle, total: acc.total + p.usage.total }),
      { idle: 0, total: 0 },
    );
    if (totals.total > 0) {
      if (previousCpu && totals.total > previousCpu.total) {
        const idle = (totals.idle - previousCpu.idle) / (totals.total - previousCpu.total);
        out.usage = Math.min(1, Math.max(0, 1 - idle));
      }
      previousCpu = totals;
    }
  } catch {
    // Not granted or not supported: the estimate above stands.
  }
  return out;
}
