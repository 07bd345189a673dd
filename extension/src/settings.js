// The user's settings, kept in extension storage (never only in globals: the background may
// be stopped and restarted at any time), with the defaults a fresh install runs on, their
// validation, and the per-site rules derived from them. Used by the background, the popup
// and the options page alike.

import { api } from "./platform.js";

export const DEFAULT_BROKER_URL = "ws://127.0.0.1:47800";

export const DEFAULTS = Object.freeze({
  // Empty: use the broker the native host was configured with, else DEFAULT_BROKER_URL.
  brokerUrl: "",
  brokerToken: "",
  // "auto" offloads what the plan says is worth it; "never" sends nothing to a broker.
  offload: "auto",
  // Sites (host names; a name also covers its subdomains) whose code and data may go to the
  // broker. Empty means every site not denied.
  offloadAllow: [],
  // Sites whose code and data never go to the broker, whatever else is set.
  offloadDeny: [],
  // Sites where Foresight does nothing at all (the popup's "on this site" toggle).
  disabledSites: [],
  // The quantile of predicted demand that local reservations cover.
  quantile: 0.9,
  // Lease priority, 0 (lowest) to 9.
  priority: 5,
  // At most this share (0-1) of a page's predicted CPU may run on the broker.
  maxRemoteShare: 1,
  // Opt-in: discard idle background tabs when a plan's predicted memory exceeds what is free.
  discardTabs: false,
  // A tab used within this many minutes is never discarded.
  discardIdleMinutes: 10,
  // Abstract work units per millisecond on this device (see the estimator's Calibration).
  // null: use the background's calibration of this device; a number set by the user wins.
  unitsPerMs: null,
});

/** Units per millisecond until the device has been calibrated. */
export const UNCALIBRATED_UNITS_PER_MS = 1e6;

// A calibration older than this is measured again (the device, its power settings and its
// browser change).
export const CALIBRATION_MAX_AGE_MS = 7 * 24 * 3600 * 1000;

const HOST_PATTERN = /^(\*\.)?([a-z0-9-]+\.)*[a-z0-9-]+$|^\[[0-9a-f:]+\]$/i;

/** Checks and normalises settings; returns `{settings, errors}` (errors keyed by field). */
export function validate(input) {
  const settings = { ...DEFAULTS };
  const errors = {};
  const source = input && typeof input === "object" ? input : {};
  for (const key of Object.keys(source)) {
    if (!(key in DEFAULTS)) errors[key] = "unknown setting";
  }
  if (source.brokerUrl != null) {
    const url = String(source.brokerUrl).trim();
    if (url === "" || /^wss?:\/\/[^\s/]+(\/\S*)?$/i.test(url)) {
      settings.brokerUrl = url;
    } else {
      errors.brokerUrl = "must be a ws:// or wss:// URL, e.g. ws://127.0.0.1:47800";
    }
  }
  if (source.brokerToken != null) settings.brokerToken = String(source.brokerToken);
  if (source.offload != null) {
    if (source.offload === "auto" || source.offload === "never") settings.offload = source.offload;
    else errors.offload = 'must be "auto" or "never"';
  }
  for (const key of ["offloadAllow", "offloadDeny", "disabledSites"]) {
    if (source[key] == null) continue;
    const list = Array.isArray(source[key]) ? source[key] : String(source[key]).split(/[\s,]+/);
    const hosts = list.map((h) => String(h).trim().toLowerCase()).filter(Boolean);
    const bad = hosts.filter((h) => !HOST_PATTERN.test(h));
    if (bad.length) errors[key] = `not a host name: ${bad.join(", ")}`;
    else settings[key] = [...new Set(hosts)];
  }
  if (source.quantile != null) {
    const q = Number(source.quantile);
    if (q >= 0.5 && q <= 0.99) settings.quantile = q;
    else errors.quantile = "must be between 0.5 and 0.99";
  }
  if (source.maxRemoteShare != null && source.maxRemoteShare !== "") {
    const share = Number(source.maxRemoteShare);
    if (Number.isFinite(share) && share >= 0 && share <= 1) settings.maxRemoteShare = share;
    else errors.maxRemoteShare = "must be between 0% and 100%";
  }
  if (source.priority != null) {
    const p = Number(source.priority);
    if (Number.isInteger(p) && p >= 0 && p <= 9) settings.priority = p;
    else errors.priority = "must be a whole number from 0 to 9";
  }
  if (source.discardTabs != null) settings.discardTabs = source.discardTabs === true;
  if (source.discardIdleMinutes != null) {
    const m = Number(source.discardIdleMinutes);
    if (Number.isFinite(m) && m >= 0 && m <= 1440) settings.discardIdleMinutes = m;
    else errors.discardIdleMinutes = "must be between 0 and 1440 minutes";
  }
  if (source.unitsPerMs != null && source.unitsPerMs !== "") {
    const u = Number(source.unitsPerMs);
    if (Number.isFinite(u) && u > 0) settings.unitsPerMs = u;
    else errors.unitsPerMs = "must be a positive number";
  }
  return { settings, errors };
}

/** The settings as stored (validated), without the device calibration filled in. */
export async function loadStoredSettings() {
  const stored = await api.storage.local.get("settings");
  // Stored settings were validated when saved; validating again drops keys that an older or
  // newer version of the extension wrote and this one does not know.
  return validate(stored.settings ?? {}).settings;
}

/** The settings in effect: the stored ones, with `unitsPerMs` from the calibration. */
export async function loadSettings() {
  const stored = await api.storage.local.get(["settings", "calibration"]);
  const { settings } = validate(stored.settings ?? {});
  const calibrated = stored.calibration?.unitsPerMs;
  settings.unitsPerMs ??= calibrated > 0 ? calibrated : UNCALIBRATED_UNITS_PER_MS;
  return settings;
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

/** Validates and saves; resolves with the errors (empty when saved). */
export async function saveSettings(input) {
  const { settings, errors } = validate(input);
  if (Object.keys(errors).length === 0) await api.storage.local.set({ settings });
  return errors;
}

/** Whether `host` is `rule` or a subdomain of it. */
function hostMatches(host, rule) {
  const bare = rule.startsWith("*.") ? rule.slice(2) : rule;
  return host === bare || host.endsWith(`.${bare}`);
}

function hostOf(url) {
  try {
    return new URL(url).hostname.toLowerCase();
  } catch {
    return "";
  }
}

/** Whether Foresight should analyse and orchestrate pages at `url` at all. */
export function enabledFor(settings, url) {
  const host = hostOf(url);
  return !settings.disabledSites.some((rule) => hostMatches(host, rule));
}

/** Whether code and data from `url` may be sent to the broker. */
export function offloadAllowedFor(settings, url) {
  if (settings.offload !== "auto") return false;
  const host = hostOf(url);
  if (!host) return false;
  if (settings.offloadDeny.some((rule) => hostMatches(host, rule))) return false;
  if (settings.offloadAllow.length === 0) return true;
  return settings.offloadAllow.some((rule) => hostMatches(host, rule));
}

/** The planner's policy (shared::protocol::plan::Policy) for a page. */
export function policyFor(settings, url) {
  return {
    offload: offloadAllowedFor(settings, url) ? "auto" : "never",
    quantile: settings.quantile,
    priority: settings.priority,
    max_remote_share: settings.maxRemoteShare,
  };
}

/** The broker URL to use: the user's, else the native host's, else the default. */
export function brokerUrlFrom(settings, hostBrokerUrl) {
  return settings.brokerUrl || hostBrokerUrl || DEFAULT_BROKER_URL;
}
