// Tab contention: the browser's other open tabs, as the planner's `tabs` input
// (shared::protocol::plan::TabLoad). The native host sees other applications; only the
// extension sees which tabs are open, which one is in front, which play sound or were
// discarded, and what Foresight predicted each page needs. A plan then leaves room for the
// tabs the user is likely to come back to, not only for other programs.
//
// Read fresh from the tabs API for each plan (no permission needed for these fields), so no
// state lives in globals that a stopped background would lose. Plans are kept current by
// the tab events (`watchTabs`): a tab opened, closed, brought to the front, starting or
// stopping sound, or discarded makes the orchestrator plan its analysed tabs again.

import { api } from "./platform.js";

// A window with more tabs than this is summarised by its first ones; the planner only sums.
const MAX_TABS = 500;

// Tab events this close together are one change (closing a window closes many tabs).
const SETTLE_MS = 250;

/**
 * Calls `onChange(what)` after each burst of tab changes a plan accounts for, `what` naming
 * them ("tab closed; tab activated"). The listeners are added when the first page is
 * analysed, not at the background's start-up: tab events are then no reason to wake a
 * stopped background, which has no plans to keep current anyway.
 */
export function watchTabs(onChange) {
  const seen = [];
  let timer = null;
  const changed = (what) => {
    if (!seen.includes(what)) seen.push(what);
    if (timer != null) return;
    timer = setTimeout(() => {
      timer = null;
      onChange(seen.splice(0).join("; "));
    }, SETTLE_MS);
  };
  api.tabs.onCreated.addListener(() => changed("tab opened"));
  api.tabs.onRemoved.addListener(() => changed("tab closed"));
  api.tabs.onActivated.addListener(() => changed("tab activated"));
  api.tabs.onUpdated.addListener((_tabId, change) => {
    if (change.audible !== undefined) changed(change.audible ? "tab playing sound" : "tab silent");
    if (change.discarded !== undefined) changed(change.discarded ? "tab discarded" : "tab reloaded");
  });
}

/**
 * The tabs other than `currentTabId`, each with its state and predicted demand.
 * `sessions` maps tab ids to the orchestrator's sessions (for their predicted demand).
 */
export async function otherTabs(currentTabId, sessions) {
  const [tabs, windows] = await Promise.all([
    api.tabs.query({}),
    api.windows?.getAll ? api.windows.getAll().catch(() => []) : [],
  ]);
  const minimized = new Set(windows.filter((w) => w.state === "minimized").map((w) => w.id));
  return tabs
    .filter((tab) => tab.id != null && tab.id !== currentTabId)
    .slice(0, MAX_TABS)
    .map((tab) => ({
      tab_id: tab.id,
      active: !!tab.active,
      visible: !!tab.active && !minimized.has(tab.windowId),
      audible: !!tab.audible,
      discarded: !!tab.discarded,
      ...predictedDemand(sessions.get(tab.id)),
    }));
}

/** What a tab's page was predicted to need (median), for what stays on this machine. */
function predictedDemand(session) {
  const demand = session?.result?.demand;
  if (!demand) return { predicted_cpu_ms: 0, predicted_memory_bytes: 0 };
  const remote = new Set(
    (session.result.plan?.placements ?? [])
      .filter((p) => p.target === "remote")
      .map((p) => p.component_id),
  );
  let cpu = demand.paths?.[0]?.cpu_ms?.p50 ?? 0;
  let memory = demand.paths?.[0]?.memory_bytes?.p50 ?? 0;
  for (const c of demand.components ?? []) {
    if (remote.has(c.id)) continue;
    cpu += c.cpu_ms?.p50 ?? 0;
    memory += c.memory_bytes?.p50 ?? 0;
  }
  return { predicted_cpu_ms: cpu, predicted_memory_bytes: Math.round(memory) };
}
