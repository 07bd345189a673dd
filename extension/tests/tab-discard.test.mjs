// Unit tests for the pure tab-discarding rules (run by `cargo xtask test` with `node --test`).
import assert from "node:assert/strict";
import test from "node:test";

import { ASSUMED_TAB_BYTES, MAX_DISCARDS, chooseTabsToDiscard } from "../src/tab-discard.js";

const NOW = 10_000_000;
const IDLE = 10 * 60 * 1000;
const old = (id, extra = {}) => ({ id, active: false, pinned: false, audible: false, discarded: false, lastAccessed: NOW - IDLE - id, ...extra });
const facts = (extra = {}) => ({ now: NOW, idleMs: IDLE, deficitBytes: ASSUMED_TAB_BYTES, busyTabIds: new Set(), requestingTabId: 99, ...extra });

test("discards the least recently used idle tab", () => {
  const { discard } = chooseTabsToDiscard([old(1), old(2), old(3)], facts());
  assert.deepEqual(discard, [3]);
});

test("never discards protected tabs", () => {
  const tabs = [
    old(1, { active: true }),
    old(2, { pinned: true }),
    old(3, { audible: true }),
    old(4, { discarded: true }),
    old(5, { lastAccessed: NOW - 1000 }),
    old(6, { lastAccessed: undefined }),
    old(7),
    old(99),
  ];
  const { discard, spared } = chooseTabsToDiscard(tabs, facts({ busyTabIds: new Set([7]), deficitBytes: 100 * ASSUMED_TAB_BYTES }));
  assert.deepEqual(discard, []);
  assert.deepEqual(
    spared.map((s) => s.why),
    ["active", "pinned", "playing sound", "already discarded", "used recently", "used recently", "unsaved input or media", "the page that needs the memory"],
  );
});

test("discards only as many as the deficit needs, and at most the cap", () => {
  const tabs = Array.from({ length: 20 }, (_, i) => old(i + 1));
  assert.equal(chooseTabsToDiscard(tabs, facts({ deficitBytes: 2 * ASSUMED_TAB_BYTES + 1 })).discard.length, 3);
  assert.equal(chooseTabsToDiscard(tabs, facts({ deficitBytes: 1e15 })).discard.length, MAX_DISCARDS);
  assert.equal(chooseTabsToDiscard(tabs, facts({ deficitBytes: 0 })).discard.length, 0);
});
