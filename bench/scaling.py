"""How forerunner's cost grows, as issue 7 asks: workers, rows in the store, payload, memory.

Four workloads, each on the two pairings of the bench adapter
(``bench/systems/forerunner_system.py``): ``sqlite`` (SQLite store, ``memory://``
queue, the embedded default) and ``pg`` (PostgreSQL store in schema ``bench_scaling``,
Redis queue in database 9 under a prefix of this run's own):

``workers``
    N no-op jobs enqueued, then drained by 1, 2, 4 and 8 ``forerunner worker``
    processes (``--concurrency 16`` each).
``rows``
    The same with one worker process on a store that already holds 10k, 100k and 1M
    finished jobs, written straight into the store's table as the adapter's
    ``fill_backlog`` does for ``compare.py``'s backlog workload.
``payload``
    One worker process; jobs whose data is a JSON string of 100 B, 10 KB and 1 MB
    (decimal) and a task that returns it unchanged, so each job carries the payload in
    and its result carries it back. Fewer jobs at 1 MB (``--large-jobs``).
``memory``
    ``--memory-jobs`` (1,000,000) no-op jobs through one manager and one worker,
    submitted in batches of 1,000 while the worker drains, never more than 50,000
    waiting; the resident set (``VmRSS``) of both processes is sampled every
    twentieth of the run (every 50,000 jobs at 1,000,000).

Drains are timed as ``compare.py`` times them (:func:`_common.drain`): from the first
completed job the store shows to the last, completion counted from the store with SQL,
and every run ends with an exact count of succeeded rows. This is a measurement, never
a test: it prints what it saw and asserts nothing, and a run that fails is reported in
its cell. Run: ``.venv/bin/python bench/scaling.py [--quick] [--out FILE]``; the
section "scaling.py: how cost grows" of ``bench/README.md`` describes the options.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import statistics
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SYSTEMS = HERE / "systems"
# The adapter and its helpers are plain modules in bench/systems, not a package.
sys.path.insert(0, str(SYSTEMS))
sys.path.insert(0, str(HERE))

import forerunner_system  # noqa: E402
from _common import BenchError, drain, stop_workers  # noqa: E402
from compare import cpu_model, git_revision, load_average, memory_gib  # noqa: E402
from forerunner_system import Forerunner  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

#: This script's own PostgreSQL schema and Redis database (the brief assigns them).
SCHEMA = "bench_scaling"
REDIS_DB = 9
# The adapter reads its schema from this module global in ``_sql``, ``store_url`` and
# ``fill_backlog``; pointing it at ours reuses that code unchanged, in this process only.
forerunner_system.SCHEMA = SCHEMA

VARIANTS = ("sqlite", "pg")
WORKLOADS = ("workers", "rows", "payload", "memory")
#: Jobs per submit_many call, as the adapter and embedded.py submit them.
BATCH = 1000
#: Bytes of JSON per submit_many call with large payloads, so a request stays ~8 MB.
BATCH_BYTES = 8_000_000
#: The most jobs the memory workload lets wait, so a growing queue is not what it sees.
WAITING_CAP = 50_000
#: Seconds without a completed job after which the memory workload gives up.
STALL = 120.0
#: JSON sizes of the payload workload, in bytes, and their labels.
PAYLOADS = ((100, "100 B"), (10_000, "10 KB"), (1_000_000, "1 MB"))


class Scaling(Forerunner):
    """The forerunner adapter, moved to this script's schema, Redis database and prefix.

    ``reset`` of the adapter empties its whole Redis database; several runs may share
    database 9, so this one clears only the keys under its own prefix, and drops only
    the ``bench_scaling`` schema, at the start and at the end of each measurement. The
    worker also finds ``bench/scaling_tasks.py`` (the payload task) on its path.
    """

    def __init__(self, args: argparse.Namespace, variant: str, tasks: str) -> None:
        super().__init__(argparse.Namespace(**{**vars(args), "variant": variant}))
        self.tasks = tasks
        self.prefix = f"scaling-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    @property
    def queue_url(self) -> str:
        if self.variant == "sqlite":
            return "memory://"
        return f"{self.args.redis_url}/{REDIS_DB}?prefix={self.prefix}"

    def _clear_backends(self) -> None:
        """Drop this script's schema and delete the keys under this run's prefix."""
        if self.variant != "pg":
            for name in ("jobs.db", "jobs.db-wal", "jobs.db-shm"):
                (self.workdir / name).unlink(missing_ok=True)
            return
        import psycopg
        import redis

        with psycopg.connect(self.args.pg_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        client = redis.Redis.from_url(f"{self.args.redis_url}/{REDIS_DB}")
        try:
            # Every key of a queue starts with the hash tag {PREFIX}; braces are literal
            # in a SCAN pattern.
            keys = list(client.scan_iter(match="{" + self.prefix + "}*", count=1000))
            for first in range(0, len(keys), 1000):
                client.delete(*keys[first : first + 1000])
        finally:
            client.close()

    def reset(self) -> None:
        self._stop_manager()
        self._close_connections()
        self._clear_backends()
        self.enqueued = 0
        self.first_id = None
        self._start_manager()

    def _close_connections(self) -> None:
        """Close the counting connections, which would otherwise see a dropped store."""
        if self._pg is not None:
            self._pg.close()
            self._pg = None
        if self._lite is not None:
            self._lite.close()
            self._lite = None

    def close(self) -> None:
        self._stop_manager()
        self._close_connections()
        with contextlib.suppress(Exception):
            self._clear_backends()
        super().close()

    def env(self) -> dict[str, str]:
        env = super().env()
        env["PYTHONPATH"] = str(HERE) + os.pathsep + env["PYTHONPATH"]
        return env

    def worker_command(self, concurrency: int) -> list[str]:
        return [
            self.bin,
            "worker",
            "--manager",
            self.url,
            "--tasks",
            self.tasks,
            "--concurrency",
            str(concurrency),
        ]

    def fill_backlog(self, rows: int) -> None:
        """The adapter's fill, then on SQLite a checkpoint of the write-ahead log.

        The fill commits all its rows into the WAL (28 MB at 100k rows), and SQLite copies
        them into the database file at the next automatic checkpoint: the manager's first
        commits of the timed drain would pay for it. A store that grew to this size over
        time would have been checkpointed as it went, so this is done before the clock.
        """
        super().fill_backlog(rows)
        if self.variant == "sqlite":
            import sqlite3

            conn = sqlite3.connect(self.workdir / "jobs.db", isolation_level=None, timeout=60)
            try:
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                conn.close()
            if busy:
                raise BenchError("the WAL checkpoint after the fill could not complete")

    # What the workloads add to the adapter

    def submit(self, specs: list[dict[str, Any]]) -> None:
        """Submit one batch, remembering the run's first id as the adapter's enqueue does."""
        assert self.client is not None
        jobs = self.client.submit_many(specs)
        if self.first_id is None:
            self.first_id = jobs[0].id
        self.enqueued += len(specs)

    def waiting(self) -> int:
        """Jobs queued or running: bounded by the memory workload's cap, so cheap to count."""
        return int(
            self._sql("SELECT count(*) FROM forerunner_jobs WHERE state IN ('queued', 'running')")[
                0
            ][0]
        )

    def echoed(self) -> int:
        """Succeeded jobs of this run whose stored result is exactly their data."""
        same = "result = data" if self.variant == "sqlite" else "result::text = data::text"
        return int(
            self._sql(
                f"SELECT count(*) FROM forerunner_jobs WHERE state = 'succeeded' "
                f"AND id >= '{self.first_id}' AND {same}"
            )[0][0]
        )


# Measurements


@dataclass
class Cell:
    """One configuration, measured once per round: its runs, and the failures among them.

    Rounds are interleaved (round 1 of every cell of a workload, then round 2, ...) as in
    ``compare.py``, so noise from whatever else the shared machine runs falls on every
    cell alike; the table shows medians.
    """

    variant: str
    label: str
    jobs: int
    tasks: str
    body: Callable[[Scaling], dict[str, Any]]
    runs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return not self.runs

    @property
    def values(self) -> dict[str, Any]:
        """Medians of the numeric results over the good runs; other fields of the first."""
        if not self.runs:
            return {}
        merged = dict(self.runs[0])
        for key, first in self.runs[0].items():
            if isinstance(first, int | float) and not isinstance(first, bool):
                numbers = [run[key] for run in self.runs if run.get(key) is not None]
                merged[key] = statistics.median(numbers) if numbers else None
        return merged

    def spread(self, key: str) -> str:
        """The lowest and highest of ``key`` over the runs, when there were several."""
        numbers = [run[key] for run in self.runs if run.get(key) is not None]
        if len(numbers) < 2:
            return ""
        return f"{min(numbers):,.0f}-{max(numbers):,.0f}"

    @property
    def load(self) -> str:
        """The 1-minute load average when the cell's runs started, median of the rounds."""
        return f"{statistics.median(self.loads):.2f}" if self.loads else ""


def measure(
    args: argparse.Namespace, variant: str, tasks: str, body: Callable[[Scaling], Any]
) -> Any:
    """Run ``body`` on a fresh manager and store, cleaning up whatever happens."""
    system = Scaling(args, variant, tasks)
    try:
        system.reset()
        return body(system)
    finally:
        system.close()


def run_cells(args: argparse.Namespace, cells: Sequence[Cell], repeats: int) -> None:
    """Every cell once per round; an exception becomes a failed run, not the end."""
    for round_ in range(1, repeats + 1):
        for cell in cells:
            tag = f"round {round_}/{repeats}: " if repeats > 1 else ""
            print(
                f"  {tag}{cell.variant}, {cell.label}, {cell.jobs:,} jobs ...", end="", flush=True
            )
            cell.loads.append(os.getloadavg()[0])
            try:
                values = measure(args, cell.variant, cell.tasks, cell.body)
            except Exception as error:
                cell.errors.append(f"round {round_}: {type(error).__name__}: {error}")
                print(f" failed: {error}", flush=True)
                if args.verbose:
                    traceback.print_exc()
                continue
            cell.runs.append(values)
            rate = values.get("jobs_per_s")
            print(f" {rate:,.0f} jobs/s" if rate else " done", flush=True)


def failures(cells: Sequence[Cell]) -> str:
    """The failed runs of a table's cells, one line each, for under the table."""
    return "\n".join(
        f"- failed: {cell.variant}, {cell.label}: {error}"
        for cell in cells
        for error in cell.errors
    )


def noop_drain(
    jobs: int, processes: int, concurrency: int, backlog: int = 0
) -> Callable[[Scaling], dict[str, Any]]:
    """Enqueue ``jobs`` no-op jobs (after ``backlog`` finished rows), then drain them."""

    def body(system: Scaling) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if backlog:
            began = time.monotonic()
            system.fill_backlog(backlog)
            values["fill_s"] = time.monotonic() - began
        began = time.monotonic()
        system.enqueue(jobs, "noop")
        values["enqueue_s"] = time.monotonic() - began
        values.update(drain(system, jobs, processes, concurrency))
        return values

    return body


def payload_drain(jobs: int, size: int, concurrency: int) -> Callable[[Scaling], dict[str, Any]]:
    """Enqueue ``jobs`` echo jobs whose data is ``size`` bytes of JSON, then drain them."""
    # A JSON string of n ASCII characters without escapes is n + 2 bytes with its quotes.
    text = ("0123456789abcdef" * (size // 16 + 1))[: size - 2]
    per_batch = max(1, min(BATCH, BATCH_BYTES // size))

    def body(system: Scaling) -> dict[str, Any]:
        began = time.monotonic()
        for first in range(0, jobs, per_batch):
            count = min(per_batch, jobs - first)
            system.submit([{"type": "echo", "data": text} for _ in range(count)])
        values: dict[str, Any] = {"enqueue_s": time.monotonic() - began}
        values.update(drain(system, jobs, 1, concurrency))
        echoed = system.echoed()
        if echoed != jobs:
            raise BenchError(f"{echoed} of {jobs} results equal their data")
        rate = values["jobs_per_s"]
        values["mb_per_s"] = rate * size / 1e6 if rate else None
        return values

    return body


def rss_kib(pid: int) -> int:
    """The process's resident set size, ``VmRSS`` of ``/proc/PID/status``, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for process {pid}")


@dataclass(frozen=True)
class Sample:
    """The resident sets at one step of the memory workload."""

    #: The multiple of the sampling step this sample stands for.
    step: int
    #: Jobs completed when it was taken: the first look at or past ``step``.
    done: int
    manager_kib: int
    worker_kib: int


def memory_step(total: int) -> int:
    """Jobs between two samples: 50,000, or a twentieth of a shorter run."""
    return max(1, min(50_000, total // 20))


def memory_run(total: int, concurrency: int) -> Callable[[Scaling], dict[str, Any]]:
    """``total`` no-op jobs streamed through one manager and one worker, RSS sampled.

    Submission keeps at most :data:`WAITING_CAP` jobs waiting, so the queue holds a
    steady amount and any growth is the processes' own. Completed is submitted minus
    waiting (queued or running), a count over at most the cap's rows, cheap on a store
    that grows to ``total``; the end is checked with the exact count of succeeded rows.
    """
    step = memory_step(total)

    def body(system: Scaling) -> dict[str, Any]:
        assert system.manager is not None
        manager = system.manager
        worker = system.start_workers(1, concurrency)[0]
        samples: list[Sample] = []
        try:
            began = time.monotonic()
            next_sample, submitted, done = step, 0, 0
            last_progress, last_done = began, 0
            while True:
                for process, name in ((manager, "manager"), (worker, "worker")):
                    if process.poll() is not None:
                        raise BenchError(f"the {name} exited with {process.returncode}")
                waiting = system.waiting() if submitted else 0
                done = submitted - waiting
                now = time.monotonic()
                if done > last_done:
                    last_progress, last_done = now, done
                elif now - last_progress > STALL:
                    raise BenchError(f"no job completed for {STALL:.0f} s at {done:,}")
                if done >= next_sample:
                    reached = total if done >= total else done // step * step
                    samples.append(Sample(reached, done, rss_kib(manager.pid), rss_kib(worker.pid)))
                    next_sample = min(total, reached + step)
                if done >= total:
                    break
                if submitted < total and waiting <= WAITING_CAP - BATCH:
                    count = min(BATCH, total - submitted)
                    system.submit([{"type": "noop", "data": submitted + i} for i in range(count)])
                    submitted += count
                else:
                    time.sleep(0.05)
            elapsed = time.monotonic() - began
        finally:
            stop_workers([worker])
        verified = system.verify()
        if verified != total:
            raise BenchError(f"the store shows {verified} succeeded jobs, not {total}")
        return {"samples": samples, "elapsed_s": elapsed, "jobs_per_s": total / elapsed}

    return body


# Tables


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table padded to its column widths, so it reads as well in a terminal."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    right = [i > 0 and not header[i].startswith(("variant", "payload")) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = [
            text.rjust(w) if r else text.ljust(w)
            for text, w, r in zip(row, widths, right, strict=True)
        ]
        return "| " + " | ".join(cells) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if r else "-" * (w + 2)
            for w, r in zip(widths, right, strict=True)
        )
        + "|"
    )
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def num(value: float | None, digits: int = 0) -> str:
    """A figure with thousands separators, or n/a where a run gave none."""
    return "n/a" if value is None else f"{value:,.{digits}f}"


def relative(cells: Sequence[Cell], cell: Cell) -> str:
    """The cell's jobs/s over the first measured cell of its variant: how cost grows."""
    base = next((c for c in cells if c.variant == cell.variant and not c.failed), None)
    if base is None or cell.failed:
        return ""
    ours, theirs = cell.values.get("jobs_per_s"), base.values.get("jobs_per_s")
    return f"{ours / theirs:.2f}x" if ours and theirs else "n/a"


def drain_table(cells: Sequence[Cell], what: str, extra: tuple[str, str, int] | None = None) -> str:
    """Variant, the varied quantity, jobs, jobs/s and its spread, the ratio to the first row.

    ``extra`` adds a column: its title, the result's key and the digits shown.
    """
    header = ["variant", what, "jobs", "jobs/s", "min-max", "vs first row", "drain s"]
    header += ["enqueue s", *([extra[0]] if extra else []), "load 1m"]
    rows = []
    for cell in cells:
        v = cell.values
        row = [cell.variant, cell.label, f"{cell.jobs:,}"]
        if cell.failed:
            row += ["failed", "", "", "", "", *([""] if extra else [])]
        else:
            row += [
                num(v.get("jobs_per_s")),
                cell.spread("jobs_per_s"),
                relative(cells, cell),
                num(v.get("drain_s"), 2),
                num(v.get("enqueue_s"), 2),
                *([num(v.get(extra[1]), extra[2])] if extra else []),
            ]
        rows.append([*row, cell.load])
    return markdown_table(header, rows)


def payload_table(cells: Sequence[Cell]) -> str:
    """Variant, payload size, jobs, jobs/s and MB/s."""
    header = ["variant", "payload", "jobs", "jobs/s", "min-max", "MB/s", "drain s", "enqueue s"]
    rows = []
    for cell in cells:
        v = cell.values
        row = [cell.variant, cell.label, f"{cell.jobs:,}"]
        if cell.failed:
            row += ["failed", "", "", "", ""]
        else:
            row += [
                num(v.get("jobs_per_s")),
                cell.spread("jobs_per_s"),
                num(v.get("mb_per_s"), 1),
                num(v.get("drain_s"), 2),
                num(v.get("enqueue_s"), 2),
            ]
        rows.append([*row, cell.load])
    return markdown_table([*header, "load 1m"], rows)


def baseline_sample(samples: Sequence[Sample], total: int) -> Sample:
    """The sample at 100,000 jobs, or at a tenth of a shorter run: growth is from there.

    The first tenth is left out because the processes are still warming up in it
    (allocator arenas, SQLite's page cache, imports on first use), which is not growth.
    """
    mark = min(100_000, total // 10)
    return next(s for s in samples if s.step >= mark)


def memory_tables(cells: Sequence[Cell]) -> str:
    """The RSS series of each variant side by side, then the growth from 100k to the end."""
    good = [c for c in cells if not c.failed]
    if not good:
        return ""
    header = ["completed jobs"]
    for cell in good:
        header += [f"{cell.variant} manager MiB", f"{cell.variant} worker MiB"]
    by_step = {cell.variant: {s.step: s for s in cell.values["samples"]} for cell in good}
    steps = sorted({step for samples in by_step.values() for step in samples})
    rows = []
    for step in steps:
        row = [f"{step:,}"]
        for cell in good:
            sample = by_step[cell.variant].get(step)
            row += (
                [f"{sample.manager_kib / 1024:.1f}", f"{sample.worker_kib / 1024:.1f}"]
                if sample
                else ["", ""]
            )
        rows.append(row)
    late = max(s.done - s.step for cell in good for s in cell.values["samples"])
    parts = [
        markdown_table(header, rows),
        f"Each sample was taken at the first look at or past its step, at most {late:,} "
        "jobs past it.",
    ]
    header = ["variant", "jobs", "jobs/s", "from", "manager MiB", "manager growth"]
    header += ["worker MiB", "worker growth", "load 1m"]
    rows = []
    for cell in good:
        samples = cell.values["samples"]
        base, end = baseline_sample(samples, cell.jobs), samples[-1]
        rows.append(
            [
                cell.variant,
                f"{cell.jobs:,}",
                num(cell.values["jobs_per_s"]),
                f"{base.step:,}",
                f"{base.manager_kib / 1024:.1f} -> {end.manager_kib / 1024:.1f}",
                growth(base.manager_kib, end.manager_kib),
                f"{base.worker_kib / 1024:.1f} -> {end.worker_kib / 1024:.1f}",
                growth(base.worker_kib, end.worker_kib),
                cell.load,
            ]
        )
    parts.append(markdown_table(header, rows))
    return "\n\n".join(parts)


def growth(before_kib: int, after_kib: int) -> str:
    """The change between two samples, in MiB and as a share of the first."""
    change = after_kib - before_kib
    return f"{change / 1024:+.1f} MiB ({change / before_kib * 100:+.1f}%)"


# The command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="sqlite,pg", help="comma list of sqlite, pg")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma list")
    parser.add_argument("--jobs", type=int, help="N per drain (20,000; --quick 2,000)")
    parser.add_argument("--processes", default="1,2,4,8", help="workers: processes per run")
    parser.add_argument(
        "--rows", help="rows: finished jobs already in the store (10000,100000,1000000)"
    )
    parser.add_argument("--large-jobs", type=int, help="payload: N at 1 MB (500; --quick 100)")
    parser.add_argument(
        "--memory-jobs", type=int, help="memory: jobs through the system (1,000,000)"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="per worker process")
    parser.add_argument("--repeats", type=int, help="rounds per cell, medians shown (3; --quick 1)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--out", type=Path, help="also write the tables and the machine here")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument("--pg-url", default="postgresql://root@127.0.0.1:5432/test")
    parser.add_argument("--verbose", action="store_true", help="show the processes' output")
    args = parser.parse_args(argv)
    quick = args.quick
    args.jobs = args.jobs or (2_000 if quick else 20_000)
    args.rows = [
        int(n)
        for n in (args.rows or ("10000,100000" if quick else "10000,100000,1000000")).split(",")
    ]
    args.repeats = args.repeats or (1 if quick else 3)
    args.large_jobs = args.large_jobs or (100 if quick else 500)
    args.memory_jobs = args.memory_jobs or (100_000 if quick else 1_000_000)
    args.processes = [int(n) for n in args.processes.split(",")]
    args.variants = pick(args.variant, VARIANTS, "--variant", parser)
    args.workload_list = pick(args.workloads, WORKLOADS, "--workloads", parser)
    return args


def pick(text: str, known: Sequence[str], what: str, parser: argparse.ArgumentParser) -> list[str]:
    """The comma list ``text``, each item one of ``known``, or a usage error."""
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in known]
    if unknown or not chosen:
        parser.error(f"{what}: {', '.join(unknown) or 'nothing'} (choose from {', '.join(known)})")
    return chosen


def workers_section(args: argparse.Namespace) -> tuple[str, list[Cell], str, str]:
    """No-op throughput by worker processes: how far adding processes carries."""
    cells = [
        Cell(
            variant,
            f"{processes}",
            args.jobs,
            "forerunner_tasks",
            noop_drain(args.jobs, processes, args.concurrency),
        )
        for variant in args.variants
        for processes in args.processes
    ]
    run_cells(args, cells, args.repeats)
    notes = (
        f"{args.jobs:,} no-op jobs enqueued, then drained by P worker processes of concurrency "
        f'{args.concurrency}; jobs/s from the first completion to the last. "vs first '
        "row\" is jobs/s over the variant's first row."
    )
    return (
        "workers: no-op jobs/s by worker processes",
        cells,
        drain_table(cells, "worker processes"),
        notes,
    )


def rows_section(args: argparse.Namespace) -> tuple[str, list[Cell], str, str]:
    """No-op throughput by rows already in the store: whether history slows the hot path."""
    cells = [
        Cell(
            variant,
            f"{rows:,}",
            args.jobs,
            "forerunner_tasks",
            noop_drain(args.jobs, 1, args.concurrency, backlog=rows),
        )
        for variant in args.variants
        for rows in args.rows
    ]
    run_cells(args, cells, args.repeats)
    notes = (
        f"One worker process of concurrency {args.concurrency}. The rows are succeeded "
        'no-op jobs written into the store\'s table before the clock starts ("fill s"), '
        "then analyzed (PostgreSQL: VACUUM ANALYZE; SQLite: ANALYZE and a WAL checkpoint)."
    )
    table = drain_table(cells, "rows in store", ("fill s", "fill_s", 1))
    return "rows: no-op jobs/s by finished jobs already in the store", cells, table, notes


def payload_section(args: argparse.Namespace) -> tuple[str, list[Cell], str, str]:
    """Throughput by payload size: what moving data through the store costs."""
    cells = []
    for variant in args.variants:
        for size, label in PAYLOADS:
            jobs = args.large_jobs if size >= 1_000_000 else args.jobs
            cells.append(
                Cell(
                    variant,
                    label,
                    jobs,
                    "scaling_tasks",
                    payload_drain(jobs, size, args.concurrency),
                )
            )
    run_cells(args, cells, args.repeats)
    notes = (
        f"One worker process of concurrency {args.concurrency}. Each job's data is a JSON "
        "string of the stated size (decimal: 100, 10,000 and 1,000,000 bytes) and the task "
        "returns it, so the result is as large; every result was checked equal to its data "
        f"in the store. N is {args.large_jobs:,} at 1 MB. MB/s is jobs/s times the payload: "
        "the data one way, while the result moves as much the other way."
    )
    return "payload: jobs/s and MB/s by payload size", cells, payload_table(cells), notes


def memory_section(args: argparse.Namespace) -> tuple[str, list[Cell], str, str]:
    """RSS over a long run: whether the manager or a worker grows with jobs served."""
    cells = [
        Cell(
            variant,
            "memory",
            args.memory_jobs,
            "forerunner_tasks",
            memory_run(args.memory_jobs, args.concurrency),
        )
        for variant in args.variants
    ]
    run_cells(args, cells, 1)
    notes = (
        f"{args.memory_jobs:,} no-op jobs through one manager and one worker process of "
        f"concurrency {args.concurrency}, submitted in batches of {BATCH:,} while it "
        f"drains, at most {WAITING_CAP:,} waiting; VmRSS every "
        f"{memory_step(args.memory_jobs):,} completed jobs, one run. Growth is from the "
        f"sample at {min(100_000, args.memory_jobs // 10):,} jobs to the last."
    )
    return "memory: resident set of the manager and a worker", cells, memory_tables(cells), notes


SECTIONS = {
    "workers": workers_section,
    "rows": rows_section,
    "payload": payload_section,
    "memory": memory_section,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = load_average()
    started = dt.datetime.now(dt.UTC)
    sections: list[str] = []
    failed = 0
    for workload in args.workload_list:
        print(f"{workload}:", flush=True)
        title, cells, table, notes = SECTIONS[workload](args)
        text = "\n\n".join(part for part in (f"### {title}", table, notes, failures(cells)) if part)
        print(f"\n{text}\n", flush=True)
        sections.append(text)
        failed += sum(len(cell.errors) for cell in cells)
    finished = dt.datetime.now(dt.UTC)
    if args.out:
        given = list(argv) if argv is not None else sys.argv[1:]
        minutes = (finished - started).total_seconds() / 60
        header = [
            "# forerunner: how cost grows (bench/scaling.py)",
            "",
            *(["A smoke run (--quick): small sizes, not a result.", ""] if args.quick else []),
            f"- date: {started:%Y-%m-%d %H:%M} UTC, {minutes:.1f} min",
            f"- command: `{' '.join(['bench/scaling.py', *given])}`",
            f"- machine: {cpu_model()}, {os.cpu_count()} cores, {memory_gib()} RAM, "
            f"{platform.system()} {platform.release()}",
            f"- load average (1/5/15 min): {load_before} before, {load_average()} after",
            f"- Python {platform.python_version()}, forerunner {git_revision()}",
            f"- rounds per cell: {args.repeats} (medians; memory: one run)",
        ]
        args.out.write_text("\n".join(header) + "\n\n" + "\n\n".join(sections) + "\n")
        print(f"written to {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
