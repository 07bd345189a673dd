// The popup, for the active tab: connection status (with the command that fixes a missing
// part), the page's prediction as a chart, the plan and the planner's reasons, the lease and
// its time left, the machine's contention, and two quick toggles.
//
// `popup.html?for=<page URL>` shows the tab with that URL instead of the active one, so the
// popup can also be opened in a tab (and tested and screenshotted) for a given page.

import { demandChart, demandCurves } from "./chart.js";
import { api } from "./platform.js";
import { enabledFor, loadSettings, loadStoredSettings, offloadAllowedFor, saveSettings } from "./settings.js";

const HOST_FIX = "install it with: foresight-host install";
const BROKER_FIX = "start one with: foresight-broker";

const $ = (id) => document.getElementById(id);

function text(id, value, cls = "") {
  $(id).textContent = value;
  $(id).className = cls;
}

function rows(id, pairs) {
  $(id).replaceChildren(
    ...pairs.flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      return [dt, dd];
    }),
  );
}

function list(id, items) {
  $(id).replaceChildren(
    ...items.map((item) => {
      const li = document.createElement("li");
      li.textContent = item;
      return li;
    }),
  );
}

const ms = (q) => `${Math.round(q.p50)} ms (p10 ${Math.round(q.p10)}, p90 ${Math.round(q.p90)})`;
const mib = (bytes) =>
  bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const fileName = (url) => (url ?? "").split("/").pop() || url;
const ENGINES = { quickjs: "QuickJS", node: "V8 (Node)" };
// "local", or "remote" with the engine when one is named (planned, or the one the broker used).
const where = (p) => (p.target === "remote" && p.engine ? `remote on ${ENGINES[p.engine] ?? p.engine}` : p.target);

async function targetTab() {
  const wanted = new URLSearchParams(location.search).get("for");
  if (wanted) {
    const tabs = await api.tabs.query({});
    return tabs.find((t) => t.url === wanted) ?? null;
  }
  const [active] = await api.tabs.query({ active: true, currentWindow: true });
  return active ?? null;
}

function renderConnections(state) {
  const host = state.host;
  if (host.state === "connected") text("host-status", `connected (${host.detail})`, "ok");
  else if (host.state === "not-installed") text("host-status", `not installed — ${HOST_FIX}`, "bad");
  else text("host-status", `${host.state}${host.detail ? `: ${host.detail}` : ""}`, "bad");
  const broker = state.broker;
  if (broker.state === "connected") text("broker-status", `connected to ${broker.url}`, "ok");
  else text("broker-status", `${broker.state}${broker.detail ? `: ${broker.detail}` : ""} — ${BROKER_FIX}`, "bad");
}

function renderPrediction(tab) {
  const demand = tab.demand;
  if (!demand) {
    $("chart-figure").hidden = true;
    $("curves-figure").hidden = true;
    rows("estimate", []);
    return;
  }
  const chartRows = [
    ...demand.paths.map((p) => ({ label: p.name, q: p.cpu_ms })),
    ...demand.components.map((c) => ({ label: `worker ${fileName(c.url)}`, q: c.cpu_ms })),
  ];
  const curves = demandCurves(demand.paths);
  $("curves").replaceChildren(...(curves ? [curves] : []));
  $("curves-figure").hidden = !curves;
  $("chart").replaceChildren(demandChart(chartRows));
  $("chart-figure").hidden = chartRows.length === 0;
  const load = demand.paths[0];
  rows("estimate", [
    ["Load CPU", load ? ms(load.cpu_ms) : "—"],
    ["Load memory", load ? mib(load.memory_bytes.p50) : "—"],
    ["Load network", load ? mib(load.network_bytes.p50) : "—"],
    ["Interactions", String(Math.max(0, demand.paths.length - 1))],
    ["Graph", `${demand.graph.nodes} nodes, ${demand.graph.edges} edges, ${demand.graph.scripts} scripts`],
    ...demand.components.map((c) => [`Worker ${fileName(c.url)}`, ms(c.cpu_ms)]),
    ...learnedRows(tab.learning),
    ...demand.warnings.slice(0, 3).map((w) => ["Note", w]),
  ]);
}

// What on-device learning changed in this prediction (learning.js): one row per quantity.
function learnedRows(learning) {
  return Object.entries(learning?.applied ?? {}).map(([key, a]) => [
    `Learned: ${key}`,
    `×${a.factor.toFixed(2)} from ${a.n} visit${a.n === 1 ? "" : "s"}${a.exact ? "" : " (code changed since)"}`,
  ]);
}

function renderPlan(tab) {
  const plan = tab.plan;
  if (!plan) {
    rows("plan", []);
    list("placements", []);
    list("reasons", []);
    return;
  }
  const lease = tab.lease;
  rows("plan", [
    ["Planned by", plan.source === "native_host" ? "native host" : "the extension (no host)"],
    ["Reserved here", `${plan.local.cpu_millicores} millicores, ${mib(plan.local.memory_bytes)}`],
    [
      "Leased remotely",
      plan.remote
        ? `${plan.remote.resources.cpu_millicores} millicores, ${mib(plan.remote.resources.memory_bytes)}`
        : "nothing",
    ],
    [
      "Lease",
      lease
        ? `#${lease.lease_id}: ${Math.max(0, Math.round((lease.expires_at_ms - Date.now()) / 1000))} s left`
        : tab.leaseNote || "none",
    ],
  ]);
  const placed = tab.placements.length
    ? tab.placements.map((p) => `${fileName(p.url)}: ${where(p)} — ${p.reason}`)
    : plan.placements.map((p) => `${fileName(p.url)}: ${where(p)} (planned) — ${p.reason}`);
  list("placements", placed.length ? placed : ["no offloadable components"]);
  // plan.reasons already starts with the latest re-plan's cause; earlier ones are listed too.
  const earlier = (tab.replans ?? []).slice(0, -1).map((r) => `earlier re-plan: ${r.why}`);
  list("reasons", [...plan.reasons, ...earlier]);
}

function renderContention(tab) {
  const c = tab?.contention;
  text(
    "contention",
    c
      ? `${c.logical_cpus} CPUs, ${Math.round(c.cpu_usage * 100)}% busy; ${mib(c.available_memory_bytes)} of ${mib(c.total_memory_bytes)} free`
      : "not measured yet",
  );
}

async function renderToggles(tab) {
  const settings = await loadSettings();
  const url = tab?.url ?? "";
  const site = $("site-enabled");
  site.checked = enabledFor(settings, url);
  site.disabled = !/^https?:/.test(url);
  $("offload-enabled").checked = settings.offload === "auto";
  $("offload-enabled").title = offloadAllowedFor(settings, url)
    ? "This page may run work on the broker"
    : "This page's code and data stay on this machine";
}

async function refresh() {
  const tab = await targetTab();
  const state = await api.runtime.sendMessage({ kind: "popup-state", tabId: tab?.id });
  if (state?.error) {
    text("tab-phase", state.error, "bad");
    return;
  }
  renderConnections(state);
  renderContention(state.tab);
  await renderToggles(tab);
  if (!state.tab) {
    text("tab-phase", "Foresight has not seen this page yet (reload it to analyse it).", "muted");
    return;
  }
  text("tab-phase", state.tab.error ? `${state.tab.phase}: ${state.tab.error}` : state.tab.phase);
  renderPrediction(state.tab);
  renderPlan(state.tab);
}

$("site-enabled").addEventListener("change", async (event) => {
  const tab = await targetTab();
  const host = tab?.url ? new URL(tab.url).hostname.toLowerCase() : "";
  if (!host) return;
  const settings = await loadStoredSettings();
  const others = settings.disabledSites.filter((h) => h !== host);
  await saveSettings({ ...settings, disabledSites: event.target.checked ? others : [...others, host] });
  text("notice", "Saved: reload the page for it to take effect.", "muted");
});

$("offload-enabled").addEventListener("change", async (event) => {
  const settings = await loadStoredSettings();
  await saveSettings({ ...settings, offload: event.target.checked ? "auto" : "never" });
  text("notice", "Saved: applies to pages loaded from now on.", "muted");
});

refresh();
setInterval(refresh, 1000);
