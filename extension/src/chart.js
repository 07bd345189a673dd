// Draws the popup's demand charts as SVG (no chart library), built with DOM calls, never
// innerHTML, since labels come from page code (handler names, URLs):
// - `demandCurves`: one small chart per execution path, its CPU demand over time (share of a
//   core per bucket of the estimator's curve) as a p10-p90 band with the p50 line;
// - `demandChart`: one row per path or component, a band from p10 to p90 of its total CPU and
//   a tick at p50, on a log scale so a 2 ms handler and a 2 s worker fit on one chart.

const SVG = "http://www.w3.org/2000/svg";
const ROW = 18;
const LABEL_WIDTH = 130;
const WIDTH = 440;

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text != null) node.textContent = text;
  return node;
}

function shorten(label, max = 22) {
  return label.length > max ? `…${label.slice(-(max - 1))}` : label;
}

/**
 * @param {{label: string, q: {p10: number, p50: number, p90: number}}[]} rows CPU ms per row
 * @returns {SVGSVGElement}
 */
export function demandChart(rows) {
  const values = rows.flatMap((r) => [r.q.p10, r.q.p90]).filter((v) => v > 0);
  const lo = Math.max(0.01, Math.min(...values, 1));
  const hi = Math.max(...values, 10);
  const min = Math.log10(lo);
  const span = Math.max(1e-9, Math.log10(hi) - min);
  const plot = WIDTH - LABEL_WIDTH - 10;
  const x = (v) => LABEL_WIDTH + (plot * (Math.log10(Math.max(v, lo)) - min)) / span;
  const height = rows.length * ROW + 22;
  const svg = el("svg", {
    viewBox: `0 0 ${WIDTH} ${height}`,
    role: "img",
    "aria-label": rows
      .map((r) => `${r.label}: ${Math.round(r.q.p50)} ms CPU (p10 ${Math.round(r.q.p10)}, p90 ${Math.round(r.q.p90)})`)
      .join("; "),
  });
  rows.forEach((r, i) => {
    const y = i * ROW + 4;
    svg.append(el("text", { x: 0, y: y + 11 }, shorten(r.label)));
    const x10 = x(r.q.p10);
    svg.append(el("rect", { class: "band", x: x10, y, width: Math.max(2, x(r.q.p90) - x10), height: ROW - 6 }));
    const x50 = x(r.q.p50);
    svg.append(el("line", { class: "median", x1: x50, x2: x50, y1: y - 1, y2: y + ROW - 5 }));
  });
  const axisY = rows.length * ROW + 6;
  svg.append(el("line", { class: "axis", x1: LABEL_WIDTH, x2: WIDTH - 10, y1: axisY, y2: axisY }));
  for (let decade = Math.ceil(min); decade <= Math.log10(hi); decade++) {
    const v = 10 ** decade;
    svg.append(el("text", { x: x(v) - 8, y: axisY + 13 }, v >= 1000 ? `${v / 1000}s` : `${v}ms`));
  }
  return svg;
}

const CURVE_HEIGHT = 34;
const CURVE_GAP = 16;

function duration(ms) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms >= 10_000 ? 0 : 1)} s` : `${Math.round(ms)} ms`;
}

/**
 * @param {object[]} paths PathDemand objects (shared::protocol::demand) with a `curve`
 * @returns {SVGSVGElement | null} null when no path has a curve
 */
export function demandCurves(paths) {
  const withCurves = paths.filter((p) => p.curve?.bucket_ms > 0 && p.curve.buckets?.length);
  if (withCurves.length === 0) return null;
  const plot = WIDTH - LABEL_WIDTH - 10;
  const height = withCurves.length * (CURVE_HEIGHT + CURVE_GAP);
  const svg = el("svg", {
    viewBox: `0 0 ${WIDTH} ${height}`,
    role: "img",
    "aria-label": withCurves
      .map((p) => `${p.name}: ${Math.round(p.cpu_ms.p50)} ms CPU over ${duration(p.curve.bucket_ms * p.curve.buckets.length)}`)
      .join("; "),
  });
  withCurves.forEach((path, row) => {
    const top = row * (CURVE_HEIGHT + CURVE_GAP) + 4;
    const { bucket_ms: width, buckets } = path.curve;
    const span = width * buckets.length;
    // Share of one core per bucket; a path can use more than one core, the chart tops at 1.
    const share = (q) => buckets.map((b) => Math.min(1, Math.max(0, b.cpu_ms[q] / width)));
    const x = (i) => LABEL_WIDTH + (plot * i) / buckets.length;
    const y = (v) => top + CURVE_HEIGHT - v * CURVE_HEIGHT;
    const lo = share("p10");
    const hi = share("p90");
    const mid = share("p50");
    const band = [
      ...hi.flatMap((v, i) => [`${x(i)},${y(v)}`, `${x(i + 1)},${y(v)}`]),
      ...lo.map((v, i) => [`${x(i + 1)},${y(v)}`, `${x(i)},${y(v)}`]).reverse().flat(),
    ];
    svg.append(el("text", { x: 0, y: top + 12 }, shorten(path.name)));
    svg.append(el("text", { x: 0, y: top + 26, class: "muted" }, duration(span)));
    svg.append(el("polygon", { class: "band", points: band.join(" ") }));
    svg.append(
      el("polyline", {
        class: "median",
        fill: "none",
        points: mid.flatMap((v, i) => [`${x(i)},${y(v)}`, `${x(i + 1)},${y(v)}`]).join(" "),
      }),
    );
    svg.append(el("line", { class: "axis", x1: LABEL_WIDTH, x2: WIDTH - 10, y1: y(0), y2: y(0) }));
  });
  return svg;
}
