// Isolated-world content script, injected at document_start before content-main.js.
//
// 1. Receives the private MessagePort that content-main.js (MAIN world) hands over, and relays
//    worker traffic between it and the background.
// 2. Captures the page's sources (scripts, inline handlers, stylesheets) and activity once the
//    document is parsed, and sends them to the background for estimation.
// 2b. Opens the tab's data channel to the broker when the background asks (see "The data
//    channel" below) and carries the data of the page's direct remote workers over it.
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
//
// The data channel (docs/PROTOCOL.md, "Data channels"; ARCHITECTURE.md): control stays with the
// background (leases, spawns, terminations, fallbacks), data takes the short path. When the
// background places the tab's first worker remotely it asks this script to open a websocket to
// the broker (`channel-open`, with the broker's URL and token); the broker's hello names a
// `channel_id`, which the background puts in `worker_spawn`. A `worker-placement` with `direct`
// then names the broker's worker id: the page's `worker-post`s for it go over the channel as
// binary frames (held until the broker says `worker_bound`), and its output comes back over it.
// Ordering: the background's `worker-exited` / `worker-fallback` for a direct worker is held
// until the channel has delivered that worker's `worker_exited` (or closed), so the fallback
// never overtakes an answer in flight; output that beats the placement here waits for it.
// The page never sees the channel, its id, the broker's URL or the token.
// A classic script (content scripts cannot be modules), so it is self-contained.
(() => {
  const api = globalThis.browser ?? globalThis.chrome;
  const MAX_URL = 8 * 1024;
  const MAX_NAME = 1024;
  // 8 MiB of structured-clone bytes is this much base64.
  const MAX_DATA = Math.ceil((8 * 1024 * 1024) / 3) * 4;
  const MAX_SOURCE = 8 * 1024 * 1024;
  const CHANNEL_OPEN_TIMEOUT_MS = 2_000;
  const BINARY_WORKER_MESSAGE = 0x01;
  let pagePort = null;
  let extPort = null;
  let interactions = 0;

  function extension() {
    if (!extPort) {
      extPort = api.runtime.connect({ name: "foresight-tab" });
      extPort.onMessage.addListener(fromBackground);
      extPort.onDisconnect.addListener(() => {
        extPort = null;
      });
    }
    return extPort;
  }

  // --- The data channel -------------------------------------------------------------------
  let channel = null; // {socket, open: bool} once asked to open
  // broker worker id -> {id: page id or null, bound, exited, pending: frames to send,
  //                      early: page messages before the placement, held: background messages}
  const direct = new Map();
  const directByPage = new Map(); // page worker id -> broker worker id
  const utf8 = new TextEncoder();
  const utf8Decoder = new TextDecoder();

  function base64ToBytes(text) {
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
    const s = atob(text);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }

  function bytesToBase64(bytes) {
    if (bytes.toBase64) return bytes.toBase64();
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(s);
  }

  function directWorker(workerId) {
    let w = direct.get(workerId);
    if (!w) {
      w = { id: null, bound: false, exited: false, pending: [], early: [], held: [] };
      direct.set(workerId, w);
    }
    return w;
  }

  function toPage(w, message) {
    if (w.id === null) w.early.push(message);
    else pagePort?.postMessage({ ...message, id: w.id });
  }

  // The worker's end came through the channel (or the channel is gone): what the background
  // said about it may reach the page now, after everything the worker sent.
  function exited(workerId, w) {
    w.exited = true;
    w.pending = [];
    for (const message of w.held) pagePort?.postMessage(message);
    w.held = [];
    // Its page id stays in directByPage: the page's posts until the fallback are dropped here
    // (the fallback replays them locally), never sent to a worker that is gone.
    if (w.id !== null) direct.delete(workerId);
  }

  function openChannel(url, token) {
    if (channel?.open) {
      // Asked again (the background lost its broker connection): the channel still serves.
      extension().postMessage({ kind: "channel-opened", channel_id: channel.id });
      return;
    }
    if (channel) {
      extension().postMessage({ kind: "channel-failed", reason: "a channel is still opening" });
      return;
    }
    let socket;
    try {
      socket = new WebSocket(url);
    } catch (error) {
      extension().postMessage({ kind: "channel-failed", reason: String(error?.message ?? error) });
      return;
    }
    // Firefox's content scripts reach the page's WebSocket through Xrays: its ArrayBuffers
    // belong to the page's compartment and cannot back this world's typed arrays
    // ("Permission denied to access property constructor"). There, frames arrive as Blobs
    // and are read as binary strings (primitives cross compartments), in arrival order.
    // `cloneInto` exists only in Firefox's content scripts.
    const xrays = typeof globalThis.cloneInto === "function";
    socket.binaryType = xrays ? "blob" : "arraybuffer";
    let inbound = Promise.resolve(); // Firefox: every message in order, after earlier reads
    const mine = { socket, open: false, id: null };
    channel = mine;
    let answered = false;
    const answer = (message) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      extension().postMessage(message);
    };
    const timer = setTimeout(() => {
      answer({ kind: "channel-failed", reason: "the broker did not open a channel in time" });
      socket.close();
    }, CHANNEL_OPEN_TIMEOUT_MS);
    socket.onopen = () => {
      socket.send(
        JSON.stringify({
          type: "hello",
          protocol_version: 1,
          client: `foresight-extension/${api.runtime.getManifest().version} tab data channel`,
          token: token || null,
          features: ["structured_clone_v1", "data_channel_v1"],
          role: "data_channel",
        }),
      );
    };
    socket.onmessage = (event) => {
      const data = event.data;
      if (xrays) {
        inbound = inbound.then(() => (typeof data === "string" ? onText(data) : readBinary(data).then(fromChannelString)));
      } else if (typeof data === "string") {
        onText(data);
      } else {
        fromChannelFrame(new Uint8Array(data));
      }
    };
    const onText = (text) => {
      let message;
      try {
        message = JSON.parse(text);
      } catch {
        return;
      }
      if (message.type === "hello") {
        if (typeof message.channel_id === "string" && message.channel_id) {
          mine.open = true;
          mine.id = message.channel_id;
          answer({ kind: "channel-opened", channel_id: message.channel_id });
        } else {
          answer({ kind: "channel-failed", reason: "the broker gave no channel id" });
          socket.close();
        }
        return;
      }
      if (message.type === "error" && !mine.open) {
        answer({ kind: "channel-failed", reason: `${message.code}: ${message.message}` });
        return;
      }
      fromChannelText(message);
    };
    const onClose = () => {
      answer({ kind: "channel-failed", reason: "the broker closed the channel" });
      if (mine.open) extension().postMessage({ kind: "channel-closed", channel_id: mine.id });
      mine.open = false;
      if (channel === mine) channel = null;
      for (const [workerId, w] of direct) exited(workerId, w);
    };
    // After the messages that came before the close.
    socket.onclose = () => {
      inbound = inbound.then(onClose);
    };
  }

  function readBinary(blob) {
    return new Promise((resolve) => {
      const reader = new FileReader();
      reader.onload = () => resolve(typeof reader.result === "string" ? reader.result : "");
      reader.onerror = () => resolve("");
      reader.readAsBinaryString(blob);
    });
  }

  // A frame as a binary string (one char per byte): Firefox's path.
  function fromChannelString(s) {
    if (s.length < 3 || s.charCodeAt(0) !== BINARY_WORKER_MESSAGE) return;
    const len = s.charCodeAt(1) | (s.charCodeAt(2) << 8);
    if (s.length < 3 + len) return;
    const id = new Uint8Array(len);
    for (let i = 0; i < len; i++) id[i] = s.charCodeAt(3 + i);
    const w = direct.get(utf8Decoder.decode(id));
    if (!w || w.exited) return;
    toPage(w, { kind: "worker-message", data: btoa(s.slice(3 + len)) });
  }

  function fromChannelFrame(bytes) {
    if (bytes.length < 3 || bytes[0] !== BINARY_WORKER_MESSAGE) return;
    const len = bytes[1] | (bytes[2] << 8);
    if (bytes.length < 3 + len) return;
    const w = direct.get(utf8Decoder.decode(bytes.subarray(3, 3 + len)));
    if (!w || w.exited) return;
    toPage(w, { kind: "worker-message", data: bytesToBase64(bytes.subarray(3 + len)) });
  }

  function fromChannelText(message) {
    const workerId = typeof message.worker_id === "string" ? message.worker_id : null;
    if (workerId === null) return; // an error about a frame: the page cannot act on it
    switch (message.type) {
      case "worker_bound": {
        const w = directWorker(workerId);
        w.bound = true;
        for (const frame of w.pending) channel.socket.send(frame);
        w.pending = [];
        break;
      }
      case "worker_error": {
        const w = direct.get(workerId);
        if (w && !w.exited) {
          toPage(w, {
            kind: "worker-error",
            message: String(message.message ?? ""),
            filename: String(message.filename ?? ""),
            lineno: Number(message.lineno ?? 0),
            colno: 0,
          });
        }
        break;
      }
      case "worker_console": {
        const w = direct.get(workerId);
        if (w && !w.exited) {
          toPage(w, { kind: "worker-console", level: String(message.level), text: String(message.text ?? "") });
        }
        break;
      }
      case "worker_exited": {
        // Possibly before the background's placement for it, when its spawn was refused:
        // then the placement finds it exited and lets the fallback through.
        exited(workerId, directWorker(workerId));
        break;
      }
      default:
        break;
    }
  }

  // `postMessage` from the page to a direct worker: over the channel, in order.
  function postDirect(workerId, data64) {
    const w = direct.get(workerId);
    if (!w || w.exited || !channel?.open) return; // its fallback replays what was not answered
    const id = utf8.encode(workerId);
    const payload = base64ToBytes(data64);
    const frame = new Uint8Array(3 + id.length + payload.length);
    frame[0] = BINARY_WORKER_MESSAGE;
    frame[1] = id.length & 0xff;
    frame[2] = id.length >> 8;
    frame.set(id, 3);
    frame.set(payload, 3 + id.length);
    if (w.bound) channel.socket.send(frame);
    else w.pending.push(frame);
  }

  // What the background says: channel requests stay here; placements of direct workers are
  // recorded (and reach the page without the broker's worker id); a direct worker's end waits
  // for the channel's; everything else goes to the page as it is.
  function fromBackground(message) {
    switch (message?.kind) {
      case "channel-open":
        openChannel(String(message.url), message.token);
        return;
      case "worker-placement": {
        if (typeof message.direct !== "string") break;
        const { direct: workerId, ...placement } = message;
        const w = directWorker(workerId);
        w.id = message.id;
        directByPage.set(message.id, workerId);
        pagePort?.postMessage(placement);
        for (const early of w.early) pagePort?.postMessage({ ...early, id: w.id });
        w.early = [];
        if (w.exited || !channel?.open) exited(workerId, w);
        return;
      }
      case "worker-exited":
      case "worker-fallback": {
        const workerId = directByPage.get(message.id);
        const w = workerId && direct.get(workerId);
        if (w && !w.exited) {
          w.held.push(message);
          return;
        }
        break;
      }
      default:
        break;
    }
    pagePort?.postMessage(message);
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
          if (!message) return;
          const workerId = message.kind === "worker-post" ? directByPage.get(message.id) : undefined;
          if (workerId !== undefined) postDirect(workerId, message.data);
          else extension().postMessage(message);
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
