// The Execution Orchestrator, extension side: for each tab, runs the analysis pipeline
// (capture -> estimate -> plan -> lease), places each Web Worker the page creates (on the
// broker when the plan and a lease allow it, else locally), relays remote workers' messages,
// and releases everything when the page goes away.
//
// A tab's session lives exactly as long as its content script's port: the port closes when
// the tab closes or navigates, and that is when the lease is released.

import { BrokerClient } from "./broker-client.js";
import { calibrate, estimatePage, fallbackPlan } from "./estimator.js";
import { HostClient } from "./host-client.js";
import { browserContention } from "./platform.js";
import { brokerUrlFrom, ensureCalibration, loadSettings, policyFrom } from "./settings.js";

// How long a page's `new Worker()` waits for the plan before running locally.
const PLACEMENT_DEADLINE_MS = 8_000;
const FETCH_TIMEOUT_MS = 5_000;
const MAX_SOURCE_BYTES = 8 * 1024 * 1024;

async function fetchText(url) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
  try {
    const response = await fetch(url, { signal: controller.signal, cache: "force-cache" });
    if (!response.ok) return { error: `HTTP ${response.status}` };
    const text = await response.text();
    if (text.length > MAX_SOURCE_BYTES) return { error: "too large", bytes: text.length };
    return { text, bytes: new TextEncoder().encode(text).length };
  } catch (error) {
    return { error: String(error?.message ?? error) };
  } finally {
    clearTimeout(timer);
  }
}

function deferred() {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

class TabSession {
  constructor(port) {
    this.port = port;
    this.tabId = port.sender.tab.id;
    this.url = port.sender.url ?? port.sender.tab.url ?? "";
    this.phase = "waiting for the page";
    this.analysis = deferred(); // resolves with the analysis, or null if it failed
    this.result = null;
    this.lease = null;
    this.leaseNote = "";
    this.workerSources = new Map(); // worker script URL -> source
    this.remoteWorkers = new Map(); // broker worker_id -> page worker id
    this.placements = []; // {url, target, reason} per worker the page created
    this.error = "";
    this.ended = false;
  }

  send(message) {
    if (!this.ended) this.port.postMessage(message);
  }
}

export class Orchestrator {
  constructor() {
    this.sessions = new Map(); // tabId -> TabSession
    this.workerOwners = new Map(); // broker worker_id -> TabSession
    this.nextWorker = 1;
    this.host = new HostClient();
    this.broker = new BrokerClient({
      onWorker: (message) => this.#fromBroker(message),
      onClosed: () => this.#brokerLost(),
    });
  }

  /** Connects to the native host early so the popup can show its status at once. */
  start() {
    this.host.connect().catch(() => {});
    // The device calibration runs in the background; estimates use the default until then.
    this.calibration = ensureCalibration(calibrate).catch((error) => ({
      error: String(error?.message ?? error),
    }));
  }

  /** Adopts a content script's port for its tab. */
  attach(port) {
    const previous = this.sessions.get(port.sender.tab.id);
    if (previous) this.#end(previous);
    const session = new TabSession(port);
    this.sessions.set(session.tabId, session);
    port.onMessage.addListener((message) => this.#fromPage(session, message));
    port.onDisconnect.addListener(() => this.#end(session));
  }

  /** What the popup shows for a tab. */
  popupState(tabId) {
    const session = this.sessions.get(tabId);
    return {
      host: this.host.status,
      broker: this.broker.status,
      tab: session && {
        url: session.url,
        phase: session.phase,
        error: session.error,
        demand: session.result?.demand ?? null,
        plan: session.result?.plan ?? null,
        contention: session.result?.contention ?? null,
        lease: session.lease,
        leaseNote: session.leaseNote,
        placements: session.placements,
      },
    };
  }

  #fromPage(session, message) {
    switch (message?.kind) {
      case "page-sources":
        this.#analyze(session, message.sources).catch((error) => {
          session.error = String(error?.message ?? error);
          session.phase = "analysis failed";
          session.analysis.resolve(null);
        });
        break;
      case "worker-create":
        this.#placeWorker(session, message).catch((error) =>
          session.send({
            kind: "worker-placement",
            id: message.id,
            target: "local",
            reason: `placement failed: ${error?.message ?? error}`,
          }),
        );
        break;
      case "worker-post": {
        const workerId = this.#brokerWorkerId(session, message.id);
        if (workerId) this.broker.postToWorker(workerId, message.data);
        break;
      }
      case "worker-terminate": {
        const workerId = this.#brokerWorkerId(session, message.id);
        if (workerId) {
          this.broker.terminateWorker(workerId);
          this.#forgetWorker(workerId);
        }
        break;
      }
      default:
        break; // unknown messages from a content script of another version: ignore
    }
  }

  async #analyze(session, sources) {
    const settings = await loadSettings();
    session.phase = "fetching scripts";
    await Promise.all(
      sources.scripts
        .filter((s) => s.url && s.source == null)
        .map(async (s) => {
          const fetched = await fetchText(s.url);
          if (fetched.text != null) {
            s.source = fetched.text;
            s.bytes = fetched.bytes;
          }
        }),
    );

    session.phase = "estimating";
    let demand = await estimatePage(sources, settings.unitsPerMs);
    // Worker scripts are only known once the estimator has found `new Worker(url)`.
    const missing = demand.components.filter(
      (c) => !c.source_known && c.url && /^https?:/.test(c.url),
    );
    if (missing.length > 0) {
      for (const c of missing) {
        const fetched = await fetchText(c.url);
        if (fetched.text != null) {
          sources.scripts.push({
            url: c.url,
            kind: "worker",
            source: fetched.text,
            bytes: fetched.bytes,
          });
        }
      }
      demand = await estimatePage(sources, settings.unitsPerMs);
    }
    for (const s of sources.scripts) {
      if (s.kind === "worker" && s.source != null) session.workerSources.set(s.url, s.source);
    }

    session.phase = "planning";
    const hostHello = await this.host.connect().catch(() => null);
    const policy = policyFrom(settings);
    const brokerUrl = brokerUrlFrom(settings, hostHello?.broker_url);
    const broker =
      policy.offload === "never"
        ? null
        : await this.broker.terms(brokerUrl, settings.brokerToken);
    let plan;
    let contention;
    try {
      const reply = await this.host.request({ type: "plan", demand, policy, broker });
      plan = reply.plan;
      contention = reply.contention;
    } catch (error) {
      contention = await browserContention();
      plan = await fallbackPlan(demand, contention, policy, broker);
      plan.reasons.unshift(`native host unavailable (${error.message}): planned in the extension`);
    }

    if (plan.remote && broker) {
      session.phase = "leasing";
      try {
        const answer = await this.broker.requestLease({ ...plan.remote, purpose: sources.url });
        if (answer.lease) {
          if (session.ended) {
            this.broker.releaseLease(answer.lease.lease_id);
          } else {
            session.lease = answer.lease;
          }
        } else {
          session.leaseNote = `lease denied: ${answer.denied}`;
        }
      } catch (error) {
        session.leaseNote = `lease failed: ${error.message}`;
      }
    }

    session.result = { demand, plan, contention };
    session.phase = "planned";
    session.analysis.resolve(session.result);
  }

  async #placeWorker(session, { id, url, options }) {
    const deadline = new Promise((resolve) => setTimeout(() => resolve(null), PLACEMENT_DEADLINE_MS));
    const analysis = await Promise.race([session.analysis.promise, deadline]);
    const decision = this.#decide(session, analysis, url, options);
    session.placements.push({ url, target: decision.target, reason: decision.reason });
    if (decision.target === "remote") {
      const workerId = `t${session.tabId}-w${this.nextWorker++}`;
      session.remoteWorkers.set(workerId, id);
      this.workerOwners.set(workerId, session);
      this.broker.spawnWorker(session.lease.lease_id, workerId, url, session.workerSources.get(url));
    }
    session.send({ kind: "worker-placement", id, target: decision.target, reason: decision.reason });
  }

  #decide(session, analysis, url, options) {
    const local = (reason) => ({ target: "local", reason });
    if (session.ended) return local("the page is gone");
    if (!analysis) return local("no plan in time");
    if (options?.type === "module") return local("module workers run locally in this version");
    const placement = analysis.plan.placements.find((p) => p.url === url);
    if (!placement) return local("the plan has no placement for this worker");
    if (placement.target !== "remote") return local(placement.reason);
    if (!session.lease) return local(session.leaseNote || "no lease");
    if (!session.workerSources.has(url)) return local("the worker's source could not be fetched");
    if (this.broker.status.state !== "connected") return local("the broker connection is gone");
    return { target: "remote", reason: placement.reason };
  }

  #brokerWorkerId(session, pageId) {
    for (const [workerId, id] of session.remoteWorkers) {
      if (id === pageId) return workerId;
    }
    return null;
  }

  #forgetWorker(workerId) {
    const session = this.workerOwners.get(workerId);
    this.workerOwners.delete(workerId);
    session?.remoteWorkers.delete(workerId);
  }

  #fromBroker(message) {
    if (message.type === "lease_ended") {
      for (const session of this.sessions.values()) {
        if (session.lease?.lease_id === message.lease_id) {
          session.lease = null;
          session.leaseNote = `lease ended: ${message.reason}`;
        }
      }
      return;
    }
    const session = this.workerOwners.get(message.worker_id);
    if (!session) return;
    const id = session.remoteWorkers.get(message.worker_id);
    switch (message.type) {
      case "worker_message":
        session.send({ kind: "worker-message", id, data: message.data });
        break;
      case "worker_error":
        session.send({
          kind: "worker-error",
          id,
          message: message.message,
          filename: message.filename ?? "",
          lineno: message.lineno ?? 0,
        });
        break;
      case "worker_exited":
        if (message.reason !== "closed" && message.reason !== "terminated") {
          session.send({ kind: "worker-error", id, message: `remote worker stopped: ${message.reason}` });
        }
        this.#forgetWorker(message.worker_id);
        break;
      default:
        break;
    }
  }

  #brokerLost() {
    for (const [workerId, session] of this.workerOwners) {
      const id = session.remoteWorkers.get(workerId);
      session.send({ kind: "worker-error", id, message: "the broker connection was lost" });
    }
    this.workerOwners.clear();
    for (const session of this.sessions.values()) {
      session.remoteWorkers.clear();
      if (session.lease) {
        session.lease = null;
        session.leaseNote = "the broker connection was lost";
      }
    }
  }

  #end(session) {
    if (session.ended) return;
    session.ended = true;
    for (const workerId of session.remoteWorkers.keys()) {
      this.broker.terminateWorker(workerId);
      this.workerOwners.delete(workerId);
    }
    if (session.lease) this.broker.releaseLease(session.lease.lease_id);
    session.lease = null;
    if (this.sessions.get(session.tabId) === session) this.sessions.delete(session.tabId);
  }
}
