// The popup: connection status, and the active tab's estimate, plan and lease, as the
// background's orchestrator currently knows them.

import { api } from "./platform.js";

const INSTALL_HINT = "install it with: foresight-host install";

function text(id, value, cls) {
  const el = document.getElementById(id);
  el.textContent = value;
  if (cls) el.className = cls;
}

function rows(id, pairs) {
  const dl = document.getElementById(id);
  dl.replaceChildren();
  for (const [k, v] of pairs) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    dl.append(dt, dd);
  }
}

function list(id, items) {
  const ul = document.getElementById(id);
  ul.replaceChildren(
    ...items.map((item) => {
      const li = document.createElement("li");
      li.textContent = item;
      return li;
    }),
  );
}

const ms = (q) => `${Math.round(q.p50)} ms (p10 ${Math.round(q.p10)}, p90 ${Math.round(q.p90)})`;
const mib = (bytes) => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;

function render(state) {
  const host = state.host;
  text(
    "host-status",
    host.state === "connected"
      ? `connected (${host.detail})`
      : host.state === "not-installed"
        ? `not installed — ${INSTALL_HINT}`
        : `${host.state}${host.detail ? `: ${host.detail}` : ""}`,
    host.state === "connected" ? "ok" : "bad",
  );
  const broker = state.broker;
  text(
    "broker-status",
    broker.state === "connected"
      ? `connected to ${broker.url}`
      : `${broker.state}${broker.detail ? `: ${broker.detail}` : ""} — start one with: foresight-broker`,
    broker.state === "connected" ? "ok" : "bad",
  );
  const tab = state.tab;
  if (!tab) {
    text("tab-phase", "Foresight has not seen this page (reload it to analyse it).");
    return;
  }
  text("tab-phase", tab.error ? `${tab.phase}: ${tab.error}` : tab.phase);
  if (tab.demand) {
    const load = tab.demand.paths[0];
    rows("estimate", [
      ["Load CPU", load ? ms(load.cpu_ms) : "—"],
      ["Load memory", load ? mib(load.memory_bytes.p50) : "—"],
      ["Graph", `${tab.demand.graph.nodes} nodes, ${tab.demand.graph.scripts} scripts`],
      ...tab.demand.components.map((c) => [`Worker ${c.id}`, ms(c.cpu_ms)]),
    ]);
  }
  if (tab.plan) {
    const plan = tab.plan;
    rows("plan", [
      ["Planned by", plan.source.replace("_", " ")],
      ["Local", `${plan.local.cpu_millicores} millicores, ${mib(plan.local.memory_bytes)}`],
      [
        "Remote",
        plan.remote
          ? `${plan.remote.resources.cpu_millicores} millicores, ${mib(plan.remote.resources.memory_bytes)}`
          : "none",
      ],
      [
        "Lease",
        tab.lease
          ? `#${tab.lease.lease_id}, ${Math.max(0, Math.round((tab.lease.expires_at_ms - Date.now()) / 1000))} s left`
          : tab.leaseNote || "none",
      ],
    ]);
    list(
      "placements",
      tab.placements.map((p) => `${p.url.split("/").pop()}: ${p.target} — ${p.reason}`),
    );
    list("reasons", plan.reasons);
  }
}

async function refresh() {
  const [active] = await api.tabs.query({ active: true, currentWindow: true });
  const state = await api.runtime.sendMessage({ kind: "popup-state", tabId: active?.id });
  if (state?.error) {
    text("tab-phase", state.error, "bad");
    return;
  }
  render(state);
}

refresh();
setInterval(refresh, 1000);
