// A bar chart drawn as SVG by hand (no library): one bar per day, stacked by series, with an
// accessible title and a table fallback the page renders beside it.

const NS = "http://www.w3.org/2000/svg";
const COLOURS = ["#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626", "#0891b2"];

function svg(tag, attributes) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

/**
 * `days`: labels in order; `series`: [{name, values: number[] (one per day)}]. Returns an
 * <svg> with a <title>, the bars stacked per day, and the largest total on the axis.
 */
export function stackedBars(title, days, series, format = String) {
  const width = 640;
  const height = 200;
  const pad = { left: 64, bottom: 24, top: 10 };
  const totals = days.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const max = Math.max(1, ...totals);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart" });
  const label = svg("title", {});
  label.textContent = title;
  chart.append(label);
  const plotHeight = height - pad.bottom - pad.top;
  const step = (width - pad.left) / Math.max(days.length, 1);
  for (const [value, y] of [[max, pad.top], [0, pad.top + plotHeight]]) {
    const text = svg("text", { x: pad.left - 6, y: y + 4, "text-anchor": "end", class: "axis" });
    text.textContent = format(value);
    chart.append(text, svg("line", { x1: pad.left, x2: width, y1: y, y2: y, class: "grid" }));
  }
  days.forEach((day, i) => {
    let y = pad.top + plotHeight;
    series.forEach((s, k) => {
      const h = ((s.values[i] ?? 0) / max) * plotHeight;
      if (h <= 0) return;
      y -= h;
      const bar = svg("rect", { x: pad.left + i * step + step * 0.15, y, width: step * 0.7, height: h, fill: COLOURS[k % COLOURS.length] });
      const tip = svg("title", {});
      tip.textContent = `${day} ${s.name}: ${format(s.values[i])}`;
      bar.append(tip);
      chart.append(bar);
    });
    if (days.length <= 14 || i % Math.ceil(days.length / 10) === 0) {
      const text = svg("text", { x: pad.left + i * step + step / 2, y: height - 6, "text-anchor": "middle", class: "axis" });
      text.textContent = day.slice(5);
      chart.append(text);
    }
  });
  return chart;
}

export function legend(series) {
  const list = document.createElement("ul");
  list.className = "legend";
  series.forEach((s, k) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = `swatch swatch-${k % COLOURS.length}`;
    swatch.setAttribute("aria-hidden", "true");
    item.append(swatch, s.name);
    list.append(item);
  });
  return list;
}
