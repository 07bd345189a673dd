// The extension's background: Chrome runs it as a module service worker, Firefox as a module
// event page. It wires browser events to the orchestrator; listeners are registered
// synchronously at start-up, as both browsers require for events that wake the background.

import { Orchestrator } from "./orchestrator.js";
import { api, onRuntimeMessage } from "./platform.js";

const orchestrator = new Orchestrator();

api.runtime.onConnect.addListener((port) => {
  if (port.name === "foresight-tab" && port.sender?.tab?.id != null) {
    orchestrator.attach(port);
  }
});

onRuntimeMessage(async (message) => {
  if (message?.kind === "popup-state") return orchestrator.popupState(message.tabId);
  if (message?.kind === "calibrate") return orchestrator.recalibrate();
  return { error: `unknown request ${message?.kind}` };
});

orchestrator.start();
