// Isolated-world content script, injected at document_start before content-main.js.
//
// 1. Receives the private MessagePort that content-main.js (MAIN world) hands over, and relays
//    worker traffic between it and the background.
// 2. Captures the page's sources (scripts, inline handlers, stylesheets) and activity once the
//    document is parsed, and sends them to the background for estimation.
// 3. Observes what the page really costs (long tasks, event timing, resource timing, the JS
//    heap where Chrome exposes it) and reports it to the background, which learns from it
//    (learning.js). The figures stay in the browser.
//
// How the page <-> extension channel is authenticated: by possession of that port, which no
// page script can obtain or imitate.
// - The handover happens before any page script exists: both content scripts run at
//   document_start, before the parser creates the first <script>, and neither sets up when it
//   finds the document past "loading" (Firefox injects content scripts into tabs already open
//   when the extension is installed: page code has run there and could have pre-registered a
//   listener that steals the port, or posted a port of its own first).
// - This script's listener is on window in the capture phase, registered before any page
//   listener could be; it accepts exactly one handover (from this very window, carrying a
//   port), stops its propagation so no page listener sees it, and then removes itself: a
//   second "channel" message (an impersonation attempt) reaches nobody.
// - Over the port, only the three page -> extension messages pass, each checked field by field
//   (types, sizes); the background also ties every message to the tab its port belongs to.
//   The page can thus do exactly what it could do by calling `new Worker()` — no more.
// - MAIN -> isolated messages are read from this world's view of the event, so a page that
//   patches prototypes in its own world cannot alter them here.
// A classic script (content scripts cannot be modules), so it is self-contained.
(() => {
  const api = globalThis.browser ?? globalThis.chrome;
  const MAX_URL = 8 * 1024;
  const MAX_NAME = 1024;
  // 8 MiB of structured-clone bytes is this much base64.
  const MAX_DATA = Math.ceil((8 * 1024 * 1024) / 3) * 4;
  const MAX_SOURCE = 8 * 1024 * 1024;
  let pagePort = null;
  let extPort = null;
  let interactions = 0;

  function extension() {
    if (!extPort) {
      extPort = api.runtime.connect({ name: "foresight-tab" });
      extPort.onMessage.addListener((message) => pagePort?.postMessage(message));
      extPort.onDisconnect.addListener(() => {
        extPort = null;
      });
    }
    return extPort;
  }

  const isId = (v) => Number.isSafeInteger(v) && v > 0;
  const isText = (v, max) => typeof v === "string" && v.length <= max;

  // A message from the page, re-built from checked fields only, or null.
  function checked(m) {
    if (typeof m !== "object" || m === null || !isId(m.id)) return null;
    switch (m.kind) {
      case "worker-create": {
        const o = m.options;
        if (!isText(m.url, MAX_URL) || typeof o !== "object" || o === null) return null;
        if ((o.type !== "classic" && o.type !== "module") || !isText(o.name, MAX_NAME)) return null;
        if (m.source !== null && !isText(m.source, MAX_SOURCE)) return null;
        return {
          kind: m.kind,
          id: m.id,
          url: m.url,
          options: { type: o.type, name: o.name },
          source: m.source,
        };
      }
      case "worker-post":
        return isText(m.data, MAX_DATA) ? { kind: m.kind, id: m.id, data: m.data } : null;
      case "worker-terminate":
        return { kind: m.kind, id: m.id, reason: isText(m.reason, MAX_URL) ? m.reason : "" };
      default:
        return null;
    }
  }

  if (document.readyState === "loading") {
    window.addEventListener(
      "message",
      function handover(event) {
        if (event.source !== window || event.data?.foresight !== "channel" || !event.ports?.[0]) {
          return;
        }
        event.stopImmediatePropagation();
        window.removeEventListener("message", handover, true);
        pagePort = event.ports[0];
        pagePort.onmessage = (e) => {
          const message = checked(e.data);
          if (message) extension().postMessage(message);
        };
      },
      true,
    );
  }

  for (const type of ["click", "keydown", "pointerdown"]) {
    window.addEventListener(type, () => interactions++, { capture: true, passive: true });
  }

  // Whether discarding this tab would lose something: unsaved form input or playing media.
  // The background spares busy tabs when it frees memory (tab-discard.js).
  let dirtyForms = false;
  let busyReported = false;
  function reportBusy() {
    const media = [...document.querySelectorAll("video, audio")].some((m) => !m.paused && !m.ended);
    const busy = dirtyForms || media;
    if (busy !== busyReported) {
      busyReported = busy;
      extension().postMessage({ kind: "tab-state", busy });
    }
  }
  window.addEventListener(
    "input",
    (event) => {
      const t = event.target;
      if (t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement || t?.isContentEditable) {
        dirtyForms = true;
        reportBusy();
      }
    },
    { capture: true, passive: true },
  );
  for (const type of ["submit", "reset"]) {
    window.addEventListener(type, () => {
      dirtyForms = false;
      reportBusy();
    }, { capture: true, passive: true });
  }
  for (const type of ["play", "pause", "ended"]) {
    window.addEventListener(type, reportBusy, { capture: true, passive: true });
  }

  function isJavaScript(type) {
    return !type || /^(module|(text|application)\/(x-)?(java|ecma)script)$/i.test(type.trim());
  }

  function scriptKind(el) {
    if (el.type === "module") return "module";
    if (el.src && el.async) return "async";
    if (el.src && el.defer) return "defer";
    return "classic";
  }

  function describe(el) {
    return el.tagName.toLowerCase() + (el.id ? `#${el.id}` : "");
  }

  function resourceBytes(url) {
    const entry = performance.getEntriesByName(url)[0];
    return entry?.encodedBodySize || entry?.transferSize || 0;
  }

  function capture() {
    const scripts = [];
    for (const el of document.querySelectorAll("script")) {
      if (!isJavaScript(el.type)) continue; // JSON, templates...
      if (el.src) {
        scripts.push({ url: el.src, kind: scriptKind(el), source: null, bytes: resourceBytes(el.src) });
      } else {
        const source = el.textContent ?? "";
        scripts.push({ url: null, kind: scriptKind(el), source, bytes: source.length });
      }
    }
    const handlers = [];
    for (const el of document.querySelectorAll("*")) {
      for (const attr of el.attributes) {
        if (attr.name.startsWith("on") && attr.value) {
          handlers.push({ element: describe(el), event: attr.name.slice(2), source: attr.value });
        }
      }
    }
    const stylesheets = [];
    for (const sheet of document.styleSheets) {
      let rules = null;
      try {
        rules = sheet.cssRules.length;
      } catch {
        // Cross-origin sheets are opaque to content scripts; their size still counts.
      }
      const inline = sheet.ownerNode?.textContent ?? "";
      stylesheets.push({
        url: sheet.href,
        bytes: sheet.href ? resourceBytes(sheet.href) : inline.length,
        rules,
      });
    }
    // Elements with an id but no box (display: none, detached): handlers bound to them are
    // less likely to run (estimator/src/interaction.rs). Bounded, one layout at most.
    const hidden_targets = [];
    for (const el of document.querySelectorAll("[id]")) {
      if (hidden_targets.length >= 256) break;
      if (el.getClientRects().length === 0 && el.id.length <= 256) hidden_targets.push(`#${el.id}`);
    }
    const navigation = performance.getEntriesByType("navigation")[0];
    extension().postMessage({
      kind: "page-sources",
      sources: {
        url: location.href,
        html_bytes: navigation?.encodedBodySize || document.documentElement.outerHTML.length,
        scripts,
        handlers,
        stylesheets,
        activity: {
          visible: document.visibilityState === "visible",
          focused: document.hasFocus(),
          dom_nodes: document.getElementsByTagName("*").length,
          interactions,
          hidden_targets,
        },
      },
    });
  }

  // What the page costs here, for learning on the device (learning.js). Long tasks (tasks
  // over 50 ms) until the load has settled give a lower bound of the load's main-thread CPU;
  // where the browser has no long-task timing (Firefox), a timer chain in this world, which
  // shares the page's event loop, finds them as its late ticks (probeLongTasks). Event timing reports
  // only events over 16 ms, so a type's handler time is the reported processing time over
  // every event of that type the page dispatched (the short ones counted as nothing).
  const SETTLE_MS = 1000; // quiet time after `load` before the load counts as over
  const MAX_SETTLE_MS = 10000;
  const EVENT_TYPES = ["click", "dblclick", "input", "change", "keydown", "keyup", "submit", "pointerdown", "pointerup", "mousedown", "mouseup"];
  const supported = globalThis.PerformanceObserver?.supportedEntryTypes ?? [];
  const seen = { longTaskMs: 0, lastLongTask: 0, resourceBytes: 0, loadReported: false };
  const events = {}; // type -> {count, ms} not yet reported
  let eventTimer = null;
  function watch(type, onEntry, options = {}) {
    if (!supported.includes(type)) return false;
    try {
      new PerformanceObserver((list) => list.getEntries().forEach(onEntry)).observe({ type, buffered: true, ...options });
      return true;
    } catch {
      return false;
    }
  }
  const longTaskTiming = watch("longtask", (e) => {
    if (seen.loadReported) return;
    seen.longTaskMs += e.duration;
    seen.lastLongTask = performance.now();
  });
  // A tick due every PROBE_MS that comes late by LONG_TASK_MS or more waited for a task at
  // least that long: the lateness is a lower bound of it, as long-task timing's is. A hidden
  // page's timers are throttled (late by design), so a probe that saw the page hidden
  // reports nothing rather than throttling as work.
  const PROBE_MS = 10;
  const LONG_TASK_MS = 50;
  const probe = { hidden: false };
  function probeLongTasks() {
    let due = performance.now() + PROBE_MS;
    const tick = () => {
      if (seen.loadReported) return;
      const now = performance.now();
      if (document.visibilityState !== "visible") probe.hidden = true;
      const late = now - due;
      if (late >= LONG_TASK_MS) {
        seen.longTaskMs += late;
        seen.lastLongTask = now;
      }
      due = now + PROBE_MS;
      setTimeout(tick, PROBE_MS);
    };
    setTimeout(tick, PROBE_MS);
  }
  if (!longTaskTiming) probeLongTasks();
  watch("resource", (e) => {
    seen.resourceBytes += e.transferSize || e.encodedBodySize || 0;
  });
  function eventOf(type) {
    return (events[type] ??= { count: 0, ms: 0 });
  }
  function reportEventsSoon() {
    eventTimer ??= setTimeout(() => {
      eventTimer = null;
      const report = Object.fromEntries(Object.entries(events).filter(([, e]) => e.count > 0));
      for (const k of Object.keys(events)) delete events[k];
      if (Object.keys(report).length > 0) extension().postMessage({ kind: "page-events", events: report });
    }, SETTLE_MS);
  }
  watch(
    "event",
    (e) => {
      if (!EVENT_TYPES.includes(e.name) || !(e.processingEnd >= e.processingStart)) return;
      eventOf(e.name).ms += e.processingEnd - e.processingStart;
      reportEventsSoon();
    },
    { durationThreshold: 16 },
  );
  for (const type of EVENT_TYPES) {
    window.addEventListener(type, () => {
      eventOf(type).count += 1;
      reportEventsSoon();
    }, { capture: true, passive: true });
  }
  function reportLoad() {
    const quiet = performance.now() - Math.max(seen.lastLongTask, loadedAt);
    if (quiet < SETTLE_MS && performance.now() - loadedAt < MAX_SETTLE_MS) {
      setTimeout(reportLoad, SETTLE_MS - quiet);
      return;
    }
    seen.loadReported = true;
    const navigation = performance.getEntriesByType("navigation")[0];
    const longTasks = longTaskTiming || !probe.hidden;
    extension().postMessage({
      kind: "page-observed",
      load: {
        longTasks,
        longTaskMs: longTasks ? seen.longTaskMs : null,
        heapBytes: performance.memory?.usedJSHeapSize ?? null,
        networkBytes: (navigation?.transferSize || navigation?.encodedBodySize || 0) + seen.resourceBytes,
      },
    });
  }
  let loadedAt = 0;
  function loaded() {
    loadedAt = performance.now();
    setTimeout(reportLoad, SETTLE_MS);
  }
  if (document.readyState === "complete") loaded();
  else window.addEventListener("load", loaded, { once: true });

  // Connect now, so the page's first `new Worker()` finds the channel open.
  extension();
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", capture, { once: true });
  } else {
    capture();
  }
})();
