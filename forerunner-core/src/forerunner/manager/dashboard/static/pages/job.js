// Job detail: every field of one job, its data, result, error and traceback, progress,
// and its timeline of events, from GET v1/jobs/{id}/timeline (which carries the job too).
// Cancel and Retry sit at the top, when the state allows them and the manager is not
// read-only. Each part is redrawn only when it changed, so a traceback scrolled halfway
// stays where the operator left it while the page refreshes.

import { api } from "../api.js";
import {
  TERMINAL,
  badge,
  formatDuration,
  formatJSON,
  formatTime,
  h,
  patch,
  secondsBetween,
  section,
  timeCell,
  uniqueId,
} from "../dom.js";
import { cancelJob, retryJob } from "../operations.js";

function fact(label, value) {
  return h("div", {}, h("dt", {}, label), h("dd", {}, value ?? h("span", { class: "muted" }, "—")));
}

function code(value) {
  return value === null || value === undefined ? null : h("span", { class: "mono" }, String(value));
}

function summary(job) {
  const end = job.finished_at ?? (job.state === "running" ? new Date().toISOString() : null);
  const ran = secondsBetween(job.started_at, end);
  const waited = secondsBetween(job.run_at ?? job.created_at, job.started_at);
  return h(
    "dl",
    { class: "facts wide" },
    fact("State", badge(job.state)),
    fact("Type", job.type),
    fact("Attempt", `${job.attempt} of ${job.max_attempts}`),
    fact("Priority", String(job.priority)),
    fact("Key", code(job.key)),
    fact("Worker", job.worker ? h("a", { href: "#/workers", class: "mono" }, job.worker) : null),
    fact("Created", job.created_at ? timeCell(job.created_at) : null),
    fact("Run at", job.run_at ? [timeCell(job.run_at), " (", formatRelativeOf(job.run_at), ")"] : null),
    fact("Started", job.started_at ? timeCell(job.started_at) : null),
    fact("Finished", job.finished_at ? timeCell(job.finished_at) : null),
    fact("Waited", waited !== null && waited >= 0 ? formatDuration(waited) : null),
    fact(job.state === "running" ? "Running for" : "Ran for", ran !== null ? formatDuration(ran) : null),
    fact("Lease until", job.lease_until ? timeCell(job.lease_until) : null),
    fact("Timeout", job.timeout ? formatDuration(job.timeout) : "none"),
  );
}

function formatRelativeOf(iso) {
  const seconds = secondsBetween(new Date().toISOString(), iso);
  if (seconds === null) return "";
  return seconds >= 0 ? `in ${formatDuration(seconds)}` : `${formatDuration(-seconds)} ago`;
}

function pre(label, text, extra) {
  // Focusable, so a keyboard can scroll a long traceback; a named region, so the focus
  // lands somewhere a screen reader can announce.
  return h("pre", { class: `block ${extra ?? ""}`, tabindex: "0", role: "region", "aria-label": label }, text);
}

// A fraction when the progress says one: 0..1, {done, total}, {current, total}.
function fraction(value) {
  if (typeof value === "number" && value >= 0 && value <= 1) return value;
  if (value && typeof value === "object" && typeof value.total === "number" && value.total > 0) {
    const done = [value.done, value.current, value.completed, value.count].find((n) => typeof n === "number");
    if (done !== undefined) return Math.max(0, Math.min(1, done / value.total));
  }
  return null;
}

function progress(job) {
  if (job.progress === null || job.progress === undefined) {
    return h("p", { class: "muted" }, "The task has reported no progress.");
  }
  const part = fraction(job.progress);
  const id = uniqueId("progress");
  return [
    part === null
      ? null
      : h(
          "div",
          { class: "progress-line" },
          h("label", { for: id }, "Done"),
          h("progress", { id, max: "100", value: String(Math.round(part * 100)) }),
          h("span", {}, `${Math.round(part * 100)} %`),
        ),
    pre("Progress value", formatJSON(job.progress)),
  ];
}

function errorBlock(job) {
  const error = job.error;
  return [
    h("p", { class: "error-line" }, h("strong", {}, error.type), ": ", error.message),
    error.traceback
      ? pre("Traceback", error.traceback, "traceback")
      : h("p", { class: "muted" }, "No traceback was recorded."),
  ];
}

function detailText(detail) {
  if (detail === null || detail === undefined || detail === "") return h("span", { class: "muted" }, "—");
  if (typeof detail === "string") return detail;
  return h("code", { class: "detail" }, JSON.stringify(detail));
}

function timeline(events) {
  if (!events.length) return h("p", { class: "muted" }, "No events were recorded for this job.");
  return h(
    "ol",
    { class: "timeline" },
    events.map((event) =>
      h(
        "li",
        { class: `event event-${event.event}` },
        h("span", { class: "event-marker", "aria-hidden": "true" }),
        h(
          "div",
          { class: "event-body" },
          h(
            "p",
            { class: "event-head" },
            h("strong", { class: "event-name" }, event.event),
            event.attempt ? h("span", { class: "muted" }, ` attempt ${event.attempt}`) : null,
            " · ",
            h("time", { datetime: event.at, title: event.at }, formatTime(event.at)),
          ),
          event.worker ? h("p", { class: "event-worker" }, "worker ", h("span", { class: "mono" }, event.worker)) : null,
          event.detail !== null && event.detail !== undefined && event.detail !== ""
            ? h("p", { class: "event-detail" }, detailText(event.detail))
            : null,
        ),
      ),
    ),
  );
}

export function mount(ctx) {
  const id = ctx.id;
  const heading = h("h1", { tabindex: "-1" }, "Job ", h("span", { class: "mono id" }, id));
  const stateBox = h("div", { class: "head-state" });
  const toolbar = h("div", { class: "toolbar", role: "group", "aria-label": "Job actions" });
  const outcome = h("div", { class: "outcome-box", role: "status" });
  const parts = {
    summary: h("div"),
    progress: h("div"),
    error: h("div"),
    data: h("div"),
    result: h("div"),
    timeline: h("div"),
  };
  const sections = {
    error: section("Error", parts.error),
    progress: section("Progress", parts.progress),
    result: section("Result", parts.result),
  };
  ctx.main.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/jobs" }, "Jobs"), " / ", h("span", { class: "mono" }, id)),
    h("div", { class: "page-head" }, heading, stateBox),
    toolbar,
    outcome,
    h(
      "div",
      { class: "detail-grid" },
      h(
        "div",
        { class: "detail-main" },
        section("Summary", parts.summary),
        sections.error,
        sections.progress,
        section("Data", parts.data),
        sections.result,
      ),
      h("div", { class: "detail-side" }, section("Timeline", parts.timeline)),
    ),
  );

  const seen = {};
  const put = (name, signature, build) => {
    if (seen[name] === signature) return;
    seen[name] = signature;
    patch(parts[name], ...[build()].flat());
  };
  let job = null;

  const actions = () => {
    if (!job || ctx.readOnly()) return [];
    const buttons = [];
    if (!TERMINAL.has(job.state)) {
      buttons.push(
        h("button", { type: "button", class: "button danger-outline", onclick: async () => {
          const answer = await cancelJob(ctx, id, outcome);
          if (answer) ctx.refreshNow();
        } }, "Cancel job"),
      );
    }
    if (job.state === "failed" || job.state === "cancelled") {
      buttons.push(
        h("button", { type: "button", class: "button primary", onclick: async () => {
          const answer = await retryJob(ctx, id, outcome);
          if (answer) ctx.refreshNow();
        } }, "Retry job"),
      );
    }
    return buttons;
  };

  return {
    title: `Job ${id.slice(0, 8)}`,
    async refresh() {
      let body;
      try {
        body = await api.timeline(id, ctx.signal);
      } catch (error) {
        if (error.status === 404) {
          job = null;
          patch(stateBox);
          patch(toolbar);
          ctx.main.querySelector(".detail-grid").hidden = true;
          patch(outcome, h("p", { class: "empty" }, "No job has this id: it may have been purged. ", h("a", { href: "#/jobs" }, "Back to the jobs"), "."));
          return;
        }
        throw error;
      }
      job = body.job;
      ctx.main.querySelector(".detail-grid").hidden = false;
      this.title = `Job ${id.slice(0, 8)} (${job.state})`;
      patch(stateBox, badge(job.state), h("span", { class: "head-type" }, job.type));
      const toolbarSignature = `${job.state}|${ctx.readOnly()}`;
      if (seen.toolbar !== toolbarSignature) {
        seen.toolbar = toolbarSignature;
        patch(toolbar, ...actions());
      }
      put("summary", JSON.stringify([job, job.state === "running" ? Date.now() : 0]), () => summary(job));
      sections.error.hidden = !job.error;
      if (job.error) put("error", JSON.stringify(job.error), () => errorBlock(job));
      const hasProgress = job.progress !== null && job.progress !== undefined;
      sections.progress.hidden = !hasProgress;
      if (hasProgress) put("progress", JSON.stringify(job.progress), () => progress(job));
      put("data", JSON.stringify(job.data), () => pre("Job data", formatJSON(job.data)));
      const hasResult = job.state === "succeeded" || (job.result !== null && job.result !== undefined);
      sections.result.hidden = !hasResult;
      if (hasResult) put("result", JSON.stringify(job.result), () => pre("Job result", formatJSON(job.result)));
      put("timeline", JSON.stringify(body.events), () => timeline(body.events));
    },
  };
}
