// The dedicated-worker world a remote script sees, built on QuickJS before the script runs.
//
// This file is evaluated once as a function expression and called with `host`, the only
// bridge to the executor (post, console, error, isOutOfMemory, close, now, scriptUrl). It
// defines the globals a worker script expects and returns `internals`, the entry points the
// executor's event loop calls. `host` and `internals` stay in this closure, so the script cannot
// replace them whatever it does to the globals (and `host` offers nothing the worker API does
// not already expose). The script can still break its own world, e.g. by patching
// Array.prototype; the boundary that matters is the process, not this file.
//
// Deliberate differences from a browser, because protocol version 1 carries JSON: message
// data goes through JSON.stringify/JSON.parse (no Map, Date, typed arrays, transferables),
// and there is no importScripts, fetch, XMLHttpRequest or WebSocket.
(function (host) {
  'use strict';

  const g = globalThis;
  // Captured now, so a script that overwrites the globals cannot confuse the bridge.
  const jsonParse = JSON.parse;
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

  const listeners = { message: [], error: [] };

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

  function dispatchMessage(json) {
    const event = makeEvent('message', {
      data: jsonParse(json),
      origin: '',
      lastEventId: '',
      ports: [],
    });
    const onmessage = readHandler('onmessage');
    if (onmessage) {
      try {
        reflectApply(onmessage, g, [event]);
      } catch (e) {
        report(e);
      }
    }
    if (event.__stopped) return;
    for (const listener of snapshot('message')) {
      try {
        callListener(listener, event);
      } catch (e) {
        report(e);
      }
      if (event.__stopped) break;
    }
  }

  // --- Messages out, close --------------------------------------------------------------

  g.postMessage = function postMessage(message) {
    // JSON.stringify throws on cycles and BigInt (the caller sees it, like a DataCloneError)
    // and gives undefined for undefined and functions, which travel as null.
    const json = jsonStringify(message);
    host.post(json === undefined ? 'null' : json);
  };

  g.close = function close() {
    host.close();
  };

  g.importScripts = function importScripts() {
    throw new ErrorCtor('importScripts is not available in a remote worker');
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

  const href = host.scriptUrl();
  const location = {
    href: href,
    toString() {
      return href;
    },
  };
  g.location = location;
  g.navigator = { userAgent: 'foresight-broker', hardwareConcurrency: 1, onLine: false };

  return {
    dispatchMessage: dispatchMessage,
    nextTimer: nextTimer,
    dueTimers: dueTimers,
    fireTimer: fireTimer,
    report: report,
  };
});
