// The Execution Orchestrator, extension side: for each tab, runs the analysis pipeline
// (capture -> estimate -> plan -> lease), places each Web Worker the page creates (on the
// broker when the plan and a lease allow it, else locally), relays remote workers' messages,
// and releases everything when the page goes away.
//
// A tab's session lives exactly as long as its content script's port: the port closes when
// the tab closes or navigates, and that is when the lease is released.
//
// Monitor and adjust: when a remote worker's lease ends, its executor crashes or the broker
// connection is lost, the page's stand-in is told `worker-fallback` and moves the worker to a
// local Worker, replaying the messages it had not answered (content-main.js). Limits the
// worker hit itself (CPU, memory) are not retried: the page gets a typed error. Module
// workers go remote like classic ones, with their static module graph fetched up front.
//
// Data channels (ARCHITECTURE.md, "Control through the background, data through the tab's
// channel"): when a tab's first worker is placed remotely, its content script is asked to open
// its own websocket to the broker; each remote worker of the tab is then spawned with the
// channel's id, and its messages go page <-> content script <-> broker, skipping this
// background. Leases, spawns, terminations, fallbacks and learning stay here. No channel in
// time (refused, blocked, an older broker): the worker's data is relayed here, as before.
//
// Re-planning (ARCHITECTURE.md, "Re-planning"): a tab is planned again, with the latest
// contention and the other tabs, when the native host pushes `contention_changed`, when the
// broker takes its lease back or ends it, or when the broker connection is lost. The new plan
// governs `new Worker()` calls from then on; running workers stay where they are. A plan that
// wants remote resources and holds no lease asks for one; a plan that offloads nothing lets
// go of a lease no worker uses. Leases are renewed (`lease_renew`) while the tab has remote
// workers on them, and left to expire otherwise; a worker placed remotely after that asks for
// a lease again, without waiting in the broker's queue.

import { BrokerClient } from "./broker-client.js";
import { engineTerms } from "./engines.js";
import { calibrate, estimatePage, fallbackPlan } from "./estimator.js";
import { fetchText, workerScript } from "./fetch-sources.js";
import { HostClient } from "./host-client.js";
import { Learner } from "./learning.js";
import { api, browserContention } from "./platform.js";
import {
  brokerUrlFrom,
  enabledFor,
  ensureCalibration,
  loadSettings,
  offloadAllowedFor,
  policyFor,
  saveCalibration,
} from "./settings.js";
import { otherTabs, watchTabs } from "./tab-activity.js";
import { chooseTabsToDiscard } from "./tab-discard.js";

// How long a page's `new Worker()` waits for the plan before running locally.
const PLACEMENT_DEADLINE_MS = 8_000;
// Longest a page's analysis waits for the device's first calibration (see #analyze).
const CALIBRATION_WAIT_MS = 2_000;
// How long a placement waits for the tab's data channel before relaying through here instead.
const CHANNEL_DEADLINE_MS = 2_500;

// How often a lease with remote workers on it is renewed (at most; sooner for short TTLs).
const RENEW_PERIOD_MS = 10_000;
// Re-plans kept for the popup, newest last.
const MAX_REPLANS_SHOWN = 5;

/**
 * How long the broker's engine `engine` (null: the broker's default) takes for 1 ms of this
 * browser's work, as the plan priced it; null when unmeasured.
 */
function speedOf(terms, engine) {
  const offer = engine ? terms?.engines?.find((e) => e.engine === engine) : null;
  return offer?.speed_factor ?? terms?.speed_factor ?? null;
}

/** When to renew a lease of `ttlMs` again: half its TTL, at most RENEW_PERIOD_MS. */
export function renewPeriodMs(ttlMs) {
  return Math.max(500, Math.min(RENEW_PERIOD_MS, Math.floor(ttlMs / 2)));
}

// What the page's error says about a remote worker that hit a limit of its own.
const EXIT_DETAILS = {
  cpu_limit: "the worker used up its CPU-time budget",
  memory_limit: "the worker used up its memory budget",
  closed: "",
};

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
    this.terminated = new Set(); // page worker ids terminated before their placement
    this.placements = []; // {url, target, reason} per worker the page created
    this.sources = null; // what the page's content script captured
    this.demand = null; // the estimate, made once per page
    this.planning = null; // Promise of the plan being made, if any
    this.replanWanted = null; // why another plan is due once the current one is made
    this.replans = []; // {at, why} of the latest re-plans, for the popup
    this.leasing = null; // Promise of a lease request in flight, if any
    this.leaseDeadline = 0; // performance.now() by which the lease ends unless renewed
    this.leasedBefore = false; // whether the tab ever held a lease (re-plans do not ask again)
    this.renewTimer = null;
    this.revoking = null; // why the broker is taking the lease back, while it does
    this.movedByLeaseEnd = false; // a remote worker was moved to the page by the lease's end
    this.error = "";
    this.ended = false;
    this.settings = null; // the settings the analysis ran with
    this.learning = null; // {origin, page, raw demand, corrections applied} (learning.js)
    this.brokerTerms = null; // the broker's terms when planned: its speed factors price its CPU reports
    this.busy = false; // unsaved form input or playing media: never discard this tab
    this.discarded = []; // tabs discarded to make room for this page
    this.channel = null; // Promise of the tab's data channel id (null: relay), once asked
    this.channelAnswer = null; // resolves that promise with the content script's answer
    this.channelNote = ""; // why the tab has no data channel
    this.channelId = null; // the channel id, once open
  }

  send(message) {
    if (!this.ended) this.port.postMessage(message);
  }
}

export class Orchestrator {
  constructor() {
    this.kernelMs = null; // this device's calibration-kernel time, once measured
    this.sessions = new Map(); // tabId -> TabSession
    this.workerOwners = new Map(); // broker worker_id -> TabSession
    // broker worker_id -> its placement record, until the broker reports what it used
    this.usage = new Map();
    this.nextWorker = 1;
    this.watchingTabs = false; // tab events re-plan once the first page is analysed
    this.learner = new Learner(api.storage.local);
    this.host = new HostClient();
    this.host.onContention = (_contention, reasons) => this.#contentionChanged(reasons);
    this.broker = new BrokerClient({
      onWorker: (message) => this.#fromBroker(message),
      onClosed: () => this.#brokerLost(),
    });
  }

  /** Connects to the native host early so the popup can show its status at once. */
  start() {
    this.host.connect().catch(() => {});
    // The device calibration runs in the background; a page's analysis waits for it up to
    // CALIBRATION_WAIT_MS, then estimates with the default.
    this.calibration = ensureCalibration(calibrate).catch((error) => ({
      error: String(error?.message ?? error),
    }));
    // This device's time for the calibration kernel prices the broker's engines (whose
    // times for the same kernel come in its hello); plans made before it is known (the
    // calibration outlasted the wait) leave the engines' speed out.
    this.calibration.then((c) => {
      this.kernelMs = c?.medianMs ?? null;
    });
  }

  /** Measures the device again (the options page's button) and keeps the result. */
  async recalibrate() {
    const fresh = await calibrate();
    await saveCalibration(fresh);
    this.kernelMs = fresh.medianMs;
    return fresh;
  }

  /** Adopts a content script's port for its tab. */
  attach(port) {
    if (!this.watchingTabs) {
      this.watchingTabs = true;
      watchTabs((what) => this.#tabsChanged(what));
    }
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
        replans: session.replans,
        learning: session.learning && { origin: session.learning.origin, applied: session.learning.applied },
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
      case "tab-state":
        session.busy = message.busy === true;
        break;
      case "channel-opened":
        session.channelAnswer?.(typeof message.channel_id === "string" ? message.channel_id : null, "");
        break;
      case "channel-failed":
        session.channelAnswer?.(null, String(message.reason ?? "failed"));
        break;
      case "channel-closed":
        // Its workers end with `channel_closed` and move to the page; the next worker placed
        // remotely asks for a new channel.
        if (message.channel_id === session.channelId) {
          session.channel = null;
          session.channelId = null;
          session.channelNote = "the data channel closed";
        }
        break;
      case "page-observed":
      case "page-events":
        // Learned against the estimate this page was planned with, once there is one.
        // The host's latest reading says how busy the machine was as the page reported.
        session.analysis.promise.then(() =>
          this.learner.page(session.learning, message, this.host.contention ?? session.result?.contention),
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
        } else {
          // Terminated before its placement: it must not be started remotely afterwards.
          session.terminated.add(message.id);
        }
        break;
      }
      default:
        break; // unknown messages from a content script of another version: ignore
    }
  }

  async #analyze(session, sources) {
    // The first page after the extension starts on a new device waits (briefly) for the
    // device's calibration: priced at a guessed speed its plan would be off, and the broker's
    // engines could not be compared with this browser. Measuring takes ~0.1-0.3 s.
    await Promise.race([this.calibration, new Promise((resolve) => setTimeout(resolve, CALIBRATION_WAIT_MS))]);
    const settings = await loadSettings();
    session.settings = settings;
    if (!enabledFor(settings, sources.url)) {
      session.phase = "Foresight is off on this site";
      session.analysis.resolve(null);
      return;
    }
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
    // What this device learned about the page's origin corrects the estimate, once per page:
    // re-plans reuse the corrected demand.
    ({ demand, learning: session.learning } = await this.learner.correct(sources, demand));
    session.sources = sources;
    session.demand = demand;
    await this.#runPlan(session, null);
    if (!session.result) throw new Error(session.error || "no plan");
    session.analysis.resolve(session.result);
  }

  /**
   * Plans the tab (again, when `why` says why) against the latest contention, the other tabs
   * and the broker's terms, then brings the lease in line with the plan. Later `new Worker()`
   * calls follow the new plan; workers already running stay where they are.
   */
  async #plan(session, why) {
    const settings = session.settings;
    const sources = session.sources;
    const demand = session.demand;
    session.phase = why ? "re-planning" : "planning";
    const hostHello = await this.host.connect().catch(() => null);
    // A site not allowed to offload never reaches the broker: not even a connection is made.
    const policy = policyFor(settings, sources.url);
    const brokerUrl = brokerUrlFrom(settings, hostHello?.broker_url);
    const broker =
      policy.offload === "never"
        ? null
        : engineTerms(await this.broker.terms(brokerUrl, settings.brokerToken), this.kernelMs);
    session.brokerTerms = broker;
    const tabs = await otherTabs(session.tabId, this.sessions).catch(() => []);
    let plan;
    let contention;
    try {
      const reply = await this.host.request({ type: "plan", demand, policy, broker, tabs });
      plan = reply.plan;
      contention = reply.contention;
    } catch (error) {
      contention = await browserContention();
      plan = await fallbackPlan(demand, contention, policy, broker, tabs);
      plan.reasons.unshift(`native host unavailable (${error.message}): planned in the extension`);
    }
    if (why) plan.reasons.unshift(`re-planned: ${why}`);
    if (session.ended) return;

    // A tab asks ahead of its workers once: a lease it held and let expire unused (or lost)
    // is not asked for again by a re-plan, or every tab event would cycle leases through the
    // broker; its next worker placed remotely asks for one by itself (#placeWorker).
    if (plan.remote && broker && !session.lease && !session.leasedBefore) {
      session.phase = why ? "re-planning: leasing" : "leasing";
      await this.#acquireLease(session, plan, { wait: true });
    } else if (!plan.remote && session.lease && session.remoteWorkers.size === 0) {
      // Nothing to offload any more, and no worker uses the lease: give it back.
      this.broker.releaseLease(session.lease.lease_id);
      this.#dropLease(session, why ? `released: ${why}` : "released");
    }

    if (settings.discardTabs && !why) await this.#freeMemory(session, plan, contention, settings);

    session.result = { demand, plan, contention };
    session.phase = why ? "re-planned" : "planned";
  }

  /**
   * Plans the tab again for `why`, after the plan being made (if any): triggers that arrive
   * while one is made are folded into one more plan.
   */
  #replan(session, why) {
    if (session.ended || !session.demand) return;
    if (session.planning) {
      session.replanWanted = session.replanWanted ? `${session.replanWanted}; ${why}` : why;
      return;
    }
    session.replans.push({ at: Date.now(), why });
    if (session.replans.length > MAX_REPLANS_SHOWN) session.replans.shift();
    this.#runPlan(session, why);
  }

  /** Runs #plan with the tab marked as planning, then any re-plan that was asked meanwhile. */
  #runPlan(session, why) {
    session.planning = this.#plan(session, why)
      .catch((error) => {
        session.error = `${why ? "re-planning" : "planning"} failed: ${error?.message ?? error}`;
      })
      .finally(() => {
        session.planning = null;
        const again = session.replanWanted;
        session.replanWanted = null;
        if (again) this.#replan(session, again);
      });
    return session.planning;
  }

  /** The host says the machine's capacity moved: every analysed tab is planned again. */
  #contentionChanged(reasons) {
    // The watch's first answer (no reasons) is a snapshot, not a change.
    if (!reasons || reasons.length === 0) return;
    const why = `contention changed (${reasons.join("; ")})`;
    for (const session of this.sessions.values()) this.#replan(session, why);
  }

  /** Other tabs opened, closed, came to the front, or started or stopped playing sound. */
  #tabsChanged(what) {
    const why = `tabs changed (${what})`;
    for (const session of this.sessions.values()) this.#replan(session, why);
  }

  /** Asks the broker for the plan's lease (once at a time per tab); keeps it renewed. */
  #acquireLease(session, plan, { wait }) {
    if (session.leasing) return session.leasing;
    const onQueued = (position, estimatedMs) => {
      session.leaseNote =
        `waiting in the broker's queue (position ${position}` +
        (estimatedMs != null ? `, about ${Math.ceil(estimatedMs / 1000)} s` : "") +
        ")";
    };
    session.leasing = this.broker
      .requestLease({ ...plan.remote, purpose: session.url }, { wait, onQueued })
      .then(
        (answer) => {
          if (answer.lease) {
            if (session.ended || session.lease) {
              this.broker.releaseLease(answer.lease.lease_id);
            } else {
              this.#adoptLease(session, answer.lease);
            }
          } else {
            session.leaseNote = `lease denied: ${answer.denied}`;
          }
        },
        (error) => {
          session.leaseNote = `lease failed: ${error.message}`;
        },
      )
      .finally(() => {
        session.leasing = null;
      });
    return session.leasing;
  }

  #adoptLease(session, lease) {
    session.lease = lease;
    session.leasedBefore = true;
    session.leaseNote = "";
    session.leaseDeadline = performance.now() + lease.ttl_ms;
    this.#scheduleRenewal(session);
  }

  #dropLease(session, note) {
    clearTimeout(session.renewTimer);
    session.renewTimer = null;
    session.lease = null;
    session.leaseNote = note;
  }

  /**
   * Browsers cannot send websocket pings: a lease is renewed with `lease_renew` every
   * renewPeriodMs while the tab has remote workers on it. One without workers is left to
   * expire (the broker's capacity goes back to others); a worker placed close to the end
   * renews it first (#placeWorker).
   */
  #scheduleRenewal(session) {
    clearTimeout(session.renewTimer);
    const lease = session.lease;
    if (!lease || session.ended) return;
    session.renewTimer = setTimeout(() => {
      if (session.lease !== lease || session.ended) return;
      if (session.remoteWorkers.size > 0) this.#renew(session);
      this.#scheduleRenewal(session);
    }, renewPeriodMs(lease.ttl_ms));
  }

  #renew(session) {
    const lease = session.lease;
    if (!lease || this.broker.isRevoking(lease.lease_id)) return;
    this.broker.renewLease(lease.lease_id, lease.ttl_ms);
  }

  /** Discards idle background tabs when the plan needs more memory than is free (opt-in). */
  async #freeMemory(session, plan, contention, settings) {
    const deficitBytes = plan.local.memory_bytes - contention.available_memory_bytes;
    if (!(deficitBytes > 0)) return;
    const busyTabIds = new Set([...this.sessions.values()].filter((s) => s.busy).map((s) => s.tabId));
    const { discard, spared } = chooseTabsToDiscard(await api.tabs.query({}), {
      now: Date.now(),
      idleMs: settings.discardIdleMinutes * 60_000,
      deficitBytes,
      busyTabIds,
      requestingTabId: session.tabId,
    });
    for (const id of discard) {
      try {
        await api.tabs.discard(id);
        session.discarded.push(id);
      } catch {
        // The tab closed meanwhile, or the browser refused: nothing to free there.
      }
    }
    plan.reasons.push(
      `predicted memory exceeds what is free by ${Math.round(deficitBytes / 2 ** 20)} MiB: ` +
        `discarded ${session.discarded.length} idle tab(s), spared ${spared.length}`,
    );
  }

  async #placeWorker(session, { id, url, options, source }) {
    const deadline = new Promise((resolve) => setTimeout(() => resolve(null), PLACEMENT_DEADLINE_MS));
    const first = await Promise.race([session.analysis.promise, deadline]);
    // The latest plan: re-planning may have replaced the first one since.
    const analysis = first && (session.result ?? first);
    let decision = this.#decide(session, analysis, url, options);
    if (decision.leaseWanted && !session.planning) {
      // The plan offloads this worker but the tab's lease expired unused (or was denied):
      // ask again, without waiting in the broker's queue, since the page is waiting.
      await this.#acquireLease(session, analysis.plan, { wait: false });
      decision = this.#decide(session, analysis, url, options);
    }
    let script = null;
    if (decision.target === "remote") {
      script = await workerScript(url, source ?? session.workerSources.get(url), options?.type === "module");
      if (script.error) decision = { target: "local", reason: script.error };
      // The page may have gone, or the lease ended, while the sources were fetched.
      else if (session.ended || !session.lease) decision = { target: "local", reason: "the lease ended" };
    }
    let channelId = null;
    if (decision.target === "remote") {
      channelId = await this.#channelFor(session);
      if (session.ended || !session.lease) decision = { target: "local", reason: "the lease ended" };
    }
    if (session.terminated.delete(id)) decision = { target: "local", reason: "terminated by the page" };
    // The prediction, next to what the broker will report the worker used (popup; the
    // comparison is what calibration can learn from).
    const component = analysis?.demand?.components?.find((c) => c.url === url);
    const record = {
      url,
      target: decision.target,
      reason: decision.reason,
      predicted_cpu_ms: component ? component.cpu_ms : null,
      used_cpu_ms: null,
      // The planned engine (null: the broker's default) until the broker says which it used.
      engine: decision.target === "remote" ? (decision.engine ?? null) : null,
      learn: Learner.forWorker(session.learning, url, speedOf(session.brokerTerms, decision.engine)),
      // How its messages travel: through the tab's data channel, or relayed here.
      data: decision.target === "remote" ? (channelId ? "direct" : `relay${session.channelNote ? ` (${session.channelNote})` : ""}`) : null,
    };
    session.placements.push(record);
    if (decision.target === "remote") {
      // Close to its end, the lease is renewed before the worker is spawned under it (the
      // broker handles the two in order).
      if (session.leaseDeadline - performance.now() < renewPeriodMs(session.lease.ttl_ms)) {
        this.#renew(session);
      }
      const workerId = `t${session.tabId}-w${this.nextWorker++}`;
      this.usage.set(workerId, record);
      session.remoteWorkers.set(workerId, id);
      this.workerOwners.set(workerId, session);
      this.broker.spawnWorker(
        session.lease.lease_id,
        workerId,
        url,
        script.source,
        script.imports,
        options?.name ?? "",
        options?.type === "module",
        session.lease.epoch,
        decision.engine,
        channelId,
      );
      if (channelId) {
        // The content script sends and receives its data over the channel from now on.
        session.send({ kind: "worker-placement", id, target: "remote", reason: decision.reason, direct: workerId });
        return;
      }
    }
    session.send({ kind: "worker-placement", id, target: decision.target, reason: decision.reason });
  }

  /**
   * The tab's data channel id, asking its content script to open one the first time; null
   * (relay through here) when the broker has no data channels or none opened in time.
   */
  #channelFor(session) {
    const url = this.broker.channelUrl();
    if (!url) return Promise.resolve(null);
    if (!session.channel) {
      session.channel = new Promise((resolve) => {
        const timer = setTimeout(() => session.channelAnswer?.(null, "no data channel in time"), CHANNEL_DEADLINE_MS);
        session.channelAnswer = (channelId, note) => {
          clearTimeout(timer);
          session.channelAnswer = null;
          session.channelNote = channelId ? "" : note;
          session.channelId = channelId;
          resolve(channelId);
        };
      });
      session.send({ kind: "channel-open", url, token: this.broker.token ?? "" });
    }
    return session.channel;
  }

  /** The worker's source and the scripts its importScripts may load, or `{error}`. */
  #decide(session, analysis, url, options) {
    const local = (reason) => ({ target: "local", reason });
    if (session.ended) return local("the page is gone");
    if (!analysis) return local(session.phase === "Foresight is off on this site" ? session.phase : "no plan in time");
    if (!offloadAllowedFor(session.settings, session.url)) return local("offloading is not allowed for this site");
    const placements = analysis.plan.placements;
    const placement = placements.find((p) => p.url === url);
    if (placement && placement.target !== "remote") return local(placement.reason);
    // A worker the estimator could not see (blob:, data:, a computed URL) follows the page:
    // remote when the plan offloads the page's other workers and leased for them.
    if (!placement && !placements.some((p) => p.target === "remote")) {
      return local("the plan offloads none of this page's workers");
    }
    if (!session.lease) {
      const wanted = !!analysis.plan.remote && !session.leasing && this.broker.status.state === "connected";
      return { ...local(session.leaseNote ? `no lease: ${session.leaseNote}` : "no lease"), leaseWanted: wanted };
    }
    if (this.broker.isRevoking(session.lease.lease_id)) return local("the broker is taking the lease back");
    if (this.broker.status.state !== "connected") return local("the broker connection is gone");
    if (!this.broker.structuredClone) return local("the broker does not speak structured_clone_v1");
    return {
      target: "remote",
      reason: placement?.reason ?? "follows the page's offloaded workers",
      engine: placement?.engine ?? null,
    };
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
    if (message.type === "worker_exited") {
      const record = this.usage.get(message.worker_id);
      this.usage.delete(message.worker_id);
      if (record && typeof message.cpu_ms === "number") {
        record.used_cpu_ms = message.cpu_ms;
        this.learner.worker(record.learn, message.cpu_ms);
      }
    }
    if (message.type === "lease_revoking" || message.type === "lease_renewed" || message.type === "lease_ended") {
      const session = [...this.sessions.values()].find((s) => s.lease?.lease_id === message.lease_id);
      if (session) this.#leaseNews(session, message);
      return;
    }
    const session = this.workerOwners.get(message.worker_id);
    if (!session) return;
    const id = session.remoteWorkers.get(message.worker_id);
    switch (message.type) {
      case "worker_started": {
        // The engine it really runs on (the plan may have left the choice to the broker).
        const record = this.usage.get(message.worker_id);
        if (record && typeof message.engine === "string") record.engine = message.engine;
        break;
      }
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
          colno: 0,
        });
        break;
      case "worker_console":
        session.send({ kind: "worker-console", id, level: message.level, text: message.text });
        break;
      case "worker_exited":
        switch (message.reason) {
          case "terminated":
            break;
          case "lease_ended":
          case "crashed":
          case "channel_closed":
          case "refused":
          case "unknown":
            // Not the worker's doing: it moves to the page, replaying what it had not answered.
            if (message.reason === "lease_ended") session.movedByLeaseEnd = true;
            session.send({ kind: "worker-fallback", id, reason: `remote worker ${message.reason}` });
            break;
          default:
            session.send({
              kind: "worker-exited",
              id,
              reason: message.reason,
              detail: EXIT_DETAILS[message.reason] ?? "",
            });
            break;
        }
        this.#forgetWorker(message.worker_id);
        break;
      default:
        break;
    }
  }

  /** What the broker says about a tab's lease. */
  #leaseNews(session, message) {
    switch (message.type) {
      case "lease_revoking":
        // No new worker goes to it from now on (#decide); the plan is made again when it ends.
        session.revoking = message.cause;
        session.leaseNote = `the broker is taking the lease back (${message.cause})`;
        break;
      case "lease_renewed":
        session.lease = { ...session.lease, expires_at_ms: message.expires_at_ms };
        session.leaseDeadline = performance.now() + session.lease.ttl_ms;
        break;
      case "lease_ended": {
        const cause = message.reason === "revoked" && session.revoking ? ` (${session.revoking})` : "";
        // The broker reports the lease's workers (`worker_exited`) before the lease's end.
        const hadWorkers = session.movedByLeaseEnd || session.remoteWorkers.size > 0;
        session.movedByLeaseEnd = false;
        this.#dropLease(session, `lease ${message.reason === "expired" ? "expired" : `ended: ${message.reason}`}${cause}`);
        session.revoking = null;
        // A lease left to expire unused needs no new plan: the next worker asks for one. A
        // lease the broker took back means the broker's terms changed: plan again.
        if (message.reason !== "expired" || hadWorkers) this.#replan(session, session.leaseNote);
        break;
      }
      default:
        break;
    }
  }

  #brokerLost() {
    this.usage.clear();
    for (const [workerId, session] of this.workerOwners) {
      const id = session.remoteWorkers.get(workerId);
      session.send({ kind: "worker-fallback", id, reason: "the broker connection was lost" });
    }
    this.workerOwners.clear();
    for (const session of this.sessions.values()) {
      session.remoteWorkers.clear();
      // The next remote worker asks the content script again (it answers with its channel
      // if that still serves).
      session.channel = null;
      session.channelId = null;
      if (session.lease) {
        this.#dropLease(session, "the broker connection was lost");
        this.#replan(session, "the broker connection was lost");
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
    this.#dropLease(session, "the page is gone");
    if (this.sessions.get(session.tabId) === session) this.sessions.delete(session.tabId);
  }
}
