// The options page: edits the settings in extension storage (settings.js validates them),
// tests a broker URL and token by really connecting to it, and exports and imports settings
// as a JSON file.

import { BrokerClient } from "./broker-client.js";
import { api } from "./platform.js";
import {
  DEFAULT_BROKER_URL,
  loadCalibration,
  loadSettings,
  loadStoredSettings,
  saveSettings,
  validate,
} from "./settings.js";

const $ = (id) => document.getElementById(id);
const LISTS = ["offloadAllow", "offloadDeny", "disabledSites"];
const FIELDS = [
  "brokerUrl",
  "brokerToken",
  "offload",
  "quantile",
  "maxRemoteShare",
  "priority",
  "discardIdleMinutes",
  ...LISTS,
];
// Shown as a percentage, stored as a share.
const PERCENT = new Set(["maxRemoteShare"]);

function fill(settings) {
  for (const key of FIELDS) {
    if (LISTS.includes(key)) $(key).value = settings[key].join("\n");
    else if (PERCENT.has(key)) $(key).value = String(Math.round(settings[key] * 100));
    else $(key).value = String(settings[key]);
  }
  $("discardTabs").checked = settings.discardTabs;
}

async function showCalibration() {
  const [effective, calibration] = await Promise.all([loadSettings(), loadCalibration()]);
  const how = calibration
    ? `measured on this device on ${new Date(calibration.at).toLocaleString()}`
    : "not measured yet: the default";
  $("unitsPerMs").textContent = `${effective.unitsPerMs.toExponential(3)} (${how})`;
}

async function recalibrate() {
  say("calibration-result", "Measuring…");
  const reply = await api.runtime.sendMessage({ kind: "calibrate" });
  if (reply?.error) say("calibration-result", `Not measured: ${reply.error}`, "bad");
  else say("calibration-result", "Measured.", "ok");
  await showCalibration();
}

function read(current) {
  const input = { ...current };
  for (const key of FIELDS) {
    const value = $(key).value;
    input[key] = PERCENT.has(key) && value.trim() !== "" ? Number(value) / 100 : value;
  }
  input.discardTabs = $("discardTabs").checked;
  return input;
}

function showErrors(errors) {
  for (const key of FIELDS) {
    const message = errors[key] ?? "";
    $(`${key}-error`).textContent = message;
    $(key).setAttribute("aria-invalid", message ? "true" : "false");
  }
  const first = FIELDS.find((key) => errors[key]);
  if (first) $(first).focus();
}

function say(id, message, cls = "") {
  $(id).textContent = message;
  $(id).className = cls;
}

async function save(event) {
  event.preventDefault();
  const errors = await saveSettings(read(await loadStoredSettings()));
  showErrors(errors);
  say("saved", Object.keys(errors).length ? "Not saved: fix the fields marked above." : "Saved.", Object.keys(errors).length ? "bad" : "ok");
}

async function testBroker() {
  const { settings, errors } = validate({ brokerUrl: $("brokerUrl").value, brokerToken: $("brokerToken").value });
  if (errors.brokerUrl) {
    showErrors(errors);
    return;
  }
  const url = settings.brokerUrl || DEFAULT_BROKER_URL;
  say("broker-result", `Connecting to ${url}…`);
  const client = new BrokerClient({});
  try {
    const terms = await client.connect(url, settings.brokerToken);
    say(
      "broker-result",
      `Connected to ${client.status.detail || url}: ${terms.capacity.cpu_millicores} millicores, ` +
        `${Math.round(terms.capacity.memory_bytes / 2 ** 20)} MiB, round trip ${terms.rtt_ms.toFixed(1)} ms.`,
      "ok",
    );
  } catch (error) {
    say("broker-result", `Cannot use ${url}: ${error.message}`, "bad");
  } finally {
    client.close();
  }
}

function exportSettings() {
  loadStoredSettings().then((settings) => {
    const blob = new Blob([JSON.stringify({ foresight_settings: 1, settings }, null, 2)], {
      type: "application/json",
    });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "foresight-settings.json";
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 0);
  });
}

async function importSettings(event) {
  const file = event.target.files?.[0];
  if (!file) return;
  let parsed;
  try {
    parsed = JSON.parse(await file.text());
  } catch (error) {
    say("saved", `Not imported: the file is not JSON (${error.message}).`, "bad");
    return;
  }
  const errors = await saveSettings(parsed?.settings ?? parsed);
  if (Object.keys(errors).length) {
    const detail = Object.entries(errors).map(([k, v]) => `${k}: ${v}`).join("; ");
    say("saved", `Not imported: ${detail}.`, "bad");
    return;
  }
  fill(await loadStoredSettings());
  say("saved", "Imported and saved.", "ok");
}

$("form").addEventListener("submit", save);
$("test-broker").addEventListener("click", testBroker);
$("export").addEventListener("click", exportSettings);
$("import").addEventListener("change", importSettings);
$("recalibrate").addEventListener("click", recalibrate);
Promise.all([loadStoredSettings().then(fill), showCalibration()])
  .then(() => {
    // Tells automation (and nobody else needs to know) that the form shows stored values.
    document.documentElement.dataset.ready = "true";
  });
