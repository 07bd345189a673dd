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
  // Abstract work units per millisecond on this device (see the estimator's Calibration):
  // this default until the background's calibration has run; a user's own value wins.
  unitsPerMs: 1e6,
});

// A calibration older than this is measured again (the device, its power settings and its
// browser change).
export const CALIBRATION_MAX_AGE_MS = 7 * 24 * 3600 * 1000;

export async function loadSettings() {
  const stored = await api.storage.local.get(["settings", "calibration"]);
  const calibrated = stored.calibration?.unitsPerMs;
  return {
    ...DEFAULTS,
    ...(calibrated > 0 ? { unitsPerMs: calibrated } : {}),
    ...(stored.settings ?? {}),
  };
}

/** The stored calibration ({unitsPerMs, units, medianMs, at}), or null. */
export async function loadCalibration() {
  return (await api.storage.local.get("calibration")).calibration ?? null;
}

export async function saveCalibration(calibration) {
  await api.storage.local.set({ calibration });
}

/**
 * Measures this device once (and again when the stored measurement is older than
 * CALIBRATION_MAX_AGE_MS) with `calibrate` (estimator.js), and keeps the result.
 */
export async function ensureCalibration(calibrate, now = Date.now()) {
  const current = await loadCalibration();
  if (current && now - current.at < CALIBRATION_MAX_AGE_MS) return current;
  const fresh = await calibrate();
  await saveCalibration(fresh);
  return fresh;
}

/** The planner's policy (shared::protocol::plan::Policy) from the settings. */
export function policyFrom(settings) {
  return { offload: settings.offload === "never" ? "never" : "auto" };
}

/** The broker URL to use: the user's, else the native host's, else the default. */
export function brokerUrlFrom(settings, hostBrokerUrl) {
  return settings.brokerUrl || hostBrokerUrl || DEFAULT_BROKER_URL;
}
