// Draws the popup's demand chart as SVG (no chart library): one row per execution path or
// component, a band from p10 to p90 and a tick at p50, on a log scale so a 2 ms handler and a
// 2 s worker fit on one chart. Built with DOM calls, never innerHTML, since labels come from
// page code (handler names, URLs).

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
