"""``forerunner status`` and ``forerunner workers``: what a manager is doing, at a glance.

Both read one endpoint each (``GET /v1/overview``, ``GET /v1/workers``) and show it as
tables; ``--json`` prints that endpoint's document unchanged, so a script reads the
fields that docs/http-api.md describes rather than a second, CLI-only format.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text

from forerunner.console import (
    EXIT_OK,
    Output,
    add_json_option,
    add_manager_option,
    format_age,
    manager_url,
    open_client,
    print_json,
    sparkline,
)
from forerunner.model import JobState
from forerunner.wire import WorkerList

if TYPE_CHECKING:
    import argparse

    from rich.console import RenderableType

    from forerunner.wire import Overview, WorkerView

__all__ = ["add_operator_commands"]


def add_operator_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare ``forerunner status`` and ``forerunner workers`` on the CLI's subcommands."""
    status = commands.add_parser(
        "status",
        help="show a manager's jobs per type and state, queue, throughput and workers",
        description=(
            "Show what the manager knows at a glance: jobs per type and state, how many wait "
            "in the queue and the oldest one's age, jobs per minute over the last hour, the "
            "connected workers, and the store and queue it uses."
        ),
    )
    add_manager_option(status)
    add_json_option(status)
    status.set_defaults(run=_run_status)

    workers = commands.add_parser(
        "workers",
        help="list the workers connected to a manager",
        description=(
            "List the workers that polled the manager within the last lease: where they run, "
            "their task types, free slots and the jobs they run."
        ),
    )
    add_manager_option(workers)
    add_json_option(workers)
    workers.set_defaults(run=_run_workers)


def _run_status(args: argparse.Namespace) -> int:
    url = manager_url(args)
    with open_client(args) as client:
        overview = client.overview()
    if args.json:
        print_json(overview)
        return EXIT_OK
    Output().print(
        Group(
            _about(url, overview),
            Text(""),
            _counts(overview),
            Text(""),
            _waiting(overview),
            Text(""),
            _throughput(overview),
        )
    )
    return EXIT_OK


def _about(url: str, overview: Overview) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    mode = ", read-only" if overview.read_only else ""
    grid.add_row("manager", f"{url} (forerunner {overview.version}{mode})")
    grid.add_row("store", overview.store)
    grid.add_row("queue", overview.queue_url)
    grid.add_row("workers", f"{overview.workers} connected")
    return grid


def _counts(overview: Overview) -> RenderableType:
    """Jobs per type (rows) and state (columns), with the queue's depth per type beside."""
    by_type: dict[str, dict[JobState, int]] = {}
    for item in overview.counts:
        by_type.setdefault(item.type, {})[item.state] = item.count
    depth = {item.type: item.depth for item in overview.queue}
    types = sorted(set(by_type) | set(depth))
    if not types:
        return Text("jobs: none")
    out = Output()
    table = out.table("TYPE", *(state.value.upper() for state in JobState), "TOTAL", "IN QUEUE")
    table.title = "jobs"
    for column in table.columns[1:]:
        column.justify = "right"
    totals = dict.fromkeys(JobState, 0)
    for name in types:
        counts = by_type.get(name, {})
        for state in JobState:
            totals[state] += counts.get(state, 0)
        table.add_row(
            name,
            *(_count(counts.get(state, 0), state) for state in JobState),
            str(sum(counts.values())),
            str(depth.get(name, 0)),
        )
    if len(types) > 1:
        table.add_row(
            Text("all", style="bold"),
            *(_count(totals[state], state) for state in JobState),
            str(sum(totals.values())),
            str(overview.queue_total),
        )
    return table


def _count(count: int, state: JobState) -> Text:
    if count == 0:
        return Text("0", style="dim")
    return Text(str(count), style="bold red" if state is JobState.FAILED else "")


def _waiting(overview: Overview) -> Text:
    oldest = overview.oldest_waiting
    text = Text(f"queue: {overview.queue_total} waiting")
    if oldest is None:
        return text
    text.append("; oldest ")
    text.append(oldest.id, style="bold")
    text.append(f" ({oldest.type}) waits for {format_age(oldest.age_seconds)}")
    return text


def _throughput(overview: Overview) -> RenderableType:
    flow = overview.throughput
    minutes = len(flow.submitted) * flow.bucket_seconds / 60
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column(no_wrap=True)
    for name, series, style in (
        ("submitted", flow.submitted, "blue"),
        ("succeeded", flow.succeeded, "green"),
        ("failed", flow.failed, "red"),
    ):
        grid.add_row(name, str(sum(series)), Text(sparkline(series), style=style))
    title = Text(
        f"last {minutes:g} minutes, one mark per {flow.bucket_seconds}s, oldest first",
        style="bold",
    )
    return Group(title, grid)


def _run_workers(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        workers = client.workers()
    if args.json:
        print_json(WorkerList(workers=workers))
        return EXIT_OK
    out = Output()
    if not workers:
        out.print("no workers connected")
        return EXIT_OK
    out.print(_workers_table(out, workers))
    return EXIT_OK


def _workers_table(out: Output, workers: list[WorkerView]) -> Table:
    table = out.table(
        "ID", "HOST", "PID", "TYPES", "CONCURRENCY", "FREE", "RUNNING", "LAST POLL", "STATE"
    )
    for worker in workers:
        table.add_row(
            worker.id,
            worker.host or "-",
            "-" if worker.pid is None else str(worker.pid),
            ",".join(sorted(worker.types)) or "-",
            "-" if worker.concurrency is None else str(worker.concurrency),
            str(worker.capacity),
            str(len(worker.running)),
            f"{format_age(worker.seconds_since)} ago",
            Text("stopping", style="yellow") if worker.stopping else Text("polling"),
        )
    return table
