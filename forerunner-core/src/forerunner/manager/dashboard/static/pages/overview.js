// Overview: what the manager knows at a glance, from GET v1/overview, refreshed by the
// shell's loop (the same request also tells the shell whether the manager is read-only).

import { renderThroughput, summarise } from "../chart.js";
import {
  STATES,
  formatDuration,
  formatNumber,
  formatPercent,
  h,
  jobLink,
  patch,
  plural,
  section,
  shortId,
  tableWrap,
} from "../dom.js";

function jobsHref(params) {
  const search = new URLSearchParams(params);
  return `#/jobs?${search.toString()}`;
}

function tile(label, value, note, href) {
  const body = [h("dt", {}, label), h("dd", { class: "tile-value" }, value)];
  if (note) body.push(h("dd", { class: "tile-note" }, note));
  const group = h("div", { class: "tile" }, body);
  if (href) {
    group.classList.add("tile-link");
    body[1].replaceChildren(h("a", { href }, value));
  }
  return group;
}

function countsByState(counts) {
  const totals = Object.fromEntries(STATES.map((state) => [state, 0]));
  for (const row of counts) totals[row.state] = (totals[row.state] ?? 0) + row.count;
  return totals;
}

function tiles(overview) {
  const totals = countsByState(overview.counts);
  const last = summarise(overview.throughput);
  const finished = last.succeeded + last.failed;
  const oldest = overview.oldest_waiting;
  const types = overview.queue.filter((row) => row.depth > 0).length;
  return h(
    "dl",
    { class: "tiles" },
    tile(
      "Waiting in queue",
      formatNumber(overview.queue_total),
      types ? `across ${plural(types, "type", "types")}` : "nothing waiting",
      jobsHref({ state: "queued" }),
    ),
    tile("Running", formatNumber(totals.running), null, jobsHref({ state: "running" })),
    tile("Scheduled", formatNumber(totals.scheduled), "due later", jobsHref({ state: "scheduled" })),
    tile(
      "Workers connected",
      formatNumber(overview.workers),
      overview.workers ? "polled within the lease" : "none polling",
      "#/workers",
    ),
    tile(
      "Oldest waiting",
      oldest ? formatDuration(oldest.age_seconds) : "—",
      oldest ? [oldest.type, " · ", jobLink(oldest.id, shortId(oldest.id))] : "no job waiting",
    ),
    tile(
      "Finished, last hour",
      formatNumber(finished),
      `${formatNumber(last.succeeded)} succeeded · ${formatNumber(last.failed)} failed`,
    ),
    tile(
      "Failure rate",
      formatPercent(last.rate),
      finished
        ? `${formatNumber(last.failed)} of ${formatNumber(finished)} in the last hour`
        : "nothing finished in the last hour",
      last.failed ? jobsHref({ state: "failed" }) : null,
    ),
  );
}

function countsTable(overview) {
  const byType = new Map();
  for (const row of overview.counts) {
    if (!byType.has(row.type)) byType.set(row.type, {});
    byType.get(row.type)[row.state] = row.count;
  }
  if (!byType.size) return h("p", { class: "empty" }, "The store holds no jobs.");
  const totals = countsByState(overview.counts);
  const cell = (type, state, count) => {
    if (!count) return h("td", { class: "num zero" }, "0");
    const params = type === null ? { state } : { type, state };
    const jobs = plural(count, type === null ? "job" : `${type} job`, type === null ? "jobs" : `${type} jobs`);
    const what = `${jobs} ${state}`;
    return h("td", { class: "num" }, h("a", { href: jobsHref(params), "aria-label": what }, formatNumber(count)));
  };
  const rows = [...byType.keys()].sort().map((type) => {
    const counts = byType.get(type);
    const total = STATES.reduce((sum, state) => sum + (counts[state] ?? 0), 0);
    return h(
      "tr",
      {},
      h("th", { scope: "row" }, h("a", { href: jobsHref({ type }) }, type)),
      STATES.map((state) => cell(type, state, counts[state] ?? 0)),
      h("td", { class: "num total" }, formatNumber(total)),
    );
  });
  const grand = STATES.reduce((sum, state) => sum + totals[state], 0);
  return tableWrap(
    "Jobs by type and state",
    h(
      "table",
      { class: "data counts" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, "Type"),
          STATES.map((state) =>
            h("th", { scope: "col", class: "num" }, h("span", { class: `state-dot state-${state}`, "aria-hidden": "true" }), state),
          ),
          h("th", { scope: "col", class: "num" }, "total"),
        ),
      ),
      h("tbody", {}, rows),
      h(
        "tfoot",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "row" }, "All types"),
          STATES.map((state) => cell(null, state, totals[state])),
          h("td", { class: "num total" }, formatNumber(grand)),
        ),
      ),
    ),
  );
}

function queueTable(overview) {
  const rows = overview.queue.filter((row) => row.depth > 0).sort((a, b) => b.depth - a.depth || a.type.localeCompare(b.type));
  const oldest = overview.oldest_waiting;
  const oldestLine = oldest
    ? h(
        "p",
        { class: "note" },
        "Oldest waiting: ",
        jobLink(oldest.id, shortId(oldest.id)),
        ` (${oldest.type}), waiting ${formatDuration(oldest.age_seconds)}.`,
      )
    : null;
  if (!rows.length) return [h("p", { class: "empty" }, "The queue is empty: no job is waiting for a worker."), oldestLine];
  return [
    tableWrap(
      "Queue depth",
      h(
        "table",
        { class: "data" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Type"), h("th", { scope: "col", class: "num" }, "Waiting"))),
        h(
          "tbody",
          {},
          rows.map((row) =>
            h(
              "tr",
              {},
              h("th", { scope: "row" }, h("a", { href: jobsHref({ type: row.type, state: "queued" }) }, row.type)),
              h("td", { class: "num" }, formatNumber(row.depth)),
            ),
          ),
        ),
        h(
          "tfoot",
          {},
          h("tr", {}, h("th", { scope: "row" }, "Total"), h("td", { class: "num total" }, formatNumber(overview.queue_total))),
        ),
      ),
    ),
    oldestLine,
  ];
}

function access(session) {
  if (!session?.auth) return "open: the manager asks for no token";
  return `token required; this tab is signed in as ${session.role}`;
}

function managerFacts(overview, session) {
  const fact = (label, value) => h("div", {}, h("dt", {}, label), h("dd", {}, value));
  return h(
    "dl",
    { class: "facts" },
    fact("Version", overview.version ?? "—"),
    fact("Store", h("code", {}, overview.store ?? "—")),
    fact("Queue", h("code", {}, overview.queue_url ?? "—")),
    fact(
      "Mode",
      overview.read_only ? "read-only: cancel, retry and purge are refused" : "read and write",
    ),
    fact("Access", access(session)),
  );
}

export function mount(ctx) {
  const tilesBox = h("div", { class: "tiles-box" });
  const chartBox = h("div", { class: "chart-box" });
  const countsBox = h("div");
  const queueBox = h("div");
  const managerBox = h("div");
  ctx.main.append(
    h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Overview")),
    h("section", { "aria-label": "At a glance" }, tilesBox),
    section("Throughput, last hour", chartBox),
    section(
      "Jobs by type and state",
      countsBox,
      h("p", { class: "note" }, "Counts come from the store and are at most 5 seconds old."),
    ),
    h("div", { class: "columns" }, section("Queue depth", queueBox), section("Manager", managerBox)),
  );
  let lastWidth = 0;
  let last = null;
  const onResize = () => {
    if (!last || !chartBox.isConnected) return;
    if (Math.abs(chartBox.clientWidth - lastWidth) < 8) return;
    lastWidth = chartBox.clientWidth;
    renderThroughput(chartBox, last.throughput);
  };
  window.addEventListener("resize", onResize);
  ctx.signal.addEventListener("abort", () => window.removeEventListener("resize", onResize));

  return {
    title: "Overview",
    async refresh(overview) {
      if (!overview) {
        patch(tilesBox, h("p", { class: "empty" }, "Waiting for the manager to answer GET v1/overview…"));
        return;
      }
      last = overview;
      patch(tilesBox, tiles(overview));
      lastWidth = chartBox.clientWidth;
      renderThroughput(chartBox, overview.throughput);
      patch(countsBox, countsTable(overview));
      patch(queueBox, ...queueTable(overview));
      patch(managerBox, managerFacts(overview, ctx.session()));
    },
  };
}
