// Fetching sources for the orchestrator: a page's scripts and style sheets for the estimate,
// and a remote worker's script with everything it loads (the broker's executors have no
// network, so a worker goes out with its imports). Bounded in time, size and count: a page
// cannot make the background fetch without end.

const FETCH_TIMEOUT_MS = 5_000;
const MAX_SOURCE_BYTES = 8 * 1024 * 1024;
// importScripts the orchestrator supplies with a remote worker: string literals found in its
// source (and in theirs, one level down), fetched up front.
const MAX_IMPORTS = 32;
const MAX_MODULES = 64;

/**
 * URLs a worker's source may load, resolved against `base`: the string literals of its
 * `importScripts(...)` calls (classic) or its `import`/`export ... from` specifiers and
 * `import("...")` calls (module; bare specifiers cannot load in a worker either).
 */
export function importedUrls(source, base, module = false) {
  if (module) {
    const urls = [];
    const specifiers = [
      ...source.matchAll(/\b(?:import|export)\s[^'"`;]*?\bfrom\s*(["'])([^"']+)\1/g),
      ...source.matchAll(/\bimport\s*(["'])([^"']+)\1/g),
      ...source.matchAll(/\bimport\s*\(\s*(["'])([^"']+)\1\s*\)/g),
    ];
    for (const m of specifiers) {
      if (!/^(\/|\.\/|\.\.\/|[a-z][a-z0-9+.-]*:)/i.test(m[2])) continue;
      try {
        urls.push(new URL(m[2], base).href);
      } catch {
        // Not a URL: the import fails in the worker, as it would locally.
      }
    }
    return urls;
  }
  const urls = [];
  for (const call of source.matchAll(/importScripts\s*\(([^)]*)\)/g)) {
    for (const lit of call[1].matchAll(/(["'`])((?:\\.|(?!\1)[^\\])*)\1/g)) {
      try {
        urls.push(new URL(lit[2], base).href);
      } catch {
        // Not a URL: importScripts will throw in the worker, as it would locally.
      }
    }
  }
  return urls;
}

/** `url`'s text, or `{ error }`: bounded in time and size, from the HTTP cache when it can. */
export async function fetchText(url) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
  try {
    const response = await fetch(url, { signal: controller.signal, cache: "force-cache" });
    if (!response.ok) return { error: `HTTP ${response.status}` };
    const text = await response.text();
    if (text.length > MAX_SOURCE_BYTES) return { error: "too large", bytes: text.length };
    return { text, bytes: new TextEncoder().encode(text).length };
  } catch (error) {
    return { error: String(error?.message ?? error) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A worker's source and what it loads, fetched up front for a remote executor (which has no
 * network): `knownSource` when the page or an earlier capture supplied it, else fetched from
 * `url`; then its importScripts literals one level down (classic) or its static module graph
 * (module). `{ error }` when the source itself cannot be read.
 */
export async function workerScript(url, knownSource, module) {
  let source = knownSource ?? null;
  if (source == null && /^https?:/.test(url)) source = (await fetchText(url)).text ?? null;
  if (source == null) return { error: "the worker's source could not be read" };
  const imports = [];
  const seen = new Set();
  // Classic: importScripts literals, one level down. Module: the whole static graph.
  const maxDepth = module ? 8 : 1;
  const maxCount = module ? MAX_MODULES : MAX_IMPORTS;
  let pending = importedUrls(source, url, module).map((u) => [u, 0]);
  while (pending.length > 0 && imports.length < maxCount) {
    const [importUrl, depth] = pending.shift();
    if (seen.has(importUrl) || !/^https?:/.test(importUrl)) continue;
    seen.add(importUrl);
    const fetched = await fetchText(importUrl);
    // A script that cannot be fetched is left out: importScripts throws a NetworkError
    // for it in the worker, as it would locally.
    if (fetched.text == null) continue;
    imports.push({ url: importUrl, source: fetched.text });
    if (depth < maxDepth) {
      pending = pending.concat(importedUrls(fetched.text, importUrl, module).map((u) => [u, depth + 1]));
    }
  }
  return { source, imports };
}
