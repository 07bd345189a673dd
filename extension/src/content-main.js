// MAIN-world content script, injected at document_start before any page script runs (after
// clone-codec.js, which it takes the structured-clone codec from and hides again).
//
// Replaces `window.Worker` with a stand-in that implements the Worker interface and asks the
// orchestrator where each worker should run. Until the answer arrives, the page's messages are
// snapshotted (structured clone, transfer lists honoured) and queued; then the worker runs
// either as a real local Worker or on the broker, and the page sees the same interface, the
// same events and the same messages in the same order either way.
//
// A remote worker's messages cross as structured-clone bytes (clone-codec.js), base64 on the
// extension's ports. While remote, the stand-in keeps the messages the worker has not yet
// answered (everything posted since the worker's last message); when the orchestrator says
// the remote side is gone (lease ended, broker lost, executor crashed) or a message cannot
// go remote (a Blob, a MessagePort, over the size limit), it starts a local Worker and
// replays them in order: a request/response worker's page sees no error. A worker that keeps
// state across messages restarts from its script (ARCHITECTURE.md, "Moving a worker").
//
// Security: this file shares the page's realm, so everything it uses after start-up is
// captured now, before page code exists, and called through the captures (a page that later
// patches MessageEvent.prototype.data, EventTarget.prototype.dispatchEvent or Array.prototype
// cannot read or forge the extension's messages). It talks to the isolated-world script only
// over a private MessageChannel handed over at start-up (see content-isolated.js); both
// scripts refuse to set up when page code may already have run.
(() => {
  "use strict";
  const G = globalThis;
  const makeCodec = G.__foresightCloneCodec;
  try {
    delete G.__foresightCloneCodec;
  } catch {
    // A non-configurable global would mean someone else defined it: do not run then.
    return;
  }
  const NativeWorker = G.Worker;
  if (typeof NativeWorker !== "function" || typeof makeCodec !== "function") return;
  // Injected late (Firefox injects into tabs already open when the extension is installed):
  // page code has run and may have replaced anything below. Leave workers alone.
  if (document.readyState !== "loading") return;

  const call = Function.prototype.call;
  const uncurry = (f) => call.bind(f);
  const getter = (proto, name) => uncurry(Object.getOwnPropertyDescriptor(proto, name).get);
  const setter = (proto, name) => uncurry(Object.getOwnPropertyDescriptor(proto, name).set);

  const codec = makeCodec();
  const MessageChannelCtor = MessageChannel;
  const portPost = uncurry(MessagePort.prototype.postMessage);
  const setPortOnMessage = setter(MessagePort.prototype, "onmessage");
  const eventData = getter(MessageEvent.prototype, "data");
  const dispatch = uncurry(EventTarget.prototype.dispatchEvent);
  const addListener = uncurry(EventTarget.prototype.addEventListener);
  const removeListener = uncurry(EventTarget.prototype.removeEventListener);
  const isDefaultPrevented = getter(Event.prototype, "defaultPrevented");
  const preventDefault = uncurry(Event.prototype.preventDefault);
  const MessageEventCtor = MessageEvent;
  const ErrorEventCtor = ErrorEvent;
  const errorEventFields = {
    message: getter(ErrorEvent.prototype, "message"),
    filename: getter(ErrorEvent.prototype, "filename"),
    lineno: getter(ErrorEvent.prototype, "lineno"),
    colno: getter(ErrorEvent.prototype, "colno"),
    error: getter(ErrorEvent.prototype, "error"),
  };
  const URLCtor = URL;
  const urlHref = getter(URL.prototype, "href");
  const urlProtocol = getter(URL.prototype, "protocol");
  const baseURI = getter(Node.prototype, "baseURI");
  const nativeCreateObjectURL = URL.createObjectURL;
  const nativeRevokeObjectURL = URL.revokeObjectURL;
  const blobText = uncurry(Blob.prototype.text);
  const BlobProto = Blob.prototype;
  const nativeStructuredClone = G.structuredClone;
  const workerPost = uncurry(NativeWorker.prototype.postMessage);
  const workerTerminate = uncurry(NativeWorker.prototype.terminate);
  const promiseThen = uncurry(Promise.prototype.then);
  const setTimer = G.setTimeout;
  const clearTimer = G.clearTimeout;
  const hasOwn = uncurry(Object.prototype.hasOwnProperty);
  const getPrototypeOf = Object.getPrototypeOf;
  const isArray = Array.isArray;
  const StringCtor = String;
  const ObjectCreate = Object.create;
  const reflectApply = Reflect.apply;
  const atobFn = G.atob;
  const btoaFn = G.btoa;
  const fromCharCode = String.fromCharCode;
  const charCodeAt = uncurry(String.prototype.charCodeAt);
  const decodeURIComponentFn = decodeURIComponent;
  const textDecoder = new TextDecoder();
  const textDecode = uncurry(TextDecoder.prototype.decode);
  const toBase64 = Uint8Array.prototype.toBase64 ? uncurry(Uint8Array.prototype.toBase64) : null;
  const fromBase64 = Uint8Array.fromBase64 ? Uint8Array.fromBase64.bind(Uint8Array) : null;
  const U8 = Uint8Array;
  const taSubarray = uncurry(Object.getPrototypeOf(Uint8Array.prototype).subarray);
  const nativeConsole = G.console;
  const consoleMethods = ObjectCreate(null);
  for (const level of ["log", "info", "warn", "error", "debug"]) {
    consoleMethods[level] = uncurry(nativeConsole[level]);
  }

  // If the extension never answers (it was reloaded, say), the page must not hang.
  const PLACEMENT_TIMEOUT_MS = 15_000;
  // A remote worker that never answers must not make the page hold its messages forever:
  // past these, a failure is reported as an error instead of replayed.
  const REPLAY_MAX_MESSAGES = 1024;

  // --- base64 on the ports ---------------------------------------------------------------

  function bytesToBase64(bytes) {
    if (toBase64) return toBase64(bytes);
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      const chunk = taSubarray(bytes, i, i + 0x8000);
      s += reflectApply(fromCharCode, null, chunk);
    }
    return btoaFn(s);
  }

  function base64ToBytes(text) {
    if (fromBase64) return fromBase64(text);
    const s = atobFn(text);
    const out = new U8(s.length);
    for (let i = 0; i < s.length; i++) out[i] = charCodeAt(s, i);
    return out;
  }

  // --- blob: and data: worker sources ----------------------------------------------------

  // The Blob behind each live object URL, so a worker's source can be read even when the
  // page revokes the URL right after `new Worker(url)` (a common pattern).
  const blobs = new Map();
  const mapGet = uncurry(Map.prototype.get);
  const mapSet = uncurry(Map.prototype.set);
  const mapDelete = uncurry(Map.prototype.delete);
  URL.createObjectURL = function createObjectURL(object) {
    const url = reflectApply(nativeCreateObjectURL, URLCtor, [object]);
    try {
      let proto = object;
      while (proto !== null && proto !== BlobProto) proto = getPrototypeOf(proto);
      if (proto === BlobProto) mapSet(blobs, url, object);
    } catch {
      // A revoked proxy or similar: not a Blob we can read.
    }
    return url;
  };
  URL.revokeObjectURL = function revokeObjectURL(url) {
    mapDelete(blobs, StringCtor(url));
    return reflectApply(nativeRevokeObjectURL, URLCtor, [url]);
  };

  // The text of a data: URL, or null when it is not one we can read.
  function dataUrlText(url) {
    const comma = url.indexOf(",");
    if (comma < 0) return null;
    const meta = url.slice(5, comma);
    const body = url.slice(comma + 1);
    try {
      if (/;base64$/i.test(meta)) {
        return textDecode(textDecoder, base64ToBytes(decodeURIComponentFn(body).replace(/\s/g, "")));
      }
      return decodeURIComponentFn(body);
    } catch {
      return null;
    }
  }

  // --- The private channel ---------------------------------------------------------------

  const channel = new MessageChannelCtor();
  const port = channel.port1;
  const send = (message, transfer) => portPost(port, message, transfer || []);
  const receivers = ObjectCreate(null); // worker id -> (message) => void
  let nextId = 1;

  function field(o, name) {
    return o !== null && typeof o === "object" && hasOwn(o, name) ? o[name] : undefined;
  }

  setPortOnMessage(port, (event) => {
    const message = eventData(event);
    const id = field(message, "id");
    const receive = typeof id === "number" ? receivers[id] : undefined;
    if (receive) receive(message);
  });
  window.postMessage({ foresight: "channel" }, "*", [channel.port2]);

  class Worker extends EventTarget {
    #id = nextId++;
    #mode = "pending"; // "pending" | "local" | "remote" | "closed" | "terminated"
    #queue = []; // snapshots posted before the placement
    #unanswered = []; // snapshots posted to the remote worker since its last message
    #replayable = true;
    #native = null;
    #url;
    #blob = null;
    #options;
    #timer;
    #handlers = ObjectCreate(null); // type -> {value, listener}

    constructor(scriptURL, options = undefined) {
      super();
      if (arguments.length === 0) {
        throw new TypeError("Failed to construct 'Worker': 1 argument required, but only 0 present.");
      }
      const url = new URLCtor(StringCtor(scriptURL), baseURI(document));
      this.#url = urlHref(url);
      const type = options?.type === undefined ? "classic" : StringCtor(options.type);
      if (type !== "classic" && type !== "module") {
        throw new TypeError(
          `Failed to construct 'Worker': The provided value '${type}' is not a valid enum value of type WorkerType.`,
        );
      }
      this.#options = {
        type,
        name: options?.name === undefined ? "" : StringCtor(options.name),
        credentials: options?.credentials === undefined ? "same-origin" : StringCtor(options.credentials),
      };
      const id = this.#id;
      receivers[id] = (message) => this.#receive(message);
      this.#timer = setTimer(() => this.#runLocally(), PLACEMENT_TIMEOUT_MS);
      const protocol = urlProtocol(url);
      const create = (source) =>
        send({
          kind: "worker-create",
          id,
          url: this.#url,
          options: { type: this.#options.type, name: this.#options.name },
          source,
        });
      if (protocol === "blob:") {
        const blob = mapGet(blobs, this.#url);
        if (blob) {
          this.#blob = blob;
          promiseThen(
            blobText(blob),
            (text) => create(text),
            () => create(null),
          );
        } else {
          create(null);
        }
      } else if (protocol === "data:") {
        create(dataUrlText(this.#url));
      } else {
        create(null);
      }
    }

    postMessage(message, transfer = undefined) {
      if (arguments.length === 0) {
        throw new TypeError("Failed to execute 'postMessage' on 'Worker': 1 argument required, but only 0 present.");
      }
      if (this.#mode === "local") {
        workerPost(this.#native, message, transfer);
        return;
      }
      // The snapshot is taken now, as a real postMessage takes it: the native algorithm
      // throws the page's DataCloneError and detaches transferred buffers.
      let list = [];
      if (isArray(transfer)) list = transfer;
      else if (transfer !== undefined && transfer !== null) list = transfer.transfer ?? [];
      const snapshot = nativeStructuredClone(message, { transfer: list });
      switch (this.#mode) {
        case "pending":
          this.#queue[this.#queue.length] = snapshot;
          break;
        case "remote":
          this.#postRemote(snapshot);
          break;
        default:
          break; // closed or terminated: dropped, as by a real Worker
      }
    }

    terminate() {
      if (this.#mode === "local") workerTerminate(this.#native);
      if (this.#mode === "remote" || this.#mode === "pending") send({ kind: "worker-terminate", id: this.#id });
      this.#mode = "terminated";
      this.#queue = [];
      this.#unanswered = [];
      clearTimer(this.#timer);
      delete receivers[this.#id];
    }

    #handler(type) {
      return this.#handlers[type]?.value ?? null;
    }

    // Event handler attributes behave as in the DOM: a listener registered when first set,
    // in order with addEventListener's; a non-function value is kept but never called.
    #setHandler(type, value) {
      const slot = this.#handlers[type];
      const v = typeof value === "function" || (typeof value === "object" && value !== null) ? value : null;
      if (v === null) {
        if (slot) removeListener(this, type, slot.listener);
        delete this.#handlers[type];
        return;
      }
      if (slot) {
        slot.value = v;
        return;
      }
      const entry = {
        value: v,
        listener: (event) => {
          const fn = entry.value;
          if (typeof fn !== "function") return;
          if (reflectApply(fn, this, [event]) === false) preventDefault(event);
        },
      };
      this.#handlers[type] = entry;
      addListener(this, type, entry.listener);
    }

    get onmessage() {
      return this.#handler("message");
    }
    set onmessage(v) {
      this.#setHandler("message", v);
    }
    get onmessageerror() {
      return this.#handler("messageerror");
    }
    set onmessageerror(v) {
      this.#setHandler("messageerror", v);
    }
    get onerror() {
      return this.#handler("error");
    }
    set onerror(v) {
      this.#setHandler("error", v);
    }

    #postRemote(snapshot) {
      let bytes;
      try {
        bytes = codec.encode(snapshot);
      } catch (e) {
        // Something only a local worker can receive (a Blob, a MessagePort, a very large
        // message): move the worker here, with this message last.
        this.#unanswered[this.#unanswered.length] = snapshot;
        this.#moveLocal(`a message could not go remote: ${e?.message ?? e}`);
        return;
      }
      if (this.#replayable) {
        if (this.#unanswered.length >= REPLAY_MAX_MESSAGES) {
          this.#replayable = false;
          this.#unanswered = [];
        } else {
          this.#unanswered[this.#unanswered.length] = snapshot;
        }
      }
      send({ kind: "worker-post", id: this.#id, data: bytesToBase64(bytes) });
    }

    #receive(message) {
      switch (field(message, "kind")) {
        case "worker-placement":
          if (this.#mode !== "pending") return;
          clearTimer(this.#timer);
          if (field(message, "target") === "remote") {
            this.#mode = "remote";
            const queued = this.#queue;
            this.#queue = [];
            for (let i = 0; i < queued.length && this.#mode === "remote"; i++) this.#postRemote(queued[i]);
          } else {
            this.#runLocally();
          }
          break;
        case "worker-message": {
          if (this.#mode !== "remote" && this.#mode !== "closed") return;
          // Everything posted so far counts as answered.
          this.#unanswered = [];
          this.#replayable = true;
          let data;
          try {
            data = codec.decode(base64ToBytes(StringCtor(field(message, "data"))));
          } catch {
            dispatch(this, new MessageEventCtor("messageerror", { data: null }));
            return;
          }
          dispatch(this, new MessageEventCtor("message", { data }));
          break;
        }
        case "worker-error":
          if (this.#mode !== "remote" && this.#mode !== "closed") return;
          this.#emitError(
            StringCtor(field(message, "message") ?? ""),
            StringCtor(field(message, "filename") || this.#url),
            Number(field(message, "lineno") ?? 0),
            Number(field(message, "colno") ?? 0),
          );
          break;
        case "worker-console": {
          if (this.#mode !== "remote" && this.#mode !== "closed") return;
          const level = StringCtor(field(message, "level"));
          const log = consoleMethods[level] ?? consoleMethods.log;
          log(nativeConsole, StringCtor(field(message, "text") ?? ""));
          break;
        }
        case "worker-exited": {
          const reason = StringCtor(field(message, "reason"));
          if (this.#mode !== "remote") return;
          if (reason === "closed") {
            // close() in the worker: later messages are dropped, as by a real Worker.
            this.#mode = "closed";
          } else {
            // A limit: the worker is stopped for good and the page is told why, typed.
            this.#mode = "closed";
            this.#emitError(
              `RemoteWorkerError: ${reason}: ${StringCtor(field(message, "detail") ?? "")}`,
              this.#url,
              0,
              0,
            );
          }
          break;
        }
        case "worker-fallback":
          if (this.#mode === "remote" || this.#mode === "pending") {
            this.#moveLocal(StringCtor(field(message, "reason")));
          }
          break;
        default:
          break;
      }
    }

    #emitError(message, filename, lineno, colno) {
      const event = new ErrorEventCtor("error", { message, filename, lineno, colno, cancelable: true });
      dispatch(this, event);
    }

    // The remote side is gone or cannot take a message: run here, replaying what the
    // remote worker never answered.
    #moveLocal(reason) {
      const wasRemote = this.#mode === "remote";
      if (wasRemote) send({ kind: "worker-terminate", id: this.#id, reason });
      if (wasRemote && !this.#replayable) {
        this.#mode = "closed";
        this.#emitError(`RemoteWorkerError: lost: ${reason}`, this.#url, 0, 0);
        return;
      }
      const replay = this.#unanswered;
      this.#unanswered = [];
      this.#mode = "pending";
      this.#queue = wasRemote ? replay : this.#queue;
      clearTimer(this.#timer);
      this.#runLocally();
    }

    #runLocally() {
      if (this.#mode !== "pending") return;
      this.#mode = "local";
      let url = this.#url;
      let temporary = null;
      if (this.#blob) {
        // The page may have revoked its URL since: use one of our own for the same Blob.
        temporary = reflectApply(nativeCreateObjectURL, URLCtor, [this.#blob]);
        url = temporary;
      }
      const native = new NativeWorker(url, this.#options);
      if (temporary) reflectApply(nativeRevokeObjectURL, URLCtor, [temporary]);
      this.#native = native;
      addListener(native, "message", (e) => dispatch(this, new MessageEventCtor("message", { data: eventData(e) })));
      addListener(native, "messageerror", () => dispatch(this, new MessageEventCtor("messageerror", { data: null })));
      addListener(native, "error", (e) => {
        const copy = new ErrorEventCtor("error", {
          message: errorEventFields.message(e),
          filename: errorEventFields.filename(e),
          lineno: errorEventFields.lineno(e),
          colno: errorEventFields.colno(e),
          error: errorEventFields.error(e),
          cancelable: true,
        });
        dispatch(this, copy);
        if (isDefaultPrevented(copy)) preventDefault(e);
      });
      const queued = this.#queue;
      this.#queue = [];
      for (let i = 0; i < queued.length; i++) workerPost(native, queued[i]);
    }
  }

  Object.defineProperty(G, "Worker", {
    value: Worker,
    writable: true,
    configurable: true,
    enumerable: false,
  });
})();
