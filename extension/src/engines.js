// Pricing a broker's engines for the planner (pure, no browser API, so `node --test` runs it).
// The broker's hello announces each engine's time for the extension's own calibration kernel
// (`foresightKernel` in estimator.js); this device timed the same kernel, so the quotient is
// the engine's speed factor relative to this browser, which is what the planner compares.

/**
 * The broker's terms for the planner, with its engines priced relative to this browser: an
 * engine's speed factor is its time for the calibration kernel over ours (`localKernelMs`,
 * the device calibration's median). Without our time, or an engine's, the factor is left
 * out and the planner falls back to the broker-wide figure.
 */
export function engineTerms(terms, localKernelMs) {
  if (!terms) return terms;
  const { offers, ...rest } = terms;
  const ours = Number.isFinite(localKernelMs) && localKernelMs > 0 ? localKernelMs : null;
  const engines = (offers ?? [])
    .filter((o) => o && typeof o.engine === "string")
    .map((o) => ({
      engine: o.engine,
      speed_factor: ours && Number.isFinite(o.kernel_ms) && o.kernel_ms > 0 ? o.kernel_ms / ours : null,
      startup_ms: Number.isFinite(o.startup_ms) ? o.startup_ms : null,
      max_workers: Number.isInteger(o.max_workers) && o.max_workers >= 0 ? o.max_workers : 0,
    }));
  return engines.length > 0 ? { ...rest, engines } : rest;
}
