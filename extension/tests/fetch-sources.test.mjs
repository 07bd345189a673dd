// Unit tests for what a remote worker is sent with: the URLs its source loads (run by
// `cargo xtask test` with `node --test`). The fetching itself runs in the e2e tests.
import assert from "node:assert/strict";
import test from "node:test";

import { importedUrls } from "../src/fetch-sources.js";

const BASE = "http://127.0.0.1:8080/workers/w.js";

test("classic workers load the string literals of their importScripts calls", () => {
  const source = `importScripts("a.js", '/lib/b.js'); importScripts(\`c.js\`); importScripts(dynamic);`;
  assert.deepEqual(importedUrls(source, BASE), [
    "http://127.0.0.1:8080/workers/a.js",
    "http://127.0.0.1:8080/lib/b.js",
    "http://127.0.0.1:8080/workers/c.js",
  ]);
});

test("module workers load relative and absolute specifiers, not bare ones", () => {
  const source = [
    `import { f } from "./f.js";`,
    `export * from '../g.js';`,
    `import "./side-effect.js";`,
    `const h = await import("http://127.0.0.1:9090/h.js");`,
    `import lodash from "lodash";`,
  ].join("\n");
  assert.deepEqual(importedUrls(source, BASE, true), [
    "http://127.0.0.1:8080/workers/f.js",
    "http://127.0.0.1:8080/g.js",
    "http://127.0.0.1:8080/workers/side-effect.js",
    "http://127.0.0.1:9090/h.js",
  ]);
});

test("a classic worker's module syntax and a module's importScripts load nothing", () => {
  assert.deepEqual(importedUrls(`import x from "./x.js";`, BASE), []);
  assert.deepEqual(importedUrls(`importScripts("a.js");`, BASE, true), []);
});
