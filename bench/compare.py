"""Forerunner beside its peers: every system, every workload, one table (issue 7).

Run with the project's interpreter (``./dev bench [OPTION...]`` sets up ``.venv`` and
the services, then runs this file): standard library and forerunner only, because the
peers live in virtual environments of their own (their pins conflict with each other and
with forerunner's). For each peer this script creates or updates
``bench/.venvs/<peer>`` from ``bench/systems/requirements/<peer>.txt``, reusing it when
the stamp of that file's hash matches, as ``./dev`` does for ``.venv``.

Each run is one subprocess: ``bench/systems/<system>_system.py WORKLOAD ...`` under the
system's own interpreter, which prints one JSON line (``bench/systems/_common.py`` says
what each workload measures and how completion is counted from the backend). Runs are
interleaved: round 1 of every system and workload, then round 2, so that a noisy minute
on this shared machine lands on every system alike rather than on one. A run that prints
an error, exits non-zero, times out or completes a different number of jobs than it
enqueued is a failure, and the table says so; it is never dropped. Each cell is the
median of the runs that succeeded, beside how many times better forerunner did in the
same invocation: ratios, not absolute figures, are what survive the machine's noise.

The table goes to stdout and to ``--out`` (``bench/RESULTS.md``) with the machine, the
versions, the modes, the job counts and the command line; ``--raw`` keeps every run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SYSTEMS_DIR = BENCH / "systems"
REQUIREMENTS_DIR = SYSTEMS_DIR / "requirements"
VENVS_DIR = BENCH / ".venvs"
STAMP = ".bench-requirements"


@dataclass(frozen=True)
class SystemSpec:
    """One row of the table: an adapter, the venv it runs in, and its variant."""

    key: str
    label: str
    adapter: str
    venv: str | None  # None: the project's own interpreter (forerunner)
    variant: str
    packages: tuple[str, ...]  # distributions whose installed versions the report states

    @property
    def adapter_path(self) -> Path:
        return SYSTEMS_DIR / self.adapter

    @property
    def requirements(self) -> Path | None:
        return None if self.venv is None else REQUIREMENTS_DIR / f"{self.venv}.txt"


_FORERUNNER_DISTS = ("forerunner-core", "forerunner-redis-queue", "forerunner-postgres-store")

#: Every system the bench knows, in table order. The first two are the baselines.
SYSTEMS: tuple[SystemSpec, ...] = (
    SystemSpec("forerunner-pg", "forerunner (pg)", "forerunner_system.py", None, "pg",
               _FORERUNNER_DISTS),
    SystemSpec("forerunner-sqlite", "forerunner (sqlite)", "forerunner_system.py", None,
               "sqlite", _FORERUNNER_DISTS),
    SystemSpec("celery", "celery", "celery_system.py", "celery", "",
               ("celery", "kombu", "redis")),
    SystemSpec("rq", "rq", "rq_system.py", "rq", "", ("rq", "redis")),
    SystemSpec("rq-simple", "rq (simple)", "rq_system.py", "rq", "simple", ("rq", "redis")),
    SystemSpec("dramatiq", "dramatiq", "dramatiq_system.py", "dramatiq", "",
               ("dramatiq", "redis")),
    SystemSpec("huey", "huey", "huey_system.py", "huey", "", ("huey", "redis")),
    SystemSpec("saq", "saq", "saq_system.py", "saq", "", ("saq", "redis")),
    SystemSpec("arq", "arq", "arq_system.py", "arq", "", ("arq", "redis")),
    SystemSpec("arq-poll10ms", "arq (poll 10 ms)", "arq_system.py", "arq", "poll10ms",
               ("arq", "redis")),
    SystemSpec("procrastinate", "procrastinate", "procrastinate_system.py", "procrastinate",
               "", ("procrastinate", "psycopg")),
)  # fmt: skip
BASELINE = "forerunner-pg"
SECOND_BASELINE = "forerunner-sqlite"


@dataclass(frozen=True)
class Workload:
    """One column group: an adapter workload and its worker process count."""

    key: str
    workload: str
    processes: int
    title: str


WORKLOADS: tuple[Workload, ...] = (
    Workload("noop-1", "noop", 1, "no-op, 1 worker process"),
    Workload("noop-2", "noop", 2, "no-op, 2 worker processes"),
    Workload("latency", "latency", 1, "enqueue to start, idle system"),
    Workload("sleep", "sleep", 1, "10 ms sleeping jobs at concurrency 50"),
    Workload("backlog", "backlog", 1, "no-op, 1 process, finished jobs already stored"),
)

#: Latency jobs are sent at ``--rate`` per second, so N costs N / rate seconds whatever
#: the system: by default a tenth of ``--jobs`` (2,000 jobs, 40 s at 50/s).
LATENCY_SHARE = 10

#: Peers too slow for the full N in a workload: (system, workload) -> (cap, reason).
#: The cap applies whatever ``--jobs`` is (a smaller ``--jobs`` wins) and the table
#: marks every cell it shrank. The rule, from ``--quick`` runs of every adapter on the
#: project's two-core machine: under 1,000 jobs/s a run gets 10,000 jobs, under 300
#: jobs/s 5,000, under 100 jobs/s 2,000, under 40 jobs/s 1,000, so that no drain takes
#: much over half a minute and three rounds of the matrix fit in under an hour. A
#: drain's rate barely depends on N past a few thousand jobs; the backlog stays whole.
_RQ_FORK = "RQ's default Worker forks a work horse per job; small runs gave {rate}"
_RQ_ONE = "an RQ worker runs one job at a time; small runs gave {rate}"
_ARQ_POLL = (
    "arq's default poll_delay 0.5 s and queue_read_limit 100 cap a worker near 200 jobs/s "
    "by design; small runs gave {rate}"
)
_PROCRASTINATE = "Procrastinate's default worker runs one job at a time; small runs gave {rate}"
_SLOWER = "small runs gave {rate}"
SMALLER: dict[tuple[str, str], tuple[int, str]] = {
    ("celery", "noop-1"): (10_000, _SLOWER.format(rate="434 to 989 jobs/s")),
    ("celery", "noop-2"): (10_000, _SLOWER.format(rate="841 to 1,095 jobs/s")),
    ("celery", "sleep"): (10_000, _SLOWER.format(rate="450 to 618 jobs/s")),
    ("celery", "backlog"): (10_000, _SLOWER.format(rate="631 to 647 jobs/s")),
    ("rq", "noop-1"): (2_000, _RQ_FORK.format(rate="44 to 94 jobs/s")),
    ("rq", "noop-2"): (2_000, _RQ_FORK.format(rate="87 jobs/s with two workers")),
    ("rq", "sleep"): (1_000, _RQ_FORK.format(rate="29 jobs/s (one 10 ms job at a time)")),
    ("rq", "backlog"): (2_000, _RQ_FORK.format(rate="41 jobs/s")),
    ("rq-simple", "noop-1"): (10_000, _RQ_ONE.format(rate="343 to 400 jobs/s")),
    ("rq-simple", "noop-2"): (10_000, _RQ_ONE.format(rate="522 jobs/s with two")),
    ("rq-simple", "sleep"): (2_000, _RQ_ONE.format(rate="68 to 77 jobs/s")),
    ("rq-simple", "backlog"): (5_000, _RQ_ONE.format(rate="220 to 348 jobs/s")),
    ("saq", "sleep"): (10_000, _SLOWER.format(rate="1,030 jobs/s")),
    ("arq", "noop-1"): (5_000, _ARQ_POLL.format(rate="196 to 208 jobs/s")),
    ("arq", "noop-2"): (5_000, _ARQ_POLL.format(rate="206 to 219 jobs/s with two workers")),
    ("arq", "sleep"): (10_000, _SLOWER.format(rate="392 jobs/s")),
    ("arq", "backlog"): (5_000, _ARQ_POLL.format(rate="194 to 309 jobs/s")),
    ("arq-poll10ms", "noop-1"): (10_000, _SLOWER.format(rate="375 to 738 jobs/s")),
    ("arq-poll10ms", "noop-2"): (10_000, _SLOWER.format(rate="374 jobs/s with two")),
    ("arq-poll10ms", "sleep"): (10_000, _SLOWER.format(rate="381 jobs/s")),
    ("arq-poll10ms", "backlog"): (10_000, _SLOWER.format(rate="401 jobs/s")),
    ("procrastinate", "noop-1"): (5_000, _PROCRASTINATE.format(rate="217 to 335 jobs/s")),
    ("procrastinate", "noop-2"): (5_000, _PROCRASTINATE.format(rate="245 to 462 with two")),
    ("procrastinate", "sleep"): (10_000, _SLOWER.format(rate="381 jobs/s")),
    ("procrastinate", "backlog"): (5_000, _PROCRASTINATE.format(rate="271 to 321 jobs/s")),
}  # fmt: skip

#: Peers whose backlog fill is too slow for the full ``--backlog``: system -> (cap, why).
SMALLER_BACKLOG: dict[str, tuple[int, str]] = {}


# Running one adapter


@dataclass
class Plan:
    """The N of each workload and the backlog size, before per-system caps."""

    jobs: dict[str, int]
    backlog: int

    def jobs_for(self, spec: SystemSpec, workload: Workload) -> tuple[int, str | None]:
        """The N this system runs this workload with, and the reason if it was capped."""
        jobs = self.jobs[workload.key]
        cap = SMALLER.get((spec.key, workload.key))
        if cap is not None and cap[0] < jobs:
            return cap[0], cap[1]
        return jobs, None

    def backlog_for(self, spec: SystemSpec) -> tuple[int, str | None]:
        cap = SMALLER_BACKLOG.get(spec.key)
        if cap is not None and cap[0] < self.backlog:
            return cap[0], cap[1]
        return self.backlog, None


@dataclass
class Run:
    """One subprocess: a system, a workload, a round; ``record`` is its JSON line."""

    spec: SystemSpec
    workload: Workload
    round: int
    jobs: int
    backlog: int | None
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def failure(self) -> str | None:
        failure: str | None = self.record.get("failed")
        return failure


def descendants(root: int) -> list[int]:
    """Every live process below ``root``, read from /proc.

    Adapters start their workers (and forerunner its manager) in sessions of their own
    so that a worker's pool dies with it; killing the adapter's group would leave them.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def end_run(proc: subprocess.Popen[bytes]) -> None:
    """Stop a run past its timeout, and everything it started.

    SIGINT first: the adapter's ``finally`` blocks stop its workers and release its
    backend. What is still alive 30 s later is killed, process by process.
    """
    below = descendants(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(30)
    for pid in [proc.pid, *below]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()


def run_env(python: str) -> dict[str, str]:
    """The environment of a run: the system's venv first on PATH, no other venv's."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = str(Path(python).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_one(run: Run, python: str, args: argparse.Namespace) -> None:
    """Run one adapter once; fill ``run.record``, with ``failed`` set if it failed."""
    spec, workload = run.spec, run.workload
    command = [
        python, str(spec.adapter_path), workload.workload,
        "--jobs", str(run.jobs), "--processes", str(workload.processes),
        "--rate", str(args.rate), "--redis-url", args.redis_url, "--pg-url", args.pg_url,
    ]  # fmt: skip
    if spec.variant:
        command += ["--variant", spec.variant]
    if run.backlog is not None:
        command += ["--backlog", str(run.backlog)]
    base: dict[str, Any] = {
        "key": spec.key,
        "column": workload.key,
        "round": run.round,
        "command": shlex.join(command),
        "load_1m_before": round(os.getloadavg()[0], 2),
    }
    began = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            command, stdout=out, stderr=err, cwd=SYSTEMS_DIR, env=run_env(python),
            start_new_session=True,
        )  # fmt: skip
        timed_out = False
        try:
            proc.wait(args.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            end_run(proc)
        except BaseException:
            end_run(proc)
            raise
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    base["wall_s"] = round(time.monotonic() - began, 2)
    base["returncode"] = proc.returncode
    record: dict[str, Any] = {}
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                break
    record.update(base)
    tail = " | ".join(line.strip() for line in stderr.strip().splitlines()[-3:])
    if timed_out:
        record["failed"] = f"timed out after {args.timeout:.0f} s"
    elif "error" in record:
        record["failed"] = str(record["error"])
    elif proc.returncode != 0:
        record["failed"] = f"exit code {proc.returncode}" + (f": {tail}" if tail else "")
    elif not record.get("system"):
        record["failed"] = "no result line" + (f": {tail}" if tail else "")
    elif record.get("completed") != run.jobs:
        record["failed"] = f"completed {record.get('completed')} of {run.jobs} jobs"
    elif workload.workload != "latency" and not record.get("jobs_per_s"):
        record["failed"] = "drain too short to time"
    if "failed" in record and tail and tail not in record["failed"]:
        record["stderr_tail"] = tail
    run.record = record


# Virtual environments


def ensure_venv(spec: SystemSpec, log: TextIO) -> str:
    """The interpreter of ``spec``'s venv, created or updated from its requirements file.

    Raises RuntimeError with the reason when the venv cannot be had: every run of the
    system then fails with that reason instead of disappearing from the table.
    """
    if spec.venv is None:
        return sys.executable
    requirements = spec.requirements
    assert requirements is not None
    if not requirements.is_file():
        raise RuntimeError(f"no requirements file {requirements.relative_to(ROOT)}")
    venv = VENVS_DIR / spec.venv
    python = venv / "bin" / "python"
    wanted = hashlib.sha256(
        requirements.read_bytes() + platform.python_version().encode()
    ).hexdigest()
    stamp = venv / STAMP
    if python.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return str(python)
    print(f"setting up {venv.relative_to(ROOT)} from {requirements.name}", file=log, flush=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)] if not python.exists() else None,
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--requirement", str(requirements)],
    ]  # fmt: skip
    for step in steps:
        if step is None:
            continue
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise RuntimeError(f"venv set-up failed ({shlex.join(step[:4])}...): {tail}")
    stamp.write_text(wanted + "\n")
    return str(python)


# Facts about the machine and the software


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_gib() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    return "unknown"


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def redis_version(url: str) -> str:
    """The server's ``redis_version``, asked over a bare socket (no client library)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 5) as s:
            s.sendall(b"INFO server\r\n")
            data = b""
            while b"redis_version:" not in data or not data.endswith(b"\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                if len(data) > 1 << 20:
                    break
        for line in data.decode(errors="replace").splitlines():
            if line.startswith("redis_version:"):
                return line.split(":", 1)[1].strip()
    except OSError as error:
        return f"not reachable ({error})"
    return "unknown"


def postgres_version(url: str) -> str:
    try:
        import psycopg  # forerunner-postgres-store's own dependency

        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else "unknown"
    except Exception as error:
        return f"not reachable ({type(error).__name__})"


def package_versions(python: str, packages: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of ``packages`` as the venv's own interpreter sees them."""
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try: out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: out[name] = 'not installed'\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [python, "-c", code, *packages], capture_output=True, text=True, check=False
    )
    try:
        versions: dict[str, str] = json.loads(done.stdout)
    except ValueError:
        return {name: "unknown" for name in packages}
    return versions


def git_revision() -> str:
    """The commit forerunner ran from, and whether the work tree differed from it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" with uncommitted changes" if dirty else "")


# The table


@dataclass(frozen=True)
class Metric:
    """One column: which workload's runs, which field, and which direction is better."""

    title: str
    column: str
    field: str
    higher_is_better: bool
    unit: str


METRICS: tuple[Metric, ...] = (
    Metric("enqueue jobs/s", "noop-1", "enqueue_per_s", True, "/s"),
    Metric("noop jobs/s, 1 proc", "noop-1", "jobs_per_s", True, "/s"),
    Metric("noop jobs/s, 2 procs", "noop-2", "jobs_per_s", True, "/s"),
    Metric("latency p50 ms", "latency", "p50_ms", False, "ms"),
    Metric("latency p99 ms", "latency", "p99_ms", False, "ms"),
    Metric("sleep jobs/s", "sleep", "jobs_per_s", True, "/s"),
    Metric("backlog jobs/s", "backlog", "jobs_per_s", True, "/s"),
)


def median_of(runs: list[Run], name: str) -> float | None:
    values = [r.record[name] for r in runs if not r.failure and r.record.get(name) is not None]
    return statistics.median(values) if values else None


def fmt_value(value: float, metric: Metric) -> str:
    if metric.unit == "ms":
        return f"{value:.3g}" if value < 100 else f"{value:,.0f}"
    return f"{value:,.0f}"


def fmt_ratio(ratio: float) -> str:
    if ratio >= 10:
        return f"{ratio:.0f}x"
    if ratio >= 1:
        return f"{ratio:.1f}x"
    return f"{ratio:.2f}x"


def ratio(metric: Metric, forerunner: float | None, other: float | None) -> float | None:
    """How many times better forerunner did: above 1, forerunner was faster."""
    if forerunner is None or other is None or forerunner <= 0 or other <= 0:
        return None
    return forerunner / other if metric.higher_is_better else other / forerunner


def cell(
    spec: SystemSpec, metric: Metric, runs: list[Run], medians: dict[tuple[str, str], float | None],
    *, default_jobs: int, baselines: list[str],
) -> str:  # fmt: skip
    """``value (vs pg / vs sqlite)``, with a failure count and a capped N if any.

    Only the baselines in this invocation get a ratio: a ratio against a figure from
    another invocation would mix two states of the machine.
    """
    if not runs:
        return "not run"
    value = medians.get((spec.key, metric.title))
    failed = sum(1 for r in runs if r.failure)
    if value is None:
        return f"failed {failed}/{len(runs)}"
    text = fmt_value(value, metric)
    ratios = []
    for base in baselines:
        if base == spec.key:
            ratios.append("—")
            continue
        r = ratio(metric, medians.get((base, metric.title)), value)
        ratios.append(fmt_ratio(r) if r is not None else "?")
    if ratios:
        text += f" ({' / '.join(ratios)})"
    if failed:
        text += f" ✗{failed}/{len(runs)}"
    jobs = runs[0].jobs
    if jobs != default_jobs:
        text += f" [N={jobs:,}]"
    return text


def baselines_of(specs: list[SystemSpec]) -> list[str]:
    """The forerunner rows that ratios are taken against, in the order cells show them."""
    keys = {spec.key for spec in specs}
    return [base for base in (BASELINE, SECOND_BASELINE) if base in keys]


def ratio_legend(specs: list[SystemSpec]) -> str:
    """The sentence above the table that says what the brackets hold."""
    labels = {spec.key: spec.label for spec in specs}
    bases = [labels[base] for base in baselines_of(specs)]
    if not bases:
        return "No forerunner row in this run, so no ratios."
    return (
        f"In brackets: how many times better {' / '.join(bases)} did than the row "
        "(throughput: forerunner over row; latency: row over forerunner). "
        "Above 1x forerunner was better."
    )


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table padded to its column widths, so it reads as well in a terminal."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(text.ljust(w) for text, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def results_table(specs: list[SystemSpec], runs: list[Run], plan: Plan) -> tuple[str, list[Run]]:
    """The table, and the failed runs it counts, for the list under it."""
    by_cell: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        by_cell.setdefault((run.spec.key, run.workload.key), []).append(run)
    metrics = [m for m in METRICS if m.column in plan.jobs]
    medians: dict[tuple[str, str], float | None] = {}
    for spec in specs:
        for metric in metrics:
            medians[(spec.key, metric.title)] = median_of(
                by_cell.get((spec.key, metric.column), []), metric.field
            )
    header = ["system", *(m.title for m in metrics), "mode"]
    rows = []
    for spec in specs:
        mode = next(
            (r.record["mode"] for r in runs if r.spec.key == spec.key and r.record.get("mode")),
            "?",
        )
        rows.append([
            spec.label,
            *(
                cell(spec, m, by_cell.get((spec.key, m.column), []), medians,
                     default_jobs=plan.jobs[m.column], baselines=baselines_of(specs))
                for m in metrics
            ),
            mode,
        ])  # fmt: skip
    failed = [r for r in runs if r.failure]
    return markdown_table(header, rows), failed


HOW_TO_READ = """\
Each cell is the median of the runs that succeeded, then in brackets how many times
better forerunner did in the same invocation: first forerunner on PostgreSQL + Redis,
then forerunner on SQLite + memory. For throughput that is forerunner's jobs/s over the
row's; for latency it is the row's milliseconds over forerunner's. Either way, above 1x
forerunner was better, below 1x the row's system was (0.50x = twice as good as
forerunner); "—" is the baseline itself. Compare ratios, not absolute figures: this is a
shared two-core machine, and the ratios come from runs interleaved round by round, so a
noisy minute hits every system alike. `✗k/n` means k of the n runs of that cell failed
(listed under the table; the median is of the others); `failed` means all did. `[N=...]`
marks a cell run with fewer jobs than the column's default, for the reason given under
"Jobs per run". The last column is the mode each adapter reports: how the system was
configured (reliability, pool, where outcomes are stored). Throughput is timed from the
first job the backend shows completed to the last, so worker start-up is excluded;
enqueue jobs/s is the no-op workload's enqueue of N jobs with no worker running, through
the batch API where the system has one. Every run counts its completed jobs from the
backend (a result, a registry entry, a row) and fails unless that count is exactly the
number it enqueued."""


def report(
    args: argparse.Namespace,
    specs: list[SystemSpec],
    runs: list[Run],
    plan: Plan,
    facts: dict[str, Any],
) -> str:
    """RESULTS.md: the table, then everything needed to judge or repeat it."""
    table, failed = results_table(specs, runs, plan)
    out = ["# Forerunner beside its peers", ""]
    if args.quick:
        out += ["**A --quick smoke run: small N, one repeat. Not a result to quote.**", ""]
    out += [
        f"Date: {facts['date']}. Total run time: {facts['total']}. "
        f"Repeats: {args.repeats} (cells are medians)"
        + "".join(f"; {key}: {count}" for key, count in args.workload_repeats.items())
        + ".",
        "",
        f"Command: `{facts['command']}`",
        "",
        ratio_legend(specs),
        "",
        table,
        "",
    ]
    if failed:
        out += ["Failed runs:", ""]
        out += [f"- {r.spec.label}, {r.workload.key}, round {r.round}: {r.failure}" for r in failed]
        out.append("")
    if facts["missing"]:
        out += [f"Not run (no adapter in bench/systems yet): {', '.join(facts['missing'])}.", ""]
    out += ["## How to read this", "", HOW_TO_READ, ""]
    out += ["## Jobs per run", ""]
    for workload in WORKLOADS:
        if workload.key not in plan.jobs:
            continue
        extra = ""
        if workload.key == "latency":
            extra = f", submitted one at a time at {args.rate:g}/s"
        if workload.key == "backlog":
            extra = f", with {plan.backlog:,} finished jobs already in the store"
        out.append(f"- {workload.key} ({workload.title}): N = {plan.jobs[workload.key]:,}{extra}")
    capped = [
        (spec, workload, *plan.jobs_for(spec, workload))
        for spec in specs
        for workload in WORKLOADS
        if workload.key in plan.jobs
    ]
    capped_rows = [f"- {s.label}, {w.key}: N = {n:,}: {why}" for s, w, n, why in capped if why]
    for spec in specs:
        size, why = plan.backlog_for(spec)
        if why and "backlog" in plan.jobs:
            capped_rows.append(f"- {spec.label}, backlog: {size:,} finished jobs: {why}")
    out += ["", "Smaller where a peer is too slow for the full N:", ""]
    out += capped_rows or ["- none in this run"]
    out += [
        "",
        "## Machine",
        "",
        f"- CPU: {facts['cpu']}, {os.cpu_count()} cores",
        f"- RAM: {facts['ram']}",
        f"- Kernel: {platform.system()} {platform.release()}",
        f"- Load average (1/5/15 min) before: {facts['load_before']}; after: {facts['load_after']}",
        "",
        "## Versions",
        "",
        f"- Python {platform.python_version()} ({platform.python_implementation()})",
        f"- Redis server {facts['redis']}, PostgreSQL server {facts['postgres']}",
        f"- forerunner at {facts['git']}",
    ]
    for spec_label, versions in facts["versions"]:
        listed = ", ".join(f"{name} {version}" for name, version in versions.items())
        out.append(f"- {spec_label}: {listed}")
    out.append("")
    return "\n".join(out)


# The command line


def parse_jobs_overrides(text: str) -> dict[str, int]:
    overrides: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, count = item.partition("=")
        if name not in {w.key for w in WORKLOADS} or not count.isdigit() or int(count) < 1:
            raise argparse.ArgumentTypeError(f"expected WORKLOAD=N, e.g. latency=500: {item!r}")
        overrides[name] = int(count)
    return overrides


def pick(text: str | None, known: list[str], what: str) -> list[str] | None:
    if text is None:
        return None
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(known)}")
    return chosen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/compare.py",
        description="Run forerunner and its peers on the same workloads; print one table.",
        epilog="systems: " + ", ".join(s.key for s in SYSTEMS)
        + "; workloads: " + ", ".join(w.key for w in WORKLOADS),
    )  # fmt: skip
    parser.add_argument("--systems", help="comma list (default: every system with an adapter)")
    parser.add_argument("--workloads", help="comma list (default: all five)")
    parser.add_argument("--jobs", type=int, help="N per run (default 20000; latency N/10)")
    parser.add_argument(
        "--workload-jobs", type=parse_jobs_overrides, default={}, metavar="W=N,...",
        help="N for single workloads, e.g. latency=500,sleep=5000",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, help="rounds; cells are medians (default 3)")
    parser.add_argument(
        "--workload-repeats", type=parse_jobs_overrides, default={}, metavar="W=R,...",
        help="fewer rounds for single workloads, e.g. backlog=1 (each fills a 1M backlog)",
    )  # fmt: skip
    parser.add_argument("--backlog", type=int, help="finished jobs before the backlog drain")
    parser.add_argument("--rate", type=float, default=50.0, help="latency: jobs per second")
    parser.add_argument(
        "--quick", action="store_true",
        help="smoke test: jobs 2000, repeats 1, backlog 20000, timeout 300 s",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, help="seconds per run (default 1800)")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--raw", type=Path, help="append every run's JSON line to this file")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument("--pg-url", default="postgresql://root@127.0.0.1:5432/test")
    args = parser.parse_args(argv)
    quick = args.quick
    args.jobs = args.jobs or (2_000 if quick else 20_000)
    args.repeats = args.repeats or (1 if quick else 3)
    args.backlog = args.backlog if args.backlog is not None else (20_000 if quick else 1_000_000)
    args.timeout = args.timeout or (300.0 if quick else 1800.0)
    return args


def set_up_venvs(
    specs: list[SystemSpec], log: TextIO
) -> tuple[dict[str, str], dict[str, str], list[tuple[str, dict[str, str]]]]:
    """Each system's interpreter, the reason for each that has none, and the versions.

    A venv that cannot be had fails that system's runs (with the reason) rather than
    stopping the whole matrix or leaving the system out of the table.
    """
    pythons: dict[str, str] = {}
    broken: dict[str, str] = {}
    versions: list[tuple[str, dict[str, str]]] = []
    seen: set[str | None] = set()
    for spec in specs:
        try:
            pythons[spec.key] = ensure_venv(spec, log)
        except RuntimeError as error:
            broken[spec.key] = str(error)
            print(f"{spec.key}: {error}", file=log)
            continue
        if spec.venv in seen:
            continue
        seen.add(spec.venv)
        packages = tuple(dict.fromkeys(p for s in specs if s.venv == spec.venv for p in s.packages))
        label = "forerunner" if spec.venv is None else spec.venv
        versions.append((label, package_versions(pythons[spec.key], packages)))
    return pythons, broken, versions


def execute(
    runs: list[Run], pythons: dict[str, str], broken: dict[str, str], args: argparse.Namespace
) -> None:
    """Run the matrix in order, with a progress line per run and the raw JSON lines."""
    log = sys.stderr
    raw = args.raw.open("a") if args.raw else None
    try:
        for index, run in enumerate(runs, 1):
            where = f"[{index}/{len(runs)}] round {run.round} {run.spec.key} {run.workload.key}"
            if run.spec.key in broken:
                run.record = {"key": run.spec.key, "column": run.workload.key,
                              "round": run.round, "failed": broken[run.spec.key]}  # fmt: skip
            else:
                print(f"{where} (N={run.jobs:,}) ...", file=log, flush=True)
                run_one(run, pythons[run.spec.key], args)
            print(f"{where}: {summary(run)}", file=log, flush=True)
            if raw is not None:
                raw.write(json.dumps(run.record) + "\n")
                raw.flush()
    finally:
        if raw is not None:
            raw.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    log = sys.stderr
    chosen = pick(args.systems, [s.key for s in SYSTEMS], "systems")
    specs = [s for s in SYSTEMS if (s.key in chosen if chosen else s.adapter_path.is_file())]
    missing = [s.key for s in SYSTEMS if not s.adapter_path.is_file() and chosen is None]
    absent = [s.key for s in specs if not s.adapter_path.is_file()]
    if absent:
        raise SystemExit(f"no adapter in bench/systems for: {', '.join(absent)}")
    if missing:
        print(f"no adapter yet, left out: {', '.join(missing)}", file=log)
    workload_keys = pick(args.workloads, [w.key for w in WORKLOADS], "workloads")
    workloads = [w for w in WORKLOADS if workload_keys is None or w.key in workload_keys]
    jobs = {w.key: args.jobs for w in workloads}
    if "latency" in jobs:
        jobs["latency"] = max(1, args.jobs // LATENCY_SHARE)
    jobs.update({k: v for k, v in args.workload_jobs.items() if k in jobs})
    plan = Plan(jobs=jobs, backlog=args.backlog)

    facts: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(["bench/compare.py", *(sys.argv[1:] if argv is None else argv)]),
        "cpu": cpu_model(),
        "ram": memory_gib(),
        "load_before": load_average(),
        "redis": redis_version(args.redis_url),
        "postgres": postgres_version(args.pg_url),
        "git": git_revision(),
        "missing": missing,
    }
    pythons, broken, facts["versions"] = set_up_venvs(specs, log)

    # Interleaved: every system and workload once per round.
    runs = [
        Run(spec, workload, round_, plan.jobs_for(spec, workload)[0],
            plan.backlog_for(spec)[0] if workload.key == "backlog" else None)
        for round_ in range(1, args.repeats + 1)
        for spec in specs
        for workload in workloads
        if round_ <= args.workload_repeats.get(workload.key, args.repeats)
    ]  # fmt: skip
    execute(runs, pythons, broken, args)

    facts["load_after"] = load_average()
    facts["total"] = f"{(time.monotonic() - started) / 60:.1f} min"
    text = report(args, specs, runs, plan, facts)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"written: {args.out}", file=log)
    return 0


def summary(run: Run) -> str:
    """One progress line's worth of a finished run."""
    if run.failure:
        return f"FAILED: {run.failure}"
    record = run.record
    if run.workload.workload == "latency":
        text = f"p50 {record['p50_ms']} ms, p99 {record['p99_ms']} ms"
    else:
        text = f"{record['jobs_per_s']:,.0f} jobs/s, enqueue {record['enqueue_per_s']:,.0f}/s"
    return f"{text} ({record.get('wall_s')} s)"


if __name__ == "__main__":
    sys.exit(main())
