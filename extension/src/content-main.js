// MAIN-world content script, injected at document_start before any page script runs.
//
// Replaces `window.Worker` with a stand-in that asks the orchestrator where each worker
// should run. Until the answer arrives, the page's messages are queued; then the worker runs
// either as a real local Worker or on the broker, and the page sees the same interface and
// the same messages in the same order either way.
//
// Talks to the isolated-world script only over a private MessageChannel, handed over once at
// start-up (see content-isolated.js). Everything it uses from the platform is captured here,
// before page code could replace it.
(() => {
  const NativeWorker = globalThis.Worker;
  if (typeof NativeWorker !== "function") return;
  const MessageChannelCtor = MessageChannel;
  const portPost = MessagePort.prototype.postMessage;
  const dispatch = EventTarget.prototype.dispatchEvent;
  const MessageEventCtor = MessageEvent;
  const ErrorEventCtor = ErrorEvent;
  const URLCtor = URL;

  // If the extension never answers (it was reloaded, say), the page must not hang.
  const PLACEMENT_TIMEOUT_MS = 15_000;

  const channel = new MessageChannelCtor();
  const port = channel.port1;
  const send = (message) => portPost.call(port, message);
  const receivers = new Map(); // worker id -> (message) => void
  let nextId = 1;

  port.onmessage = (event) => receivers.get(event.data?.id)?.(event.data);
  window.postMessage({ foresight: "channel" }, "*", [channel.port2]);

  class Worker extends EventTarget {
    #id = nextId++;
    #mode = "pending"; // "pending" | "local" | "remote" | "terminated"
    #queue = [];
    #native = null;
    #url;
    #options;
    #timer;

    constructor(scriptURL, options = undefined) {
      super();
      this.#url = new URLCtor(String(scriptURL), document.baseURI).href;
      this.#options = options;
      this.onmessage = null;
      this.onmessageerror = null;
      this.onerror = null;
      receivers.set(this.#id, (message) => this.#receive(message));
      send({
        kind: "worker-create",
        id: this.#id,
        url: this.#url,
        options: { type: options?.type ?? "classic", name: options?.name ?? "" },
      });
      this.#timer = setTimeout(() => this.#runLocally(), PLACEMENT_TIMEOUT_MS);
    }

    postMessage(data, transfer) {
      switch (this.#mode) {
        case "pending":
          this.#queue.push([data, transfer]);
          break;
        case "local":
          this.#native.postMessage(data, transfer);
          break;
        case "remote":
          send({ kind: "worker-post", id: this.#id, data });
          break;
        default:
          break; // terminated: dropped, as by a real Worker
      }
    }

    terminate() {
      if (this.#mode === "local") this.#native.terminate();
      if (this.#mode === "remote") send({ kind: "worker-terminate", id: this.#id });
      this.#mode = "terminated";
      this.#queue = [];
      clearTimeout(this.#timer);
      receivers.delete(this.#id);
    }

    #receive(message) {
      switch (message.kind) {
        case "worker-placement":
          if (this.#mode !== "pending") return;
          clearTimeout(this.#timer);
          if (message.target === "remote") {
            this.#mode = "remote";
            for (const [data] of this.#queue) send({ kind: "worker-post", id: this.#id, data });
            this.#queue = [];
          } else {
            this.#runLocally();
          }
          break;
        case "worker-message":
          if (this.#mode === "remote") this.#emit(new MessageEventCtor("message", { data: message.data }));
          break;
        case "worker-error":
          if (this.#mode === "remote") {
            this.#emit(
              new ErrorEventCtor("error", {
                message: message.message,
                filename: message.filename || this.#url,
                lineno: message.lineno || 0,
              }),
            );
          }
          break;
        default:
          break;
      }
    }

    #runLocally() {
      if (this.#mode !== "pending") return;
      this.#mode = "local";
      const native = new NativeWorker(this.#url, this.#options);
      this.#native = native;
      native.onmessage = (e) => this.#emit(new MessageEventCtor("message", { data: e.data }));
      native.onmessageerror = (e) => this.#emit(new MessageEventCtor("messageerror", { data: e.data }));
      native.onerror = (e) => {
        const copy = new ErrorEventCtor("error", {
          message: e.message,
          filename: e.filename,
          lineno: e.lineno,
          colno: e.colno,
          error: e.error,
          cancelable: true,
        });
        this.#emit(copy);
        if (copy.defaultPrevented) e.preventDefault();
      };
      for (const [data, transfer] of this.#queue) native.postMessage(data, transfer);
      this.#queue = [];
    }

    #emit(event) {
      const handler = this[`on${event.type}`];
      if (typeof handler === "function") handler.call(this, event);
      dispatch.call(this, event);
    }
  }

  Object.defineProperty(globalThis, "Worker", {
    value: Worker,
    writable: true,
    configurable: true,
    enumerable: false,
  });
})();
