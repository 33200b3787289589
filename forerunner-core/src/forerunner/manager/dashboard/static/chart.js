// The throughput chart of the overview: an inline SVG drawn from the per-minute buckets
// of GET v1/overview. Drawn at the container's pixel width (not scaled with a viewBox),
// so the text stays the page's size at 390 px and at 1280 px.
//
// Top panel: jobs finished per minute, succeeded and failed stacked (failed also hatched,
// so it reads without colour), and jobs submitted as a line. Bottom panel: the failure
// rate, failed / (succeeded + failed), where a minute finished anything. The numbers are
// also in a table under the chart, for a screen reader and for exact values.

import { formatClock, formatNumber, formatPercent, h, s, tableWrap } from "./dom.js";

const TOP_HEIGHT = 150;
const RATE_HEIGHT = 52;
const GAP = 30;
const MARGIN = { top: 10, right: 10, bottom: 22, left: 42 };

// The top of the scale: four grid steps of 1, 2 or 5 times a power of ten, so every
// label is a whole number.
function niceMax(max) {
  const quarter = Math.max(1, max / 4);
  const power = 10 ** Math.floor(Math.log10(quarter));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= quarter) return 4 * step * power;
  }
  return 40 * power;
}

function rates(succeeded, failed) {
  return succeeded.map((ok, i) => {
    const done = ok + failed[i];
    return done ? failed[i] / done : null;
  });
}

function sum(values) {
  return values.reduce((total, value) => total + value, 0);
}

export function summarise(throughput) {
  const submitted = sum(throughput.submitted);
  const succeeded = sum(throughput.succeeded);
  const failed = sum(throughput.failed);
  const finished = succeeded + failed;
  return { submitted, succeeded, failed, rate: finished ? failed / finished : null };
}

function bucketTimes(throughput) {
  const start = new Date(throughput.start).getTime();
  return throughput.submitted.map((_, i) => new Date(start + i * throughput.bucket_seconds * 1000));
}

function describe(throughput) {
  const total = summarise(throughput);
  const minutes = Math.round((throughput.submitted.length * throughput.bucket_seconds) / 60);
  return (
    `Last ${minutes} minutes: ${formatNumber(total.submitted)} submitted, ` +
    `${formatNumber(total.succeeded)} succeeded, ${formatNumber(total.failed)} failed; ` +
    `failure rate ${formatPercent(total.rate)}.`
  );
}

function drawSvg(throughput, width) {
  const n = throughput.submitted.length;
  const times = bucketTimes(throughput);
  const plotWidth = Math.max(60, width - MARGIN.left - MARGIN.right);
  const height = MARGIN.top + TOP_HEIGHT + GAP + RATE_HEIGHT + MARGIN.bottom;
  const step = plotWidth / n;
  const barWidth = Math.max(1, Math.min(step * 0.72, step - 1));
  const x = (i) => MARGIN.left + i * step;
  const peak = Math.max(
    ...throughput.submitted,
    ...throughput.succeeded.map((ok, i) => ok + throughput.failed[i]),
  );
  const top = niceMax(peak);
  const yTop = (v) => MARGIN.top + TOP_HEIGHT - (v / top) * TOP_HEIGHT;
  const rateTop = MARGIN.top + TOP_HEIGHT + GAP;
  const yRate = (r) => rateTop + RATE_HEIGHT - r * RATE_HEIGHT;
  const titleId = "throughput-chart-title";

  const svg = s("svg", {
    class: "chart",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-labelledby": titleId,
  });
  svg.append(
    s("title", { id: titleId }, `Throughput and failure rate per minute. ${describe(throughput)}`),
    s(
      "defs",
      {},
      s(
        "pattern",
        {
          id: "hatch-failed",
          patternUnits: "userSpaceOnUse",
          width: 5,
          height: 5,
          patternTransform: "rotate(45)",
        },
        s("rect", { width: 5, height: 5, class: "hatch-bg" }),
        s("line", { x1: 0, y1: 0, x2: 0, y2: 5, class: "hatch-line" }),
      ),
    ),
  );

  // Grid and y labels.
  for (let i = 0; i <= 4; i += 1) {
    const value = (top / 4) * i;
    const y = yTop(value);
    svg.append(
      s("line", { x1: MARGIN.left, x2: MARGIN.left + plotWidth, y1: y, y2: y, class: "grid" }),
      s("text", { x: MARGIN.left - 6, y: y + 4, class: "axis", "text-anchor": "end" }, formatNumber(value)),
    );
  }
  svg.append(
    s("text", { x: MARGIN.left, y: rateTop - 8, class: "axis panel-label" }, "failure rate"),
  );
  for (const r of [0, 0.5, 1]) {
    const y = yRate(r);
    svg.append(
      s("line", { x1: MARGIN.left, x2: MARGIN.left + plotWidth, y1: y, y2: y, class: "grid" }),
      s("text", { x: MARGIN.left - 6, y: y + 4, class: "axis", "text-anchor": "end" }, `${r * 100}%`),
    );
  }

  // Bars: succeeded at the bottom, failed stacked on top.
  const bars = s("g", { class: "bars" });
  throughput.succeeded.forEach((ok, i) => {
    const failed = throughput.failed[i];
    const left = x(i) + (step - barWidth) / 2;
    if (ok) {
      bars.append(
        s("rect", { x: left, width: barWidth, y: yTop(ok), height: yTop(0) - yTop(ok), class: "bar-succeeded" }),
      );
    }
    if (failed) {
      bars.append(
        s("rect", {
          x: left,
          width: barWidth,
          y: yTop(ok + failed),
          height: yTop(ok) - yTop(ok + failed),
          class: "bar-failed",
          fill: "url(#hatch-failed)",
        }),
      );
    }
  });
  svg.append(bars);

  // Submitted as a line through the bucket centres.
  const points = throughput.submitted.map((v, i) => `${x(i) + step / 2},${yTop(v)}`).join(" ");
  svg.append(s("polyline", { points, class: "line-submitted" }));

  // Failure rate as a line, broken where a minute finished nothing.
  const rate = rates(throughput.succeeded, throughput.failed);
  let run = [];
  const flush = () => {
    if (run.length === 1) {
      const [cx, cy] = run[0].split(",");
      svg.append(s("circle", { cx, cy, r: 2, class: "dot-rate" }));
    } else if (run.length > 1) {
      svg.append(s("polyline", { points: run.join(" "), class: "line-rate" }));
    }
    run = [];
  };
  rate.forEach((r, i) => {
    if (r === null) flush();
    else run.push(`${x(i) + step / 2},${yRate(r)}`);
  });
  flush();

  // Time labels every quarter of an hour (fewer when narrow).
  const every = plotWidth < 420 ? 30 : 15;
  times.forEach((t, i) => {
    if (t.getMinutes() % every !== 0 || t.getSeconds() !== 0) return;
    const cx = x(i) + step / 2;
    svg.append(
      s("line", { x1: cx, x2: cx, y1: rateTop + RATE_HEIGHT, y2: rateTop + RATE_HEIGHT + 4, class: "tick" }),
      s("text", { x: cx, y: height - 6, class: "axis", "text-anchor": "middle" }, formatClock(t)),
    );
  });

  // One hover target per minute, spanning both panels, with the minute's numbers.
  const targets = s("g", { class: "targets" });
  times.forEach((t, i) => {
    const ok = throughput.succeeded[i];
    const failed = throughput.failed[i];
    targets.append(
      s(
        "rect",
        { x: x(i), width: step, y: MARGIN.top, height: rateTop + RATE_HEIGHT - MARGIN.top, class: "bucket" },
        s(
          "title",
          {},
          `${formatClock(t)}: ${throughput.submitted[i]} submitted, ${ok} succeeded, ` +
            `${failed} failed, failure rate ${formatPercent(rate[i])}`,
        ),
      ),
    );
  });
  svg.append(targets);
  return svg;
}

function legend() {
  const item = (cls, label) => h("li", {}, h("span", { class: `swatch ${cls}`, "aria-hidden": "true" }), label);
  return h(
    "ul",
    { class: "legend", "aria-label": "Legend" },
    item("swatch-succeeded", "succeeded per minute"),
    item("swatch-failed", "failed per minute (hatched)"),
    item("swatch-submitted", "submitted per minute (line)"),
    item("swatch-rate", "failure rate (lower panel)"),
  );
}

function numbersTable(throughput) {
  const times = bucketTimes(throughput);
  const rate = rates(throughput.succeeded, throughput.failed);
  const rows = [];
  for (let i = times.length - 1; i >= 0; i -= 1) {
    const { submitted, succeeded, failed } = throughput;
    if (!(submitted[i] || succeeded[i] || failed[i])) continue;
    rows.push(
      h(
        "tr",
        {},
        h("th", { scope: "row" }, formatClock(times[i])),
        h("td", { class: "num" }, formatNumber(submitted[i])),
        h("td", { class: "num" }, formatNumber(succeeded[i])),
        h("td", { class: "num" }, formatNumber(failed[i])),
        h("td", { class: "num" }, formatPercent(rate[i])),
      ),
    );
  }
  if (!rows.length) return h("p", { class: "muted" }, "Nothing was submitted or finished in the last hour.");
  return tableWrap(
    "Numbers per minute",
    h(
      "table",
      { class: "data compact" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, "Minute"),
          h("th", { scope: "col", class: "num" }, "Submitted"),
          h("th", { scope: "col", class: "num" }, "Succeeded"),
          h("th", { scope: "col", class: "num" }, "Failed"),
          h("th", { scope: "col", class: "num" }, "Failure rate"),
        ),
      ),
      h("tbody", {}, rows),
    ),
  );
}

// Renders into `container`, keeping whether the numbers were shown across refreshes.
export function renderThroughput(container, throughput) {
  const previous = container.querySelector("details");
  const open = previous ? previous.open : false;
  const width = Math.max(280, Math.floor(container.clientWidth || 600));
  const details = h(
    "details",
    { class: "chart-numbers", open },
    h("summary", {}, "Numbers per minute"),
    numbersTable(throughput),
  );
  container.replaceChildren(
    h("p", { class: "chart-summary" }, describe(throughput)),
    h("div", { class: "chart-frame" }, drawSvg(throughput, width)),
    legend(),
    details,
  );
}
