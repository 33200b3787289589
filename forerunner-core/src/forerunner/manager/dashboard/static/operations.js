// The actions that change jobs, each behind a confirmation, shared by the job page and
// the actions page. Each reports its outcome in the page's live regions: the result in
// the polite one, the manager's error message (403 read_only, 409 invalid_transition...)
// in the assertive one, and returns the manager's answer, or null when nothing was done.

import { api } from "./api.js";
import { confirmAction } from "./dialog.js";
import { formatDuration, formatNumber, h, plural } from "./dom.js";

// `output`, when given, is a role="status" element next to the control, where the
// outcome also stays visible; without it the outcome goes to the page-wide regions.
async function perform(ctx, output, call, done) {
  try {
    const answer = await call();
    const text = done(answer);
    ctx.alert("");
    if (output) output.replaceChildren(h("p", { class: "outcome ok" }, text));
    else ctx.announce(text);
    return answer;
  } catch (error) {
    const text = `The manager refused: ${error.describe ? error.describe() : String(error)}`;
    if (output) output.replaceChildren(h("p", { class: "outcome error", role: "alert" }, text));
    else ctx.alert(text);
    return null;
  }
}

export async function cancelJob(ctx, id, output) {
  const ok = await confirmAction({
    title: "Cancel this job?",
    body: [
      h("p", {}, "Job ", h("code", {}, id), " will not run again unless it is retried."),
      h("p", {}, "If a worker is running it now, the worker abandons it within about a second."),
    ],
    confirmLabel: "Cancel job",
    cancelLabel: "Keep job",
    danger: true,
  });
  if (!ok) return null;
  return perform(ctx, output, () => api.cancel(id), (answer) => `Job ${id} is now ${answer.job.state}.`);
}

export async function retryJob(ctx, id, output) {
  const ok = await confirmAction({
    title: "Retry this job?",
    body: h("p", {}, "Job ", h("code", {}, id), " goes back to the queue and runs again from its first attempt."),
    confirmLabel: "Retry job",
  });
  if (!ok) return null;
  return perform(ctx, output, () => api.retry(id), (answer) => `Job ${id} is now ${answer.job.state}.`);
}

export async function retryMany(ctx, { type, state, limit }, output) {
  const which = `${state} jobs${type ? ` of type ${type}` : " of every type"}`;
  const ok = await confirmAction({
    title: `Retry ${which}?`,
    body: h(
      "p",
      {},
      `Up to ${plural(limit, `${state} job`, `${state} jobs`)}`,
      type ? [" of type ", h("code", {}, type)] : " of any type",
      ", newest first, go back to the queue and run again.",
    ),
    confirmLabel: "Retry jobs",
  });
  if (!ok) return null;
  return perform(
    ctx,
    output,
    () => api.retryMany({ type: type || null, state, limit }),
    (answer) => `Retried ${plural(answer.retried, "job", "jobs")}.`,
  );
}

// "7 days", "12 hours", "90 minutes": the age as the operator typed it.
function describeAge(seconds) {
  for (const [unit, size] of [["day", 86400], ["hour", 3600], ["minute", 60]]) {
    if (seconds >= size && seconds % size === 0) return plural(seconds / size, unit, `${unit}s`);
  }
  return formatDuration(seconds);
}

export async function purge(ctx, { olderThan, limit }, output) {
  const when = olderThan > 0
    ? [" more than ", h("strong", {}, describeAge(olderThan)), " ago"]
    : [", ", h("strong", {}, "however recently"), ","];
  const ok = await confirmAction({
    title: "Delete finished jobs?",
    body: [
      h(
        "p",
        {},
        "Every job that finished (succeeded, failed or was cancelled)",
        when,
        ` is deleted from the store, up to ${formatNumber(limit)} of them, with its result, error and events.`,
      ),
      h("p", {}, h("strong", {}, "This cannot be undone.")),
    ],
    confirmLabel: "Delete jobs",
    danger: true,
  });
  if (!ok) return null;
  return perform(
    ctx,
    output,
    () => api.purge({ older_than: olderThan, limit }),
    (answer) => `Deleted ${plural(answer.purged, "finished job", "finished jobs")}.`,
  );
}
