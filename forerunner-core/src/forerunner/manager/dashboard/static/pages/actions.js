// Actions: bulk retry (POST v1/jobs/retry), purge (POST v1/jobs/purge), and cancel or
// retry one job by id. Each asks for confirmation first and shows the manager's answer
// next to its form. A read-only manager, or a tab signed in with a client token, gets no
// forms at all, only the reason.

import { h, plural, replaceChildren, section, uniqueId } from "../dom.js";
import { cancelJob, purge, retryJob, retryMany } from "../operations.js";

const UNITS = [
  ["minutes", 60],
  ["hours", 3600],
  ["days", 86400],
];

function field(label, control, hint) {
  const id = uniqueId("field");
  control.id = id;
  let hintNode = null;
  if (hint) {
    hintNode = h("p", { class: "hint", id: `${id}-hint` }, hint);
    control.setAttribute("aria-describedby", hintNode.id);
  }
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintNode);
}

function output() {
  return h("div", { class: "outcome-box", role: "status" });
}

// A whole number in [min, max] from an input, or null after saying what is wrong.
function wholeNumber(input, min, max, out, label) {
  const value = Number(input.value);
  if (input.value.trim() === "" || !Number.isInteger(value) || value < min || value > max) {
    input.setAttribute("aria-invalid", "true");
    out.replaceChildren(
      h("p", { class: "outcome error", role: "alert" }, `${label} must be a whole number from ${min} to ${max}.`),
    );
    input.focus();
    return null;
  }
  input.removeAttribute("aria-invalid");
  return value;
}

function typeCounts(overview) {
  const counts = new Map();
  for (const row of overview?.counts ?? []) {
    if (!counts.has(row.type)) counts.set(row.type, {});
    counts.get(row.type)[row.state] = row.count;
  }
  return counts;
}

function retryForm(ctx) {
  const out = output();
  const type = h("select", { name: "type" });
  const state = h(
    "select",
    { name: "state" },
    h("option", { value: "failed" }, "failed"),
    h("option", { value: "cancelled" }, "cancelled"),
  );
  const limit = h("input", { name: "limit", type: "number", min: "1", max: "10000", step: "1", value: "1000", inputmode: "numeric" });
  const hint = h("p", { class: "hint", "aria-live": "off" });
  let known = "";
  const refresh = (overview) => {
    const counts = typeCounts(overview);
    const names = [...counts.keys()].sort();
    if (names.join("\n") !== known) {
      known = names.join("\n");
      const chosen = type.value;
      replaceChildren(
        type,
        h("option", { value: "" }, "All types"),
        names.map((name) => h("option", { value: name }, name)),
      );
      type.value = names.includes(chosen) ? chosen : "";
    }
    let matching = 0;
    for (const [name, byState] of counts) {
      if (!type.value || type.value === name) matching += byState[state.value] ?? 0;
    }
    hint.textContent = `Now: ${plural(matching, `${state.value} job`, `${state.value} jobs`)}${type.value ? ` of type ${type.value}` : ""}.`;
  };
  const form = h(
    "form",
    { class: "action-form", novalidate: true },
    h("div", { class: "fields" }, field("Type", type), field("State", state), field("At most", limit, "jobs, newest first (1 to 10000)")),
    hint,
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "button primary" }, "Retry jobs…")),
    out,
  );
  type.addEventListener("change", () => refresh(ctx.overview()));
  state.addEventListener("change", () => refresh(ctx.overview()));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const count = wholeNumber(limit, 1, 10000, out, "At most");
    if (count === null) return;
    const answer = await retryMany(ctx, { type: type.value, state: state.value, limit: count }, out);
    if (answer) {
      const params = new URLSearchParams({ state: "queued" });
      if (type.value) params.set("type", type.value);
      if (answer.retried) out.append(h("p", {}, h("a", { href: `#/jobs?${params}` }, "See the queued jobs")));
      ctx.refreshNow();
    }
  });
  return { node: section("Retry failed or cancelled jobs", form), refresh };
}

function purgeForm(ctx) {
  const out = output();
  const amount = h("input", { name: "older_than", type: "number", min: "0", step: "1", value: "7", inputmode: "numeric" });
  const unit = h(
    "select",
    { name: "unit" },
    UNITS.map(([name]) => h("option", { value: name, selected: name === "days" }, name)),
  );
  const limit = h("input", { name: "limit", type: "number", min: "1", max: "1000000", step: "1", value: "100000", inputmode: "numeric" });
  const form = h(
    "form",
    { class: "action-form", novalidate: true },
    h("p", {}, "Deletes succeeded, failed and cancelled jobs that finished before a cut-off. Queued, scheduled and running jobs are never touched."),
    h("div", { class: "fields" }, field("Finished more than", amount), field("Unit", unit), field("At most", limit, "jobs per purge")),
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "button danger" }, "Delete finished jobs…")),
    out,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const count = wholeNumber(amount, 0, 1e9, out, "Finished more than");
    if (count === null) return;
    const most = wholeNumber(limit, 1, 1000000, out, "At most");
    if (most === null) return;
    const seconds = count * Object.fromEntries(UNITS)[unit.value];
    const answer = await purge(ctx, { olderThan: seconds, limit: most }, out);
    if (answer) ctx.refreshNow();
  });
  return { node: section("Purge finished jobs", form) };
}

function oneJobForm(ctx) {
  const out = output();
  const id = h("input", { name: "id", type: "text", autocomplete: "off", spellcheck: "false", class: "mono", required: true });
  const read = () => {
    const value = id.value.trim();
    if (!value) {
      id.setAttribute("aria-invalid", "true");
      out.replaceChildren(h("p", { class: "outcome error", role: "alert" }, "Enter a job id first."));
      id.focus();
      return null;
    }
    id.removeAttribute("aria-invalid");
    return value;
  };
  const after = (answer, value) => {
    if (answer) out.append(h("p", {}, h("a", { href: `#/jobs/${encodeURIComponent(value)}` }, "Open the job")));
  };
  const form = h(
    "form",
    { class: "action-form one-job", novalidate: true },
    field("Job id", id),
    h(
      "div",
      { class: "buttons" },
      h("button", { type: "button", class: "button danger-outline", onclick: async () => {
        const value = read();
        if (value) after(await cancelJob(ctx, value, out), value);
      } }, "Cancel job…"),
      h("button", { type: "button", class: "button", onclick: async () => {
        const value = read();
        if (value) after(await retryJob(ctx, value, out), value);
      } }, "Retry job…"),
    ),
    out,
  );
  form.addEventListener("submit", (event) => event.preventDefault());
  return { node: section("One job", form) };
}

export function mount(ctx) {
  const head = h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Actions"));
  if (ctx.readOnly()) {
    ctx.main.append(
      head,
      h(
        "p",
        { class: "notice" },
        ctx.readOnlyReason() === "role"
          ? "You are signed in with a client token: it may read and submit jobs, not cancel, retry or purge them, so the dashboard offers no actions. Sign in with an admin token to act."
          : "This manager runs read-only (--read-only): it refuses to cancel, retry or purge jobs, so the dashboard offers no actions. Reading and submitting still work.",
      ),
    );
    return { title: "Actions", refresh: async () => {} };
  }
  const retry = retryForm(ctx);
  ctx.main.append(
    head,
    h("p", { class: "lede" }, "Every action asks for confirmation first, then shows the manager's answer under its form."),
    h("div", { class: "columns" }, retry.node, purgeForm(ctx).node),
    oneJobForm(ctx).node,
  );
  return {
    title: "Actions",
    async refresh(overview) {
      retry.refresh(overview);
    },
  };
}
