// The Node executor's runner: evaluated once in a confined node child (see
// broker/src/executor/node/mod.rs for the sandbox, broker/src/node/ for the broker side) by
// the bootstrap passed with `-e`, which reads the boot frame {runner, codec, prelude} from
// stdin and calls this function expression with Node's `require` and that frame.
//
// It builds the same worker world as the QuickJS executor from the same files: the
// structured-clone codec (extension/src/clone-codec.js) and prelude.js, called with a `host`
// implemented here on Node's own primitives. Then it removes Node's own globals (process,
// require, Buffer, fetch...) so a worker script sees what a browser worker sees, plus
// WebAssembly, which V8 has and QuickJS lacks. This world is a convenience, not the boundary:
// the kernel confines the process (the attack matrix in broker/tests/attacks.rs runs its attacks
// with Node's full API, as a script that escaped this world would).
//
// The pipe protocol is the executor's (shared/src/protocol/executor.rs): frames of a
// native-endian u32 length and a payload, JSON or DATA (0x01 + structured-clone bytes). It
// sends `ready` once the world is built (a pre-forked child then waits for `start`), and
// `exited` when the worker closes. Limits are the broker's: the CPU watchdog and the cgroup
// kill this process from outside; nothing here can be trusted to stop a script that loops.
(function (require, boot) {
  'use strict';

  const fs = require('fs');
  const vm = require('vm');
  const nodeCrypto = require('crypto');
  const proc = process;
  const BufferCtor = Buffer;
  const NativeURL = URL;
  const perfNow = performance.now.bind(performance);
  const nodeSetTimeout = setTimeout;
  const nodeClearTimeout = clearTimeout;
  const encoder = new TextEncoder();
  const lenient = new TextDecoder('utf-8');
  const strict = new TextDecoder('utf-8', { fatal: true });
  const DATA = 0x01;
  const MAX_TEXT = 64 * 1024;
  const MAX_MESSAGE = 8 * 1024 * 1024;

  // --- Frames ---------------------------------------------------------------------------

  function writeAll(buf) {
    let off = 0;
    while (off < buf.length) {
      try {
        off += fs.writeSync(1, buf, off, buf.length - off);
      } catch (e) {
        if (e && e.code === 'EAGAIN') continue;
        // The broker is gone: nothing to report to.
        proc.reallyExit(0);
      }
    }
  }

  function sendFrame(payload) {
    const head = BufferCtor.allocUnsafe(4);
    head.writeUInt32LE(payload.length, 0);
    writeAll(BufferCtor.concat([head, payload]));
  }

  function send(message) {
    sendFrame(BufferCtor.from(JSON.stringify(message), 'utf8'));
  }

  function truncate(text) {
    text = String(text);
    return text.length > MAX_TEXT ? text.slice(0, MAX_TEXT) + '... (truncated)' : text;
  }

  let cpuStart = proc.cpuUsage();
  function cpuMs() {
    const u = proc.cpuUsage(cpuStart);
    return Math.round((u.user + u.system) / 1000);
  }

  function exit(reason) {
    send({ type: 'exited', reason: reason, cpu_ms: cpuMs() });
    proc.reallyExit(0);
  }

  // --- The host the prelude builds on -----------------------------------------------------

  let script = { url: '', source: '', imports: [], name: '', module: false };
  let epoch = perfNow();
  let closed = false;

  const host = {
    maxMessageBytes: MAX_MESSAGE,
    post(bytes) {
      if (bytes.length > MAX_MESSAGE) {
        throw new RangeError('postMessage: the message is ' + bytes.length + ' bytes, over the ' + MAX_MESSAGE + ' byte limit');
      }
      const frame = BufferCtor.allocUnsafe(5 + bytes.length);
      frame.writeUInt32LE(bytes.length + 1, 0);
      frame[4] = DATA;
      frame.set(bytes, 5);
      writeAll(frame);
    },
    utf8Encode(text) {
      return encoder.encode(text);
    },
    utf8Decode(bytes, fatal) {
      if (!fatal) return lenient.decode(bytes);
      try {
        return strict.decode(bytes);
      } catch (_) {
        return null;
      }
    },
    random(n) {
      return nodeCrypto.randomFillSync(new Uint8Array(Math.min(n, 65536)));
    },
    imports() {
      return script.imports.map((i) => [i.url, i.source]);
    },
    isModule() {
      return script.module;
    },
    name() {
      return script.name;
    },
    evalScript(source, url) {
      vm.runInThisContext(source, { filename: url });
    },
    console(level, text) {
      send({ type: 'console', level: level, text: truncate(text) });
    },
    error(message, lineno) {
      send({ type: 'error', message: truncate(message), lineno: lineno >= 1 ? lineno : null });
    },
    // V8's out-of-memory is fatal, never an exception; the cgroup reports it.
    isOutOfMemory() {
      return false;
    },
    close() {
      closed = true;
    },
    now() {
      return perfNow() - epoch;
    },
    scriptUrl() {
      return script.url;
    },
  };

  // Node 20's V8 (11.3) predates ArrayBuffer.prototype.transfer and .detached, which the
  // codec detaches a transfer list with and browsers have: build both on Node's own
  // structuredClone, which detaches what it transfers. Every detaching path a worker has
  // (postMessage, transfer) comes through here, so the WeakSet knows each detached buffer.
  if (typeof ArrayBuffer.prototype.transfer !== 'function') {
    const nodeStructuredClone = structuredClone;
    const detachedBuffers = new WeakSet();
    const byteLength = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'byteLength').get;
    const transfer = function transfer(newLength) {
      const length = newLength === undefined ? byteLength.call(this) : Number(newLength);
      if (detachedBuffers.has(this)) throw new TypeError('Cannot perform ArrayBuffer.prototype.transfer on a detached ArrayBuffer');
      const moved = nodeStructuredClone(this, { transfer: [this] });
      detachedBuffers.add(this);
      if (length === byteLength.call(moved)) return moved;
      const out = new ArrayBuffer(length);
      new Uint8Array(out).set(new Uint8Array(moved, 0, Math.min(length, byteLength.call(moved))));
      return out;
    };
    Object.defineProperty(ArrayBuffer.prototype, 'transfer', { value: transfer, writable: true, configurable: true });
    if (!Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'detached')) {
      Object.defineProperty(ArrayBuffer.prototype, 'detached', {
        get: function detached() {
          byteLength.call(this); // a TypeError for anything but an ArrayBuffer, as in V8
          return detachedBuffers.has(this);
        },
        configurable: true,
      });
    }
  }

  vm.runInThisContext(boot.codec, { filename: 'foresight:clone-codec.js' });
  const makeCodec = globalThis.__foresightCloneCodec;
  delete globalThis.__foresightCloneCodec;
  const prelude = vm.runInThisContext(boot.prelude, { filename: 'foresight:prelude.js' });

  // Node's own globals go before the prelude defines the worker's (some share names).
  for (const name of [
    'process', 'Buffer', 'require', 'module', 'exports', '__filename', '__dirname', 'global',
    'setImmediate', 'clearImmediate', 'fetch', 'Request', 'Response', 'Headers', 'FormData',
    'WebSocket', 'BroadcastChannel', 'MessageChannel', 'MessagePort', 'MessageEvent',
    'Blob', 'File', 'navigator', 'crypto', 'Crypto', 'CryptoKey', 'SubtleCrypto',
    'performance', 'Performance', 'PerformanceEntry', 'PerformanceMark', 'PerformanceMeasure',
    'PerformanceObserver', 'PerformanceObserverEntryList', 'PerformanceResourceTiming',
    'structuredClone', 'queueMicrotask', 'atob', 'btoa', 'TextEncoder', 'TextDecoder',
    'URL', 'URLSearchParams', 'DOMException', 'setTimeout', 'clearTimeout', 'setInterval',
    'clearInterval', 'SharedArrayBuffer', 'Atomics',
  ].concat(require('module').builtinModules)) {
    // `node -e` also puts every built-in module on the global object (os, fs, http...).
    try {
      delete globalThis[name];
    } catch (_) {
      // A non-configurable global stays; the prelude overwrites what it defines.
    }
  }
  const internals = prelude(host, makeCodec);

  // --- Module workers: only the supplied graph -----------------------------------------

  const SourceTextModule = vm.SourceTextModule;
  const modules = new Map(); // url -> module

  function resolve(specifier, referrer) {
    let url;
    try {
      url = new NativeURL(specifier, referrer).href;
    } catch (_) {
      throw new TypeError('Failed to resolve module specifier "' + specifier + '"');
    }
    return url;
  }

  function loadModule(url) {
    if (modules.has(url)) return modules.get(url);
    const entry = script.imports.find((i) => i.url === url);
    if (!entry) throw new TypeError('Failed to fetch dynamically imported module: ' + url);
    const module = makeModule(entry.source, url);
    modules.set(url, module);
    return module;
  }

  function makeModule(source, url) {
    return new SourceTextModule(source, {
      identifier: url,
      initializeImportMeta(meta) {
        meta.url = url;
      },
      importModuleDynamically: dynamicImport,
    });
  }

  async function dynamicImport(specifier, referrer) {
    const module = loadModule(resolve(specifier, referrer.identifier || script.url));
    await module.link(linker);
    await module.evaluate();
    return module;
  }

  function linker(specifier, referencing) {
    return loadModule(resolve(specifier, referencing.identifier));
  }

  async function runModule() {
    if (!SourceTextModule) throw new TypeError('module workers need --experimental-vm-modules');
    const root = makeModule(script.source, script.url);
    modules.set(script.url, root);
    await root.link(linker);
    await root.evaluate();
  }

  // --- The event loop ---------------------------------------------------------------------

  let timer = null;
  // Messages that arrived while a module worker's graph was still being evaluated.
  let held = null;

  // After every task: the verdict, then the next timer. Microtasks have run by the time a
  // Node callback returns.
  function settle() {
    if (closed) exit('closed');
    if (timer !== null) {
      nodeClearTimeout(timer);
      timer = null;
    }
    const due = internals.nextTimer();
    if (due >= 0) {
      timer = nodeSetTimeout(fireDue, Math.max(0, due - host.now()));
    }
  }

  function fireDue() {
    timer = null;
    for (const id of internals.dueTimers(host.now())) {
      internals.fireTimer(id);
      if (closed) break;
    }
    // Promise jobs queued by the timers run before the verdict.
    Promise.resolve().then(settle);
  }

  function start(message) {
    script = {
      url: String(message.script_url || ''),
      source: String(message.source || ''),
      imports: Array.isArray(message.imports) ? message.imports : [],
      name: String(message.name || ''),
      module: message.module === true,
    };
    epoch = perfNow();
    cpuStart = proc.cpuUsage();
    internals.configure();
    if (script.module) {
      // Linking and evaluating a module is asynchronous here (QuickJS does it before it reads
      // its input again): messages wait until the module's top level has run, as in a browser.
      const evaluated = runModule();
      internals.watchModule(evaluated);
      held = [];
      const release = () => {
        const waiting = held;
        held = null;
        for (const bytes of waiting) {
          if (closed) break;
          internals.dispatchMessage(bytes);
        }
        Promise.resolve().then(settle);
      };
      evaluated.then(release, release);
    } else {
      try {
        vm.runInThisContext(script.source, { filename: script.url });
      } catch (e) {
        internals.report(e);
      }
    }
    send({ type: 'started' });
    Promise.resolve().then(settle);
  }

  // Unhandled rejections are console errors in a browser worker, not crashes.
  proc.on('unhandledRejection', (reason) => {
    let text;
    try {
      text = reason instanceof Error ? reason.name + ': ' + reason.message : String(reason);
    } catch (_) {
      text = 'exception';
    }
    send({ type: 'console', level: 'error', text: truncate('Uncaught (in promise) ' + text) });
  });
  proc.on('uncaughtException', (e) => {
    internals.report(e);
    settle();
  });

  let started = false;
  let pending = BufferCtor.alloc(0);
  function onFrame(frame) {
    if (frame.length > 0 && frame[0] === DATA) {
      if (!started) return;
      const bytes = new Uint8Array(frame.buffer, frame.byteOffset + 1, frame.length - 1).slice();
      if (held !== null) {
        held.push(bytes);
        return;
      }
      internals.dispatchMessage(bytes);
      Promise.resolve().then(settle);
      return;
    }
    let message;
    try {
      message = JSON.parse(frame.toString('utf8'));
    } catch (_) {
      return;
    }
    if (message.type === 'start' && !started) {
      started = true;
      start(message);
    } else if (message.type === 'terminate') {
      exit('terminated');
    }
  }

  proc.stdin.on('data', (chunk) => {
    pending = pending.length ? BufferCtor.concat([pending, chunk]) : chunk;
    while (pending.length >= 4) {
      const len = pending.readUInt32LE(0);
      if (pending.length < 4 + len) break;
      const frame = pending.subarray(4, 4 + len);
      pending = pending.subarray(4 + len);
      onFrame(frame);
    }
  });
  proc.stdin.on('end', () => exit('terminated'));

  send({ type: 'ready' });
});
