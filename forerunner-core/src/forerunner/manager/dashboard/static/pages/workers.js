// Workers: every worker that polled this manager within the last lease (GET v1/workers),
// with what it runs and when it last spoke.

import { api } from "../api.js";
import { formatDuration, formatNumber, h, jobLink, patch, plural, shortId, tableWrap } from "../dom.js";

function dash() {
  return h("span", { class: "muted" }, "—");
}

function status(worker) {
  if (worker.stopping) return h("span", { class: "badge worker-stopping" }, "stopping");
  return h("span", { class: "badge worker-active" }, "active");
}

function row(worker) {
  const place = worker.host ? `${worker.host}${worker.pid !== null && worker.pid !== undefined ? ` · pid ${worker.pid}` : ""}` : null;
  const running = worker.running ?? [];
  return h(
    "tr",
    { dataset: { key: worker.id } },
    h("th", { scope: "row", class: "mono worker-id" }, worker.id),
    h("td", { "data-label": "Status" }, status(worker)),
    h("td", { class: "nowrap", "data-label": "Host" }, place ?? dash()),
    h(
      "td",
      { "data-label": "Tasks" },
      worker.types.length
        ? h("ul", { class: "chips", "aria-label": `Tasks of ${worker.id}` }, worker.types.map((type) => h("li", { class: "chip" }, type)))
        : dash(),
    ),
    h("td", { class: "num", "data-label": "Concurrency" }, worker.concurrency ?? dash()),
    h("td", { class: "num", "data-label": "Capacity" }, formatNumber(worker.capacity)),
    h(
      "td",
      { class: "running-cell", "data-label": "Running" },
      running.length
        ? h(
            "ul",
            { class: "running", "aria-label": `Jobs running on ${worker.id}` },
            running.map((id) => h("li", {}, jobLink(id, shortId(id)))),
          )
        : h("span", { class: "muted" }, "idle"),
    ),
    h(
      "td",
      { class: "num nowrap", title: worker.last_seen, "data-label": "Last heartbeat" },
      `${formatDuration(worker.seconds_since)} ago`,
    ),
  );
}

export function mount(ctx) {
  const summary = h("p", { class: "results-summary", id: "workers-summary" });
  const results = h("div");
  ctx.main.append(
    h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Workers")),
    h(
      "section",
      { class: "panel", "aria-labelledby": "workers-summary" },
      summary,
      results,
      h(
        "p",
        { class: "note" },
        "Capacity is how many more jobs the worker asked for in its last poll; running jobs are those it listed at its last lease renewal, about once a second.",
      ),
    ),
  );
  return {
    title: "Workers",
    async refresh() {
      const body = await api.workers(ctx.signal);
      const workers = [...body.workers].sort((a, b) => a.id.localeCompare(b.id));
      const jobs = workers.reduce((n, worker) => n + (worker.running?.length ?? 0), 0);
      summary.textContent = workers.length
        ? `${plural(workers.length, "worker", "workers")} connected, running ${plural(jobs, "job", "jobs")}.`
        : "No worker has polled this manager within the last lease.";
      if (!workers.length) {
        patch(results);
        return;
      }
      patch(
        results,
        tableWrap(
          "Workers",
          h(
            "table",
            { class: "data workers cards" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                h("th", { scope: "col" }, "Worker"),
                h("th", { scope: "col" }, "Status"),
                h("th", { scope: "col" }, "Host"),
                h("th", { scope: "col" }, "Tasks"),
                h("th", { scope: "col", class: "num" }, "Concurrency"),
                h("th", { scope: "col", class: "num" }, "Capacity"),
                h("th", { scope: "col" }, "Running"),
                h("th", { scope: "col", class: "num" }, "Last heartbeat"),
              ),
            ),
            h("tbody", {}, workers.map(row)),
          ),
        ),
      );
    },
  };
}
