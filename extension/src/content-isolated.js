// Isolated-world content script, injected at document_start before content-main.js.
//
// 1. Receives the private MessagePort that content-main.js (MAIN world) hands over, and relays
//    worker traffic between it and the background. The handover is a window message the
//    listener below consumes before any page script can see it: both content scripts run
//    before the page's first script, this listener is registered first, and it stops the
//    event's propagation.
// 2. Captures the page's sources (scripts, inline handlers, stylesheets) and activity once the
//    document is parsed, and sends them to the background for estimation.
//
// A classic script (content scripts cannot be modules), so it is self-contained.
(() => {
  const api = globalThis.browser ?? globalThis.chrome;
  const PAGE_TO_EXTENSION = new Set(["worker-create", "worker-post", "worker-terminate"]);
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
        // Only the three worker messages pass; anything else from the page is dropped.
        if (PAGE_TO_EXTENSION.has(e.data?.kind)) extension().postMessage(e.data);
      };
    },
    true,
  );

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
        },
      },
    });
  }

  // Connect now, so the page's first `new Worker()` finds the channel open.
  extension();
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", capture, { once: true });
  } else {
    capture();
  }
})();
