// The extension's side of the native-messaging channel to `foresight-host` (protocol:
// docs/PROTOCOL.md, channel 1). One port for the whole background, opened lazily and
// reopened on the next request after it closes. An open port also keeps Chrome's service
// worker and Firefox's event page alive while pages are being orchestrated.

import { api, browserName, disconnectReason } from "./platform.js";

export const HOST_NAME = "dev.foresight.host";
export const PROTOCOL_VERSION = 1;
const REQUEST_TIMEOUT_MS = 10_000;

export class HostClient {
  constructor(onStatus) {
    this.port = null;
    this.hello = null; // Promise of the host's hello reply
    this.pending = new Map(); // request_id -> {resolve, reject, timer}
    this.nextId = 1;
    this.onStatus = onStatus;
    this.status = { state: "unknown", detail: "" };
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
      port.onMessage.addListener((message) => {
        if (message?.type === "hello") {
          clearTimeout(helloTimer);
          this.#setStatus("connected", message.host ?? "");
          resolve(message);
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
    // "Specified native messaging host not found." is how both browsers say "not installed".
    const missing = /not found/i.test(reason);
    this.#setStatus(missing ? "not-installed" : "disconnected", reason);
  }

  #setStatus(state, detail) {
    this.status = { state, detail };
    this.onStatus?.(this.status);
  }
}
