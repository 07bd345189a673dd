// The dedicated-worker world a remote script sees, built on QuickJS before the script runs.
//
// This file is evaluated once as a function expression and called with `host`, the only
// bridge to the executor (post, console, error, isOutOfMemory, close, now, scriptUrl, name,
// utf8Encode, utf8Decode, random, evalScript, imports, maxMessageBytes), and `makeCodec`, the
// structured-clone codec shared with the extension (extension/src/clone-codec.js, evaluated
// just before this file). It defines the globals a worker script expects and returns
// `internals`, the entry points the executor's event loop calls. `host` and `internals` stay
// in this closure, so the script cannot replace them whatever it does to the globals (and
// `host` offers nothing the worker API does not already expose). The script can still break
// its own world, e.g. by patching Array.prototype; the boundary that matters is the process,
// not this file.
//
// Message data crosses as structured-clone bytes (docs/PROTOCOL.md, "Worker data"). There is
// no fetch, XMLHttpRequest, WebSocket or IndexedDB; importScripts serves only the scripts the
// client supplied with the spawn, and throws a NetworkError for any other URL, as a browser
// does for a script that fails to load.
(function (host, makeCodec) {
  'use strict';

  const g = globalThis;
  const codec = makeCodec({
    maxBytes: host.maxMessageBytes,
    utf8Encode: host.utf8Encode,
    utf8Decode: host.utf8Decode,
  });
  // Captured now, so a script that overwrites the globals cannot confuse the bridge.
  const jsonStringify = JSON.stringify;
  const ErrorCtor = Error;
  const StringCtor = String;
  const PromiseResolve = Promise.resolve.bind(Promise);
  const ArrayFrom = Array.from;
  const hasOwn = Object.prototype.hasOwnProperty;
  const reflectApply = Reflect.apply;

  // Asks the executor, which records the verdict: an exhausted heap ends the worker.
  function isOutOfMemory(e) {
    return host.isOutOfMemory(e);
  }

  // --- Errors -------------------------------------------------------------------------

  function describe(e) {
    try {
      if (e instanceof ErrorCtor) {
        return 'Uncaught ' + StringCtor(e.name) + ': ' + StringCtor(e.message);
      }
      return 'Uncaught ' + StringCtor(e);
    } catch (_) {
      return 'Uncaught exception';
    }
  }

  // The line of the worker script in the error's stack (QuickJS: "at f (url:LINE:COL)").
  function lineOf(e) {
    try {
      if (e && typeof e.lineNumber === 'number') return e.lineNumber;
      const stack = e && typeof e.stack === 'string' ? e.stack : '';
      const m = /:(\d+)(?::\d+)?\)?\s*(?:\n|$)/.exec(stack);
      return m ? Number(m[1]) : -1;
    } catch (_) {
      return -1;
    }
  }

  // Tells the page about an error nobody handled.
  function send(e) {
    if (isOutOfMemory(e)) return;
    host.error(describe(e), lineOf(e));
  }

  // An uncaught exception: the worker's own `onerror` and `error` listeners see it first and
  // may handle it (onerror returning true, or preventDefault), as in a browser; otherwise it
  // goes to the page as `worker_error`. The worker keeps running either way.
  function report(e) {
    if (isOutOfMemory(e)) return;
    const message = describe(e);
    const lineno = lineOf(e);
    let handled = false;
    const event = makeEvent('error', {
      message: message,
      filename: location.href,
      lineno: lineno,
      colno: 0,
      error: e,
    });
    const onerror = readHandler('onerror');
    if (onerror) {
      try {
        if (reflectApply(onerror, g, [message, location.href, lineno, 0, e]) === true) {
          handled = true;
        }
      } catch (e2) {
        send(e2);
      }
    }
    for (const listener of snapshot('error')) {
      try {
        callListener(listener, event);
      } catch (e2) {
        send(e2);
      }
      if (event.__stopped) break;
    }
    if (!handled && !event.defaultPrevented) send(e);
  }

  // --- Events ---------------------------------------------------------------------------

  const listeners = { message: [], messageerror: [], error: [] };

  function makeEvent(type, fields) {
    const event = {
      type: type,
      target: g,
      currentTarget: g,
      timeStamp: host.now(),
      defaultPrevented: false,
      __stopped: false,
      preventDefault() {
        this.defaultPrevented = true;
      },
      stopPropagation() {},
      stopImmediatePropagation() {
        this.__stopped = true;
      },
    };
    for (const key in fields) {
      if (hasOwn.call(fields, key)) event[key] = fields[key];
    }
    Object.defineProperty(event, '__stopped', { enumerable: false, writable: true });
    return event;
  }

  function readHandler(name) {
    try {
      const handler = g[name];
      return typeof handler === 'function' ? handler : null;
    } catch (e) {
      report(e);
      return null;
    }
  }

  function snapshot(type) {
    const list = listeners[type];
    return list ? list.slice() : [];
  }

  function callListener(listener, event) {
    if (typeof listener === 'function') {
      reflectApply(listener, g, [event]);
    } else if (listener && typeof listener.handleEvent === 'function') {
      listener.handleEvent(event);
    }
  }

  g.addEventListener = function addEventListener(type, listener) {
    type = StringCtor(type);
    if (listener == null) return;
    if (!listeners[type]) listeners[type] = [];
    if (listeners[type].indexOf(listener) === -1) listeners[type].push(listener);
  };

  g.removeEventListener = function removeEventListener(type, listener) {
    const list = listeners[StringCtor(type)];
    if (!list) return;
    const i = list.indexOf(listener);
    if (i !== -1) list.splice(i, 1);
  };

  g.onmessage = null;
  g.onerror = null;
  g.self = g;

  g.onmessageerror = null;

  function dispatch(type, event) {
    const handler = readHandler('on' + type);
    if (handler) {
      try {
        reflectApply(handler, g, [event]);
      } catch (e) {
        report(e);
      }
    }
    if (event.__stopped) return;
    for (const listener of snapshot(type)) {
      try {
        callListener(listener, event);
      } catch (e) {
        report(e);
      }
      if (event.__stopped) break;
    }
  }

  // A message from the page, as structured-clone bytes (a Uint8Array on this heap). Bytes
  // that do not decode fire `messageerror`, as a failed deserialization does in a browser.
  function dispatchMessage(bytes) {
    let data;
    try {
      data = codec.decode(bytes);
    } catch (e) {
      if (isOutOfMemory(e)) throw e;
      dispatch('messageerror', makeEvent('messageerror', { data: null, origin: '', lastEventId: '', ports: [] }));
      return;
    }
    dispatch('message', makeEvent('message', { data: data, origin: '', lastEventId: '', ports: [] }));
  }

  // --- Messages out, close --------------------------------------------------------------

  g.postMessage = function postMessage(message, transfer) {
    if (arguments.length === 0) {
      throw new TypeError("Failed to execute 'postMessage': 1 argument required, but only 0 present.");
    }
    const list = codec.checkTransfer(
      transfer != null && !Array.isArray(transfer) && typeof transfer === 'object' ? transfer.transfer : transfer,
    );
    const bytes = codec.encode(message);
    codec.detach(list);
    host.post(bytes);
  };

  g.close = function close() {
    host.close();
  };

  g.structuredClone = function structuredClone(value, options) {
    if (arguments.length === 0) {
      throw new TypeError("Failed to execute 'structuredClone': 1 argument required, but only 0 present.");
    }
    return codec.structuredClone(value, options);
  };

  // --- importScripts: only what the client supplied -------------------------------------

  const imports = new Map(); // URL -> source, filled by `configure`

  // Resolves `ref` against `base` the way the URL parser does for the forms scripts use:
  // absolute, scheme-relative, root-relative and path-relative with ./ and ../ segments.
  function resolveUrl(ref, base) {
    ref = StringCtor(ref);
    if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(ref)) return ref;
    const m = /^([a-zA-Z][a-zA-Z0-9+.-]*:)(\/\/[^/?#]*)?([^?#]*)/.exec(base);
    if (!m) return ref;
    const scheme = m[1];
    const authority = m[2] || '';
    if (ref.startsWith('//')) return scheme + ref;
    let path;
    let rest = '';
    const q = ref.search(/[?#]/);
    const refPath = q === -1 ? ref : ref.slice(0, q);
    if (q !== -1) rest = ref.slice(q);
    if (refPath === '') {
      path = m[3];
      if (rest.startsWith('#')) rest = (/\?[^#]*/.exec(base.slice(m[0].length)) || [''])[0] + rest;
    } else if (refPath.startsWith('/')) {
      path = refPath;
    } else {
      path = m[3].slice(0, m[3].lastIndexOf('/') + 1) + refPath;
    }
    const out = [];
    const segments = path.split('/');
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i];
      const last = i === segments.length - 1;
      if (seg === '..') {
        if (out.length > 1) out.pop();
        if (last) out.push('');
      } else if (seg === '.') {
        if (last) out.push('');
      } else {
        out.push(seg);
      }
    }
    let joined = out.join('/');
    if (!joined.startsWith('/')) joined = '/' + joined;
    return scheme + authority + joined + rest;
  }

  let moduleWorker = false;

  // A module worker's evaluation: an error anywhere in its graph or top level is the
  // worker's error event, as a browser reports a module worker that fails to load or run.
  function watchModule(promise) {
    promise.then(undefined, report);
  }

  g.importScripts = function importScripts() {
    if (moduleWorker) {
      throw new TypeError("Failed to execute 'importScripts' on 'WorkerGlobalScope': Module scripts don't support importScripts().");
    }
    // Every URL is resolved and checked before any script runs, as in a browser.
    const scripts = [];
    for (let i = 0; i < arguments.length; i++) {
      const url = resolveUrl(arguments[i], location.href);
      if (!imports.has(url)) {
        throw new DOMException(
          "Failed to execute 'importScripts' on 'WorkerGlobalScope': The script at '" +
            url +
            "' failed to load.",
          'NetworkError',
        );
      }
      scripts.push([url, imports.get(url)]);
    }
    for (const [url, source] of scripts) host.evalScript(source, url);
  };

  // --- Console --------------------------------------------------------------------------

  function format(value) {
    if (typeof value === 'string') return value;
    if (value instanceof ErrorCtor) {
      return value.stack ? StringCtor(value) + '\n' + value.stack : StringCtor(value);
    }
    if (typeof value === 'object' && value !== null) {
      try {
        const json = jsonStringify(value);
        if (json !== undefined) return json;
      } catch (_) {
        // Cyclic or BigInt: fall back to String().
      }
    }
    try {
      return StringCtor(value);
    } catch (_) {
      return '[unprintable]';
    }
  }

  function logger(level) {
    return function () {
      const parts = [];
      for (let i = 0; i < arguments.length; i++) parts.push(format(arguments[i]));
      host.console(level, parts.join(' '));
    };
  }

  g.console = {
    log: logger('log'),
    info: logger('info'),
    warn: logger('warn'),
    error: logger('error'),
    debug: logger('debug'),
    trace: logger('debug'),
  };

  // --- Timers and microtasks ------------------------------------------------------------

  // id -> { fn, args, due (ms on host.now()'s clock), interval (ms, or -1 for a timeout) }
  const timers = new Map();
  let nextTimerId = 1;

  function addTimer(fn, delay, args, repeat) {
    if (typeof fn !== 'function') {
      const code = StringCtor(fn);
      fn = function () {
        (0, eval)(code);
      };
    }
    delay = Number(delay);
    if (!(delay >= 0)) delay = 0;
    // An interval of 0 would never let the event loop look at its input again.
    const interval = repeat ? (delay < 1 ? 1 : delay) : -1;
    const id = nextTimerId++;
    timers.set(id, { fn: fn, args: args, due: host.now() + delay, interval: interval });
    return id;
  }

  g.setTimeout = function setTimeout(fn, delay) {
    return addTimer(fn, delay, ArrayFrom(arguments).slice(2), false);
  };
  g.setInterval = function setInterval(fn, delay) {
    return addTimer(fn, delay, ArrayFrom(arguments).slice(2), true);
  };
  g.clearTimeout = function clearTimeout(id) {
    timers.delete(Number(id));
  };
  g.clearInterval = g.clearTimeout;

  g.queueMicrotask = function queueMicrotask(fn) {
    if (typeof fn !== 'function') {
      throw new TypeError("queueMicrotask's argument must be a function");
    }
    PromiseResolve().then(function () {
      try {
        fn();
      } catch (e) {
        report(e);
      }
    });
  };

  // When the earliest timer is due, or -1 when none is pending.
  function nextTimer() {
    let earliest = -1;
    for (const timer of timers.values()) {
      if (earliest < 0 || timer.due < earliest) earliest = timer.due;
    }
    return earliest;
  }

  // The ids of timers due at `now`, in the order they fire. Timers added while these run
  // wait for the next turn of the event loop, so input is never starved.
  function dueTimers(now) {
    const due = [];
    for (const [id, timer] of timers) {
      if (timer.due <= now) due.push([timer.due, id]);
    }
    due.sort(function (a, b) {
      return a[0] - b[0] || a[1] - b[1];
    });
    return due.map(function (entry) {
      return entry[1];
    });
  }

  function fireTimer(id) {
    const timer = timers.get(id);
    if (!timer) return; // cleared by an earlier callback
    if (timer.interval >= 0) {
      timer.due = host.now() + timer.interval;
    } else {
      timers.delete(id);
    }
    try {
      reflectApply(timer.fn, g, timer.args);
    } catch (e) {
      report(e);
    }
  }

  // --- A little of WorkerGlobalScope ----------------------------------------------------

  // Filled in by `configure` when the worker's script arrives (an executor is prepared
  // before it knows which worker it will run).
  const location = {
    href: '',
    protocol: '',
    host: '',
    hostname: '',
    port: '',
    pathname: '',
    search: '',
    hash: '',
    origin: 'null',
    toString() {
      return location.href;
    },
  };
  g.location = location;
  g.name = '';

  function configure() {
    const href = host.scriptUrl();
    const parts = /^([a-zA-Z][a-zA-Z0-9+.-]*:)(?:\/\/(([^/?#:]*)(?::(\d+))?))?([^?#]*)(\?[^#]*)?(#.*)?$/.exec(href) || [];
    location.href = href;
    location.protocol = parts[1] || '';
    location.host = parts[2] || '';
    location.hostname = parts[3] || '';
    location.port = parts[4] || '';
    location.pathname = parts[5] || '';
    location.search = parts[6] || '';
    location.hash = parts[7] || '';
    location.origin = parts[2] ? parts[1] + '//' + parts[2] : 'null';
    g.name = host.name();
    moduleWorker = host.isModule();
    g.isSecureContext = location.protocol === 'https:';
    g.origin = location.origin;
    timeOrigin = Date.now();
    g.performance.timeOrigin = timeOrigin;
    for (const script of host.imports()) imports.set(script[0], script[1]);
  }
  g.navigator = { userAgent: 'foresight-broker', hardwareConcurrency: 1, onLine: false, language: 'en' };

  // performance.now, coarsened to 100 us as browsers do for pages that are not
  // cross-origin isolated (QuickJS's own is microsecond-precise).
  let timeOrigin = Date.now();
  g.performance = {
    timeOrigin: timeOrigin,
    now() {
      return Math.floor(host.now() * 10) / 10;
    },
  };

  // --- URL and URLSearchParams (the common, read-mostly part of the URL standard) ----------

  const URL_PARTS = /^([a-zA-Z][a-zA-Z0-9+.-]*:)(?:\/\/(?:[^@/?#]*@)?(([^/?#:]*)(?::(\d*))?))?([^?#]*)(\?[^#]*)?(#.*)?$/;

  class URLSearchParams {
    constructor(init) {
      this._list = [];
      if (init == null) return;
      if (typeof init === 'object') {
        const pairs = typeof init[Symbol.iterator] === 'function' ? ArrayFrom(init) : Object.entries(init);
        for (const [k, v] of pairs) this._list.push([StringCtor(k), StringCtor(v)]);
        return;
      }
      let text = StringCtor(init);
      if (text.startsWith('?')) text = text.slice(1);
      for (const part of text.split('&')) {
        if (!part) continue;
        const eq = part.indexOf('=');
        const decode = (t) => decodeURIComponent(t.replace(/\+/g, ' '));
        this._list.push(eq < 0 ? [decode(part), ''] : [decode(part.slice(0, eq)), decode(part.slice(eq + 1))]);
      }
    }
    append(k, v) {
      this._list.push([StringCtor(k), StringCtor(v)]);
    }
    delete(k) {
      this._list = this._list.filter((p) => p[0] !== StringCtor(k));
    }
    get(k) {
      const p = this._list.find((e) => e[0] === StringCtor(k));
      return p ? p[1] : null;
    }
    getAll(k) {
      return this._list.filter((e) => e[0] === StringCtor(k)).map((e) => e[1]);
    }
    has(k) {
      return this._list.some((e) => e[0] === StringCtor(k));
    }
    set(k, v) {
      const i = this._list.findIndex((e) => e[0] === StringCtor(k));
      this.delete(k);
      this._list.splice(i < 0 ? this._list.length : i, 0, [StringCtor(k), StringCtor(v)]);
    }
    forEach(fn, thisArg) {
      for (const [k, v] of this._list) fn.call(thisArg, v, k, this);
    }
    entries() {
      return this._list.map((p) => [p[0], p[1]])[Symbol.iterator]();
    }
    keys() {
      return this._list.map((p) => p[0])[Symbol.iterator]();
    }
    values() {
      return this._list.map((p) => p[1])[Symbol.iterator]();
    }
    [Symbol.iterator]() {
      return this.entries();
    }
    toString() {
      const enc = (t) => encodeURIComponent(t).replace(/%20/g, '+');
      return this._list.map(([k, v]) => enc(k) + '=' + enc(v)).join('&');
    }
  }
  g.URLSearchParams = URLSearchParams;

  class URL {
    constructor(url, base) {
      let href = StringCtor(url).trim();
      if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(href)) {
        if (base === undefined) throw new TypeError("Failed to construct 'URL': Invalid URL");
        href = resolveUrl(href, StringCtor(base instanceof URL ? base.href : base));
      }
      const m = URL_PARTS.exec(href);
      if (!m) throw new TypeError("Failed to construct 'URL': Invalid URL");
      const special = /^(https?|wss?|ftp|file):$/i.test(m[1]);
      this.protocol = m[1].toLowerCase();
      this.hostname = (m[3] || '').toLowerCase();
      const defaultPort = { 'http:': '80', 'https:': '443', 'ws:': '80', 'wss:': '443' }[this.protocol];
      this.port = m[4] && m[4] !== defaultPort ? m[4] : '';
      this.host = this.hostname + (this.port ? ':' + this.port : '');
      this.pathname = m[5] || (special ? '/' : '');
      this.search = m[6] && m[6] !== '?' ? m[6] : '';
      this.hash = m[7] && m[7] !== '#' ? m[7] : '';
      this.username = '';
      this.password = '';
      this.searchParams = new URLSearchParams(this.search);
    }
    get origin() {
      return this.host && /^(https?|wss?|ftp):$/.test(this.protocol) ? this.protocol + '//' + this.host : 'null';
    }
    get href() {
      return this.protocol + (this.host || this.protocol === 'file:' ? '//' : '') + this.host + this.pathname + this.search + this.hash;
    }
    toString() {
      return this.href;
    }
    toJSON() {
      return this.href;
    }
  }
  g.URL = URL;

  // --- DOMException, TextEncoder/TextDecoder, base64, crypto -----------------------------

  const legacyCodes = {
    IndexSizeError: 1, HierarchyRequestError: 3, WrongDocumentError: 4, InvalidCharacterError: 5,
    NoModificationAllowedError: 7, NotFoundError: 8, NotSupportedError: 9, InvalidStateError: 11,
    SyntaxError: 12, InvalidModificationError: 13, NamespaceError: 14, InvalidAccessError: 15,
    TypeMismatchError: 17, SecurityError: 18, NetworkError: 19, AbortError: 20, URLMismatchError: 21,
    QuotaExceededError: 22, TimeoutError: 23, InvalidNodeTypeError: 24, DataCloneError: 25,
  };
  class DOMException extends ErrorCtor {
    constructor(message, name) {
      super(message === undefined ? '' : StringCtor(message));
      Object.defineProperty(this, 'name', {
        value: name === undefined ? 'Error' : StringCtor(name),
        configurable: true,
        writable: true,
      });
    }
    get code() {
      return legacyCodes[this.name] || 0;
    }
  }
  g.DOMException = DOMException;

  class TextEncoder {
    get encoding() {
      return 'utf-8';
    }
    encode(input) {
      const s = input === undefined ? '' : StringCtor(input);
      return host.utf8Encode(s.isWellFormed() ? s : s.toWellFormed());
    }
    encodeInto(input, dest) {
      const bytes = this.encode(input);
      // Whole code points only, as the standard requires.
      let n = Math.min(bytes.length, dest.length);
      while (n > 0 && n < bytes.length && (bytes[n] & 0xc0) === 0x80) n--;
      dest.set(bytes.subarray(0, n));
      let read = 0;
      const text = host.utf8Decode(bytes.subarray(0, n));
      read = text.length;
      return { read: read, written: n };
    }
  }
  g.TextEncoder = TextEncoder;

  class TextDecoder {
    constructor(label, options) {
      const l = label === undefined ? 'utf-8' : StringCtor(label).trim().toLowerCase();
      if (l !== 'utf-8' && l !== 'utf8' && l !== 'unicode-1-1-utf-8') {
        throw new RangeError("Failed to construct 'TextDecoder': The encoding label provided ('" + label + "') is invalid.");
      }
      this.fatal = !!(options && options.fatal);
      this.ignoreBOM = !!(options && options.ignoreBOM);
    }
    get encoding() {
      return 'utf-8';
    }
    decode(input) {
      if (input === undefined) return '';
      let bytes;
      if (input instanceof ArrayBuffer) bytes = new Uint8Array(input);
      else if (ArrayBuffer.isView(input)) bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
      else throw new TypeError("Failed to execute 'decode' on 'TextDecoder': The provided value is not of type '(ArrayBuffer or ArrayBufferView)'.");
      if (!this.ignoreBOM && bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
        bytes = bytes.subarray(3);
      }
      const text = host.utf8Decode(bytes, this.fatal);
      if (text == null) throw new TypeError("Failed to execute 'decode' on 'TextDecoder': The encoded data was not valid.");
      return text;
    }
  }
  g.TextDecoder = TextDecoder;

  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  g.btoa = function btoa(data) {
    const s = StringCtor(data);
    let out = '';
    for (let i = 0; i < s.length; i += 3) {
      const a = s.charCodeAt(i);
      const b = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      const c = i + 2 < s.length ? s.charCodeAt(i + 2) : 0;
      if (a > 255 || b > 255 || c > 255) {
        throw new DOMException("Failed to execute 'btoa' on 'WorkerGlobalScope': The string to be encoded contains characters outside of the Latin1 range.", 'InvalidCharacterError');
      }
      const n = (a << 16) | (b << 8) | c;
      out += B64[n >> 18] + B64[(n >> 12) & 63] + (i + 1 < s.length ? B64[(n >> 6) & 63] : '=') + (i + 2 < s.length ? B64[n & 63] : '=');
    }
    return out;
  };
  g.atob = function atob(data) {
    let s = StringCtor(data).replace(/[\t\n\f\r ]/g, '');
    if (s.length % 4 === 0) s = s.replace(/==?$/, '');
    if (s.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(s)) {
      throw new DOMException("Failed to execute 'atob' on 'WorkerGlobalScope': The string to be decoded is not correctly encoded.", 'InvalidCharacterError');
    }
    let out = '';
    let bits = 0;
    let acc = 0;
    for (let i = 0; i < s.length; i++) {
      acc = (acc << 6) | B64.indexOf(s[i]);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out += StringCtor.fromCharCode((acc >> bits) & 255);
      }
    }
    return out;
  };

  const integerArrays = ['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'BigInt64Array', 'BigUint64Array'];
  function getRandomValues(array) {
    const tag = array && ArrayBuffer.isView(array) && !(array instanceof DataView) ? array[Symbol.toStringTag] : undefined;
    if (integerArrays.indexOf(tag) === -1) {
      throw new DOMException("Failed to execute 'getRandomValues' on 'Crypto': The provided ArrayBufferView is of type '" + (tag || typeof array) + "', which is not an integer array type.", 'TypeMismatchError');
    }
    if (array.byteLength > 65536) {
      throw new DOMException("Failed to execute 'getRandomValues' on 'Crypto': The ArrayBufferView's byte length (" + array.byteLength + ') exceeds the number of bytes of entropy available via this API (65536).', 'QuotaExceededError');
    }
    new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(host.random(array.byteLength));
    return array;
  }
  g.crypto = {
    getRandomValues: getRandomValues,
    randomUUID() {
      const b = host.random(16);
      b[6] = (b[6] & 0x0f) | 0x40;
      b[8] = (b[8] & 0x3f) | 0x80;
      let hex = '';
      for (let i = 0; i < 16; i++) hex += (b[i] + 0x100).toString(16).slice(1);
      return hex.slice(0, 8) + '-' + hex.slice(8, 12) + '-' + hex.slice(12, 16) + '-' + hex.slice(16, 20) + '-' + hex.slice(20);
    },
  };

  return {
    configure: configure,
    watchModule: watchModule,
    dispatchMessage: dispatchMessage,
    nextTimer: nextTimer,
    dueTimers: dueTimers,
    fireTimer: fireTimer,
    report: report,
  };
});
