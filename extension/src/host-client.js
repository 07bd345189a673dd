// The extension's side of the native-messaging channel to `foresight-host` (protocol:
// docs/PROTOCOL.md, channel 1). One port for the whole background, opened lazily and
// reopened on the next request after it closes. An open port also keeps Chrome's service
// worker and Firefox's event page alive while pages are being orchestrated.
//
// After `hello` the client watches the machine's contention: the host then pushes
// `contention_changed` when capacity moves, kept in `this.contention` and passed to
// `onContention`. Replies over the browser's 1 MiB frame limit arrive as `chunk` messages,
// joined here before they are dispatched, so callers only ever see whole replies.

import { api, browserName, disconnectReason } from "./platform.js";

export const HOST_NAME = "dev.foresight.host";
export const PROTOCOL_VERSION = 1;
const REQUEST_TIMEOUT_MS = 10_000;
// The host refuses to send more than this in chunks; anything claiming more is broken.
const MAX_CHUNKED_REPLY_BYTES = 64 * 1024 * 1024;

export class HostClient {
  constructor(onStatus) {
    this.port = null;
    this.hello = null; // Promise of the host's hello reply
    this.pending = new Map(); // request_id -> {resolve, reject, timer}
    this.nextId = 1;
    this.onStatus = onStatus;
    this.status = { state: "unknown", detail: "" };
    this.chunks = new Map(); // request_id -> {count, parts, bytes} of a reply in pieces
    this.contention = null; // the latest snapshot the host measured
    this.onContention = null; // (contention, reasons) => void, on every update
  }

  /** Resolves with the host's hello, or rejects if the host is missing or broken. */
  connect() {
    if (this.hello) return this.hello;
    this.hello = new Promise((resolve, reject) => {
      let port;
      try {
        port = api.runtime.connectNative(HOST_NAME);
      } catch (error) {
        this.#setStatus("not-installed", String(error?.message ?? error));
        this.hello = null;
        reject(error);
        return;
      }
      this.port = port;
      const helloTimer = setTimeout(() => {
        reject(new Error("native host did not answer hello"));
        port.disconnect();
        this.#closed("native host did not answer hello");
      }, REQUEST_TIMEOUT_MS);
      port.onMessage.addListener((received) => {
        const message = received?.type === "chunk" ? this.#joinChunk(received) : received;
        if (!message) return; // more pieces to come
        if (message.type === "hello") {
          clearTimeout(helloTimer);
          this.#setStatus("connected", message.host ?? "");
          resolve(message);
          this.#watch();
          return;
        }
        if (message.type === "contention_changed") {
          this.#updateContention(message.contention, message.reasons ?? []);
          return;
        }
        if (message.type === "error" && message.request_id == null && this.status.state !== "connected") {
          // Refused before hello (e.g. `forbidden`): the host exits next; say why.
          reject(new Error(`native host: ${message.code}: ${message.message}`));
          this.#setStatus("refused", `${message.code}: ${message.message}`);
          return;
        }
        this.#dispatch(message);
      });
      port.onDisconnect.addListener((p) => {
        clearTimeout(helloTimer);
        const reason = disconnectReason(p);
        reject(new Error(reason));
        this.#closed(reason);
      });
      port.postMessage({
        type: "hello",
        protocol_version: PROTOCOL_VERSION,
        client: `foresight-extension/${api.runtime.getManifest().version} ${browserName}`,
      });
    });
    return this.hello;
  }

  /** Sends a request (an object without request_id) and resolves with the host's reply. */
  async request(message) {
    await this.connect();
    const request_id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(request_id);
        reject(new Error(`native host did not answer ${message.type} in time`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(request_id, { resolve, reject, timer });
      this.port.postMessage({ ...message, request_id });
    });
  }

  /** Asks the host for contention updates; an older host without them is fine. */
  #watch() {
    this.request({ type: "watch_contention" })
      .then((reply) => this.#updateContention(reply.contention, []))
      .catch(() => {});
  }

  #updateContention(contention, reasons) {
    if (!contention) return;
    this.contention = contention;
    this.onContention?.(contention, reasons);
  }

  /** Adds one piece of a chunked reply; returns the whole reply once the last piece is in. */
  #joinChunk({ request_id, index, count, data }) {
    const key = request_id ?? null;
    let entry = this.chunks.get(key);
    if (index === 0) {
      entry = { count, parts: [], bytes: 0 };
      this.chunks.set(key, entry);
    }
    const broken =
      !entry ||
      typeof data !== "string" ||
      index !== entry.parts.length ||
      count !== entry.count ||
      (entry.bytes += data.length) > MAX_CHUNKED_REPLY_BYTES;
    if (broken) {
      this.chunks.delete(key);
      this.#fail(key, "native host sent a broken chunked reply");
      return null;
    }
    entry.parts.push(data);
    if (entry.parts.length < entry.count) return null;
    this.chunks.delete(key);
    try {
      return JSON.parse(entry.parts.join(""));
    } catch (error) {
      this.#fail(key, `native host sent a chunked reply that is not JSON: ${error.message}`);
      return null;
    }
  }

  #fail(requestId, reason) {
    const waiter = this.pending.get(requestId);
    if (!waiter) return;
    this.pending.delete(requestId);
    clearTimeout(waiter.timer);
    waiter.reject(new Error(reason));
  }

  #dispatch(message) {
    const waiter = this.pending.get(message?.request_id);
    if (!waiter) return; // unsolicited or late: nothing waits for it
    this.pending.delete(message.request_id);
    clearTimeout(waiter.timer);
    if (message.type === "error") {
      waiter.reject(new Error(`native host: ${message.code}: ${message.message}`));
    } else {
      waiter.resolve(message);
    }
  }

  #closed(reason) {
    this.port = null;
    this.hello = null;
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new Error(reason));
    }
    this.pending.clear();
    this.chunks.clear();
    // "Specified native messaging host not found." is how both browsers say "not installed".
    const missing = /not found/i.test(reason);
    if (this.status.state === "refused") return; // keep the host's own explanation
    this.#setStatus(missing ? "not-installed" : "disconnected", reason);
  }

  #setStatus(state, detail) {
    this.status = { state, detail };
    this.onStatus?.(this.status);
  }
}
