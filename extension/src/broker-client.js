// The extension's side of the websocket to `foresight-broker` (protocol: docs/PROTOCOL.md,
// channel 2). One connection for the whole background; leases belong to it, so when it
// closes the broker frees them and the orchestrator treats them as gone.
//
// Lease requests allow the broker to queue them for LEASE_MAX_WAIT_MS: the broker then
// answers `lease_queued` and later exactly one `lease_granted` or `lease_denied`, and this
// client waits for that with its own deadline a little past the broker's. A grant that
// arrives after we gave up is released at once, so no lease leaks. `lease_revoking` (the
// broker takes a lease back after a notice period) marks the lease so no new work goes to
// it; the `lease_ended` that follows reaches the orchestrator like any other end.
// Browsers cannot send websocket pings, so leases are kept alive with `lease_renew`; the
// orchestrator decides when (only while a tab still has remote workers on the lease).
// Control messages are JSON in text frames. Worker messages are structured-clone bytes in
// binary frames (feature "structured_clone_v1", named in both hellos); they reach and leave
// this file as base64 text, the form the page's content scripts hand them over in.
// Data channels (feature "data_channel_v1"): a tab's content script may open its own
// connection for its workers' data (content-isolated.js); this client then spawns the worker
// with the channel's id and keeps the control (channelUrl, spawnWorker's channelId).

import { api, browserName } from "./platform.js";
import { PROTOCOL_VERSION } from "./host-client.js";

const CONNECT_TIMEOUT_MS = 3_000;
const REQUEST_TIMEOUT_MS = 10_000;
// How long a lease request may wait in the broker's queue: past it, running locally is better.
const LEASE_MAX_WAIT_MS = 5_000;
// Our deadline for the final answer after `lease_queued`, beyond the broker's own.
const QUEUED_ANSWER_SLACK_MS = 2_000;

export const FEATURE_STRUCTURED_CLONE = "structured_clone_v1";
export const FEATURE_DATA_CHANNEL = "data_channel_v1";
const BINARY_WORKER_MESSAGE = 0x01;
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

/** A binary worker-message frame: kind, u16 LE id length, UTF-8 id, payload. */
function workerFrame(workerId, payload) {
  const id = utf8.encode(workerId);
  const frame = new Uint8Array(3 + id.length + payload.length);
  frame[0] = BINARY_WORKER_MESSAGE;
  frame[1] = id.length & 0xff;
  frame[2] = id.length >> 8;
  frame.set(id, 3);
  frame.set(payload, 3 + id.length);
  return frame;
}

function parseWorkerFrame(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes.length < 3 || bytes[0] !== BINARY_WORKER_MESSAGE) return null;
  const len = bytes[1] | (bytes[2] << 8);
  if (bytes.length < 3 + len) return null;
  return {
    worker_id: utf8Decoder.decode(bytes.subarray(3, 3 + len)),
    payload: bytes.subarray(3 + len),
  };
}

export class BrokerClient {
  /**
   * @param {object} hooks
   * @param {(status) => void} hooks.onStatus connection state changes
   * @param {(message) => void} hooks.onWorker worker_* and lease_ended messages
   * @param {() => void} hooks.onClosed the connection (and so every lease) is gone
   */
  constructor(hooks) {
    this.hooks = hooks;
    this.socket = null;
    this.url = null;
    this.ready = null; // Promise of {capacity, rtt_ms}
    this.pending = new Map(); // request_id -> {resolve, reject, timer, kind}
    this.abandoned = new Set(); // lease request_ids we stopped waiting for
    this.revoking = new Map(); // lease_id -> ends_at_ms
    this.nextId = 1;
    this.status = { state: "unknown", url: "", detail: "" };
    this.structuredClone = false;
    this.dataChannel = false; // the broker opens data channels (data_channel_v1)
    this.token = null;
    this.engines = []; // engine names the broker offered in its hello
  }

  /** Opens (or reuses) the connection and resolves with the broker's terms. */
  connect(url, token) {
    if (this.ready && this.url === url) return this.ready;
    this.close();
    this.url = url;
    this.token = token || null;
    this.ready = new Promise((resolve, reject) => {
      let socket;
      try {
        socket = new WebSocket(url);
      } catch (error) {
        this.#failed(`invalid broker URL ${url}: ${error.message}`);
        reject(error);
        return;
      }
      this.socket = socket;
      socket.binaryType = "arraybuffer";
      const started = performance.now();
      const timer = setTimeout(() => {
        socket.close();
        reject(new Error(`broker at ${url} did not answer within ${CONNECT_TIMEOUT_MS} ms`));
      }, CONNECT_TIMEOUT_MS);
      socket.onopen = () => {
        this.#send({
          type: "hello",
          protocol_version: PROTOCOL_VERSION,
          client: `foresight-extension/${api.runtime.getManifest().version} ${browserName}`,
          token: token || null,
          features: [FEATURE_STRUCTURED_CLONE, FEATURE_DATA_CHANNEL],
        });
      };
      socket.onmessage = (event) => {
        if (typeof event.data !== "string") {
          const frame = parseWorkerFrame(event.data);
          if (frame) {
            this.hooks.onWorker?.({
              type: "worker_message",
              worker_id: frame.worker_id,
              data: bytesToBase64(frame.payload),
            });
          }
          return;
        }
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          return; // the broker only sends JSON; ignore anything else rather than crash
        }
        if (message.type === "hello") {
          clearTimeout(timer);
          const offers = Array.isArray(message.engines) ? message.engines : [];
          const terms = {
            available: true,
            rtt_ms: performance.now() - started,
            capacity: message.capacity,
            // Raw offers (kernel_ms); `engineTerms` turns them into the planner's terms.
            offers,
          };
          this.engines = offers.map((o) => o?.engine).filter((e) => typeof e === "string");
          // A broker without it would turn worker data into JSON: place workers locally.
          this.structuredClone = (message.features ?? []).includes(FEATURE_STRUCTURED_CLONE);
          // An older broker: every worker's data takes the relay through this connection.
          this.dataChannel = this.structuredClone && (message.features ?? []).includes(FEATURE_DATA_CHANNEL);
          this.#setStatus("connected", message.broker ?? "");
          resolve(terms);
        } else if (message.type === "error" && message.code === "version_mismatch") {
          clearTimeout(timer);
          reject(new Error(`broker speaks another protocol: ${message.message}`));
        } else {
          this.#dispatch(message);
        }
      };
      socket.onclose = (event) => {
        clearTimeout(timer);
        if (this.socket !== socket) return; // an older socket we already replaced
        const reason = event.reason || `connection to ${url} closed (code ${event.code})`;
        reject(new Error(reason));
        this.#failed(reason);
      };
    });
    return this.ready;
  }

  /** The broker's terms for the planner, or null when it cannot be reached. */
  async terms(url, token) {
    try {
      return await this.connect(url, token);
    } catch {
      return null;
    }
  }

  /**
   * Resolves with `{lease}` or `{denied: message}`, after any wait in the broker's queue
   * (`wait: false`: the broker answers at once). `onQueued(position)` hears `lease_queued`.
   */
  async requestLease({ resources, ttl_ms, priority, purpose }, { wait = true, onQueued = null } = {}) {
    if (!this.ready) throw new Error("not connected to a broker");
    await this.ready;
    const reply = await this.#request(
      {
        type: "lease_request",
        resources,
        ttl_ms,
        priority,
        purpose,
        max_wait_ms: wait ? LEASE_MAX_WAIT_MS : 0,
      },
      onQueued,
    );
    if (reply.type === "lease_granted") return { lease: reply.lease };
    if (reply.type === "lease_denied") return { denied: `${reply.reason}: ${reply.message}` };
    return { denied: `unexpected answer ${reply.type}: ${reply.message ?? ""}` };
  }

  /** Whether the broker is taking this lease back (no new work should go to it). */
  isRevoking(lease_id) {
    return this.revoking.has(lease_id);
  }

  /**
   * Asks for another `ttl_ms` from now (the broker answers `lease_renewed`, or an error
   * while it is revoking the lease). The stand-in for the websocket pings browsers cannot send.
   */
  renewLease(lease_id, ttl_ms) {
    this.#send({ type: "lease_renew", lease_id, ttl_ms });
  }

  releaseLease(lease_id) {
    this.#send({ type: "lease_release", lease_id });
  }

  /** Where a tab's content script opens its data channel: the broker's URL, role in the query. */
  channelUrl() {
    if (!this.url || !this.dataChannel) return null;
    try {
      const url = new URL(this.url);
      url.searchParams.set("role", "data_channel");
      return url.href;
    } catch {
      return null;
    }
  }

  spawnWorker(lease_id, worker_id, script_url, source, imports = [], name = "", module = false, epoch = null, engine = null, channelId = null) {
    // The epoch fences the spawn: the broker refuses it if the lease has moved on since.
    const message = { type: "worker_spawn", lease_id, worker_id, script_url, source, imports, name, module, epoch };
    // The worker's data then goes through the tab's data channel; control stays here.
    if (channelId) message.channel_id = channelId;
    // Only an engine this broker offered: a stale plan must not get the spawn refused.
    if (engine && this.engines.includes(engine)) message.engine = engine;
    this.#send(message);
  }

  /** `postMessage` data for a remote worker: structured-clone bytes as base64. */
  postToWorker(worker_id, data64) {
    if (this.socket?.readyState === WebSocket.OPEN) {
      this.socket.send(workerFrame(worker_id, base64ToBytes(data64)));
    }
  }

  terminateWorker(worker_id) {
    this.#send({ type: "worker_terminate", worker_id });
  }

  close() {
    const socket = this.socket;
    if (!socket) return;
    this.#failed("closed by the extension");
    socket.close();
  }

  #request(message, onQueued = null) {
    const request_id = this.nextId++;
    return new Promise((resolve, reject) => {
      const entry = { resolve, reject, timer: null, kind: message.type, onQueued };
      this.#deadline(request_id, entry, REQUEST_TIMEOUT_MS);
      this.pending.set(request_id, entry);
      this.#send({ ...message, request_id });
    });
  }

  #deadline(request_id, entry, ms) {
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      this.pending.delete(request_id);
      if (entry.kind === "lease_request") this.abandoned.add(request_id);
      entry.reject(new Error(`broker did not answer ${entry.kind} in time`));
    }, ms);
  }

  #send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
    }
  }

  #dispatch(message) {
    if (message.type === "lease_queued") {
      // Not the answer yet: wait for it, up to the broker's deadline and a little more.
      const entry = this.pending.get(message.request_id);
      if (entry) {
        this.#deadline(message.request_id, entry, LEASE_MAX_WAIT_MS + QUEUED_ANSWER_SLACK_MS);
        entry.onQueued?.(message.position, message.estimated_wait_ms ?? null);
      }
      return;
    }
    if (message.request_id != null && this.pending.has(message.request_id)) {
      const { resolve, timer } = this.pending.get(message.request_id);
      this.pending.delete(message.request_id);
      clearTimeout(timer);
      resolve(message);
      return;
    }
    if (message.request_id != null && this.abandoned.delete(message.request_id)) {
      // We gave up on this request; a late grant must not leak.
      if (message.type === "lease_granted") this.releaseLease(message.lease.lease_id);
      return;
    }
    if (message.type === "lease_revoking") {
      this.revoking.set(message.lease_id, message.ends_at_ms);
    } else if (message.type === "lease_ended" || message.type === "lease_released") {
      this.revoking.delete(message.lease_id);
    }
    this.hooks.onWorker?.(message);
  }

  #failed(reason) {
    this.socket = null;
    this.ready = null;
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new Error(reason));
    }
    this.pending.clear();
    this.abandoned.clear();
    this.revoking.clear();
    this.#setStatus("unreachable", reason);
    this.hooks.onClosed?.();
  }

  #setStatus(state, detail) {
    this.status = { state, url: this.url ?? "", detail };
    this.hooks.onStatus?.(this.status);
  }
}

