// Which background tabs to discard when a page is predicted to need more memory than the
// machine has free (an opt-in setting). Pure: no browser APIs, so it is unit-tested in Node
// (extension/tests/tab-discard.test.mjs) and the rules are in one place.
//
// Losing what a person was doing is the top complaint about tab-discarding extensions, so a
// tab is never discarded when it is active, pinned, playing or showing media, holding unsaved
// form input, already discarded, or used within the idle window.

/** What discarding one tab is assumed to free; the browser does not tell us per tab. */
export const ASSUMED_TAB_BYTES = 150 * 1024 * 1024;

/** Never discard more than this many tabs for one page. */
export const MAX_DISCARDS = 5;

/**
 * @param {object[]} tabs tabs as the tabs API describes them (id, active, pinned, audible,
 *   discarded, lastAccessed)
 * @param {object} facts
 * @param {number} facts.now milliseconds since the epoch
 * @param {number} facts.idleMs a tab used more recently than this is spared
 * @param {number} facts.deficitBytes how much more memory the plan needs than is free
 * @param {Set<number>} facts.busyTabIds tabs whose page reported unsaved input or playing media
 * @param {number} facts.requestingTabId the tab that needs the memory
 * @returns {{discard: number[], spared: {id: number, why: string}[]}}
 */
export function chooseTabsToDiscard(tabs, facts) {
  const spared = [];
  const candidates = [];
  for (const tab of tabs) {
    const why = protection(tab, facts);
    if (why) spared.push({ id: tab.id, why });
    else candidates.push(tab);
  }
  if (!(facts.deficitBytes > 0)) return { discard: [], spared };
  // Least recently used first.
  candidates.sort((a, b) => (a.lastAccessed ?? 0) - (b.lastAccessed ?? 0) || a.id - b.id);
  const wanted = Math.min(MAX_DISCARDS, Math.ceil(facts.deficitBytes / ASSUMED_TAB_BYTES));
  return { discard: candidates.slice(0, wanted).map((t) => t.id), spared };
}

function protection(tab, facts) {
  if (tab.id === facts.requestingTabId) return "the page that needs the memory";
  if (tab.active) return "active";
  if (tab.pinned) return "pinned";
  if (tab.discarded) return "already discarded";
  if (tab.audible) return "playing sound";
  if (facts.busyTabIds.has(tab.id)) return "unsaved input or media";
  // A tab without lastAccessed cannot be shown idle, so it is spared.
  if (tab.lastAccessed == null || facts.now - tab.lastAccessed < facts.idleMs) {
    return "used recently";
  }
  return null;
}
