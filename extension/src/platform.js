// Every difference between Chrome and Firefox that the extension's modules care about lives
// in this file, so the rest of the code is written once for both browsers.
//
// - The API namespace: Firefox has `browser` (and a promise-returning `chrome`), Chrome has
//   `chrome`. Both return promises in Manifest V3 when no callback is passed.
// - The background's global: Chrome runs it as a service worker (no `window`), Firefox as an
//   event page (a `Window`). Nothing here may assume either.
// - Why a native port disconnected: Chrome sets `runtime.lastError`, Firefox sets
//   `port.error`.

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
  const total = Math.round(gib * 1024 * 1024 * 1024);
  return {
    source: "browser",
    taken_at_ms: Date.now(),
    logical_cpus: cpus,
    // The browser cannot see other applications: assume half the machine is busy.
    cpu_usage: 0.5,
    available_cpu_millicores: Math.round(cpus * 500),
    total_memory_bytes: total,
    available_memory_bytes: Math.round(total / 2),
    load_average_1m: null,
  };
}
