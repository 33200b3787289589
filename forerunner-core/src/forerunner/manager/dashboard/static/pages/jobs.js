// Jobs: GET v1/jobs with the state, type and text filters, newest first, a page at a time.
// The filters and the page cursor live in the hash (#/jobs?state=failed&before=...), so a
// filtered view is a link an operator can share; the first page refreshes itself.

import { api } from "../api.js";
import {
  STATES,
  badge,
  formatDuration,
  h,
  jobLink,
  patch,
  plural,
  secondsBetween,
  shortId,
  tableWrap,
  timeCell,
  uniqueId,
} from "../dom.js";

const LIMITS = [25, 50, 100, 200];
const DEFAULT_LIMIT = 50;
const FILTERS = ["state", "type", "text", "limit"];

// The cursors of the pages before this one, so "Newer" can go back; kept per filter.
let newer = { filter: null, stack: [] };

function read(params) {
  const limit = Number(params.get("limit"));
  return {
    state: STATES.includes(params.get("state")) ? params.get("state") : "",
    type: params.get("type") ?? "",
    text: params.get("text") ?? "",
    limit: LIMITS.includes(limit) ? limit : DEFAULT_LIMIT,
    before: params.get("before") ?? "",
  };
}

function filterKey(query) {
  return FILTERS.map((name) => `${name}=${query[name]}`).join("&");
}

function toHash(query) {
  const search = new URLSearchParams();
  for (const name of [...FILTERS, "before"]) {
    const value = query[name];
    if (value && !(name === "limit" && value === DEFAULT_LIMIT)) search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `#/jobs?${text}` : "#/jobs";
}

function field(label, control) {
  const id = uniqueId("filter");
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

function filterForm(ctx, query, onApply) {
  const typeList = uniqueId("types");
  const state = h(
    "select",
    { name: "state" },
    h("option", { value: "" }, "All states"),
    STATES.map((name) => h("option", { value: name, selected: name === query.state }, name)),
  );
  const type = h("input", {
    name: "type",
    type: "text",
    value: query.type,
    list: typeList,
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "any type",
  });
  const text = h("input", {
    name: "text",
    type: "search",
    value: query.text,
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "part of an id or key",
  });
  const limit = h(
    "select",
    { name: "limit" },
    LIMITS.map((n) => h("option", { value: String(n), selected: n === query.limit }, String(n))),
  );
  const types = new Set((ctx.overview()?.counts ?? []).map((row) => row.type));
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter jobs", novalidate: true },
    field("State", state),
    field("Type", type),
    field("Id or key contains", text),
    field("Per page", limit),
    h(
      "div",
      { class: "field buttons" },
      h("button", { type: "submit", class: "button primary" }, "Apply filters"),
      h("button", { type: "reset", class: "button" }, "Clear filters"),
    ),
    h("datalist", { id: typeList }, [...types].sort().map((name) => h("option", { value: name }))),
  );
  const values = () => ({
    state: state.value,
    type: type.value.trim(),
    text: text.value.trim(),
    limit: Number(limit.value),
    before: "",
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onApply(values());
  });
  form.addEventListener("reset", (event) => {
    event.preventDefault();
    state.value = "";
    type.value = "";
    text.value = "";
    limit.value = String(DEFAULT_LIMIT);
    onApply(values());
  });
  state.addEventListener("change", () => onApply(values()));
  limit.addEventListener("change", () => onApply(values()));
  const sync = (next) => {
    state.value = next.state;
    type.value = next.type;
    text.value = next.text;
    limit.value = String(next.limit);
  };
  return { form, sync };
}

function duration(job) {
  if (!job.started_at) return h("span", { class: "muted" }, "—");
  const end = job.finished_at ?? (job.state === "running" ? new Date().toISOString() : null);
  const seconds = secondsBetween(job.started_at, end);
  return seconds === null ? h("span", { class: "muted" }, "—") : formatDuration(seconds);
}

function finished(job) {
  if (job.finished_at) return timeCell(job.finished_at);
  if (job.state === "scheduled" && job.run_at) return ["due ", timeCell(job.run_at, { relative: true })];
  return h("span", { class: "muted" }, "—");
}

function jobRow(job) {
  const error = job.error ? h("div", { class: "row-error" }, `${job.error.type}: ${job.error.message}`) : null;
  const key = job.key ? h("div", { class: "row-key" }, "key ", h("span", { class: "mono" }, job.key)) : null;
  return h(
    "tr",
    { dataset: { id: job.id } },
    h("td", {}, badge(job.state)),
    h(
      "td",
      { class: "job-cell" },
      h("a", { href: `#/jobs/${encodeURIComponent(job.id)}`, class: "mono", title: job.id, "aria-label": `Job ${job.id}` }, shortId(job.id)),
      key,
      error,
    ),
    h("td", {}, job.type),
    h("td", { class: "num", "data-label": "Attempt" }, `${job.attempt} / ${job.max_attempts}`),
    h("td", { class: "nowrap", "data-label": "Created" }, timeCell(job.created_at)),
    h("td", { class: "nowrap", "data-label": "Finished" }, finished(job)),
    h("td", { class: "num nowrap", "data-label": "Duration" }, duration(job)),
    h(
      "td",
      { class: "worker-cell", "data-label": "Worker" },
      job.worker ? h("span", { class: "mono", title: job.worker }, job.worker) : h("span", { class: "muted" }, "—"),
    ),
  );
}

function jobsTable(jobs) {
  return tableWrap(
    "Jobs",
    h(
      "table",
      { class: "data jobs" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["State", "Job", "Type", "Attempt", "Created", "Finished", "Duration", "Worker"].map((name) =>
            h("th", { scope: "col", class: name === "Attempt" || name === "Duration" ? "num" : null }, name),
          ),
        ),
      ),
      h("tbody", {}, jobs.map(jobRow)),
    ),
  );
}

// A decorative arrow: seen, not read out, so a button is named "Older", not "Older ›".
function arrow(glyph) {
  return h("span", { class: "arrow", "aria-hidden": "true" }, glyph);
}

function describeFilter(query) {
  const parts = [];
  if (query.state) parts.push(`state ${query.state}`);
  if (query.type) parts.push(`type ${query.type}`);
  if (query.text) parts.push(`id or key containing “${query.text}”`);
  return parts.length ? ` with ${parts.join(", ")}` : "";
}

export function mount(ctx) {
  let query = read(ctx.params);
  let page = null;
  let announceNext = false;

  const apply = (next) => {
    announceNext = true;
    if (filterKey(next) !== filterKey(query)) newer = { filter: filterKey(next), stack: [] };
    ctx.navigate(toHash(next));
  };
  const { form, sync } = filterForm(ctx, query, apply);
  const summary = h("p", { class: "results-summary", id: uniqueId("summary"), tabindex: "-1" });
  const results = h("div", { class: "results" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages of jobs" });
  ctx.main.append(
    h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Jobs")),
    h("section", { class: "panel", "aria-label": "Filters" }, form),
    h("section", { class: "panel", "aria-labelledby": summary.id }, summary, results, pager),
  );

  const go = (before) => {
    announceNext = true;
    ctx.navigate(toHash({ ...query, before }));
  };

  const renderPager = () => {
    if (newer.filter !== filterKey(query)) newer = { filter: filterKey(query), stack: [] };
    const buttons = [];
    if (query.before) {
      buttons.push(
        h("button", { type: "button", class: "button", onclick: () => { newer.stack = []; go(""); } }, arrow("«"), "Newest"),
      );
      if (newer.stack.length) {
        buttons.push(
          h("button", { type: "button", class: "button", onclick: () => go(newer.stack.pop()) }, arrow("‹"), "Newer"),
        );
      }
    }
    if (page && page.next) {
      buttons.push(
        h(
          "button",
          { type: "button", class: "button", onclick: () => { newer.stack.push(query.before); go(page.next); } },
          "Older",
          arrow("›"),
        ),
      );
    }
    patch(pager, ...buttons);
  };

  // A refresh sent before a filter changed may answer after the filtered request did;
  // only the answer to the latest request is shown.
  let latest = 0;
  const load = async () => {
    if (ctx.signal.aborted) return;
    latest += 1;
    const mine = latest;
    const { state, type, text, limit, before } = query;
    const body = await api.jobs({ state, type, text, limit, before }, ctx.signal);
    if (mine !== latest) return;
    page = body;
    const where = describeFilter(query);
    const count = plural(body.jobs.length, "job", "jobs");
    const position = query.before ? "older jobs" : "newest first";
    summary.textContent = body.jobs.length
      ? `${count}${where}, ${position}${body.next ? "; more are older" : ""}.`
      : `No jobs${where}${query.before ? " on this page" : ""}.`;
    const pagerHadFocus = pager.contains(document.activeElement);
    patch(results, body.jobs.length ? jobsTable(body.jobs) : h("p", { class: "empty" }, "Nothing matches these filters."));
    renderPager();
    // The button pressed may be gone (no "Older" on the last page): the focus goes to
    // the summary of the new page rather than back to the top of the document.
    if (pagerHadFocus && !pager.contains(document.activeElement)) summary.focus();
    if (announceNext) {
      announceNext = false;
      ctx.announce(summary.textContent);
    }
  };

  return {
    title: "Jobs",
    async refresh() {
      // Only the first page refreshes: a later page would shift under the operator.
      if (page && query.before) return;
      await load();
    },
    update(params) {
      query = read(params);
      sync(query);
      page = null;
      load().catch((error) => {
        if (error.name !== "AbortError") ctx.alert(error.describe ? error.describe() : String(error));
      });
      return true;
    },
  };
}
