// The user's settings, kept in extension storage (never only in globals: the background may
// be stopped and restarted at any time), with the defaults a fresh install runs on.

import { api } from "./platform.js";

export const DEFAULT_BROKER_URL = "ws://127.0.0.1:47800";

export const DEFAULTS = Object.freeze({
  // Empty: use the broker the native host was configured with, else DEFAULT_BROKER_URL.
  brokerUrl: "",
  brokerToken: "",
  // "auto" offloads what the plan says is worth it; "never" sends nothing to a broker.
  offload: "auto",
  // Abstract work units per millisecond on this device (see the estimator's Calibration).
  unitsPerMs: 1e6,
});

export async function loadSettings() {
  const stored = await api.storage.local.get("settings");
  return { ...DEFAULTS, ...(stored.settings ?? {}) };
}

/** The planner's policy (shared::protocol::plan::Policy) from the settings. */
export function policyFrom(settings) {
  return { offload: settings.offload === "never" ? "never" : "auto" };
}

/** The broker URL to use: the user's, else the native host's, else the default. */
export function brokerUrlFrom(settings, hostBrokerUrl) {
  return settings.brokerUrl || hostBrokerUrl || DEFAULT_BROKER_URL;
}
