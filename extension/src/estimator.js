// Loads the Rust -> wasm module (extension/wasm) and exposes the estimator and the fallback
// planner to the background with plain objects in and out (JSON across the boundary keeps the
// glue small and the types defined once, in shared/).

import init, { estimate, plan_fallback } from "./wasm/foresight_wasm.js";

let loading = null;

function load() {
  // Instantiated on first use: a Chrome service worker may not await at module top level.
  loading ??= init();
  return loading;
}

/** PageSources -> PageDemand (shared::protocol::demand). */
export async function estimatePage(sources, unitsPerMs) {
  await load();
  return JSON.parse(estimate(JSON.stringify(sources), unitsPerMs));
}

/** The planner compiled into the extension, for when no native host answers. */
export async function fallbackPlan(demand, contention, policy, broker) {
  await load();
  return JSON.parse(
    plan_fallback(
      JSON.stringify(demand),
      JSON.stringify(contention),
      JSON.stringify(policy),
      JSON.stringify(broker),
    ),
  );
}
