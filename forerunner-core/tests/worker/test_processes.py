"""The process pool: attempts of jobs run in spawned child processes, one at a time each.

Covers what an attempt reports (a JSON result; an exception with the child's traceback;
a non-JSON result; an async handler run in the child), progress (in order, on the
caller's loop thread, before the report), composed pipelines and plugin tasks, jobs
really running in parallel, timeouts and cancellation killing the child and replacing
it, a child that exits or is killed under a job, handlers refused because they cannot
be sent to a child, a task module that cannot be imported in a child failing
``start()``, and ``close()``: polite to a busy child, firm with one that does not
finish, idempotent, and leaving no process behind, not even when the parent is killed.
Every process here is real; whether one is gone is asked of the operating system.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from forerunner.compose import compose
from forerunner.errors import ConfigurationError, ValidationError
from forerunner.model import Job, JobState
from forerunner.tasks import word_count
from forerunner.worker.processes import PROCESS_DIED_ERROR, ProcessPool
from forerunner.worker.runner import TIMEOUT_ERROR

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Coroutine, Mapping
    from types import ModuleType

    from conftest import FakeSite

    from forerunner.handlers import Handler
    from forerunner.wire import ResultReport

#: Seconds any wait on a child may take before the test gives up on it: generous,
#: since it only bounds a failing test and two cores may be busy with other suites.
PATIENCE = 60.0


@pytest.fixture
def tasks(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The test handlers' module, importable by name here and in the children."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import _process_tasks

    return _process_tasks


def attempt_of(task: str, data: Any = None, *, timeout: float | None = None) -> Job:
    return Job(
        id=f"job-{task}", type=task, state=JobState.RUNNING, attempt=2, data=data, timeout=timeout
    )


@contextlib.asynccontextmanager
async def started(size: int, handlers: Mapping[str, Handler]) -> AsyncIterator[ProcessPool]:
    pool = ProcessPool(size, handlers)
    await pool.start()
    try:
        yield pool
    finally:
        await pool.close()


def run(scenario: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(scenario)


def ignore(value: Any) -> None:
    return None


def is_gone(pid: int) -> bool:
    """True when no process ``pid`` runs: none exists, or only its unreaped remains."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(FileNotFoundError):
        # The state follows the parenthesised command name, which may hold spaces.
        return stat.read_text().rpartition(")")[2].split()[0] == "Z"
    return True


async def wait_until_gone(pid: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE
    while not is_gone(pid):
        assert loop.time() < deadline, f"process {pid} still runs after {PATIENCE} s"
        await asyncio.sleep(0.05)


async def wait_until_reaped(pid: int) -> None:
    """Wait until a child of this process has exited and been reaped.

    Reaping goes through :mod:`multiprocessing`'s own handle on the child, so the pool
    sees the exit code too.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE
    while pid in {child.pid for child in multiprocessing.active_children()}:
        assert loop.time() < deadline, f"process {pid} still runs after {PATIENCE} s"
        await asyncio.sleep(0.05)


async def first_progress(pool: ProcessPool, job: Job) -> tuple[asyncio.Task[ResultReport], Any]:
    """Start ``job`` and return its task once it reported its first progress."""
    seen: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def progress(value: Any) -> None:
        if not seen.done():
            seen.set_result(value)

    task = asyncio.create_task(pool.run(job, progress))
    await asyncio.wait({seen, task}, timeout=PATIENCE, return_when="FIRST_COMPLETED")
    assert seen.done(), f"{job.type} reported no progress; it ended with {task}"
    return task, seen.result()


# What an attempt reports


def test_a_json_result_is_succeeded_and_computed_in_another_process(tasks: ModuleType) -> None:
    async def scenario() -> ResultReport:
        async with started(1, {"whoami": tasks.whoami}) as pool:
            return await pool.run(attempt_of("whoami", {"n": 1}), ignore)

    report = run(scenario())

    assert (report.id, report.attempt, report.outcome) == ("job-whoami", 2, "succeeded")
    assert report.result["job_id"] == "job-whoami"
    assert report.result["data"] == {"n": 1}
    assert report.result["pid"] != os.getpid()


def test_an_exception_is_failed_with_the_childs_traceback(tasks: ModuleType) -> None:
    async def scenario() -> ResultReport:
        async with started(1, {"explode": tasks.explode}) as pool:
            return await pool.run(attempt_of("explode", "x"), ignore)

    report = run(scenario())

    assert report.outcome == "failed"
    assert report.error is not None
    assert (report.error.type, report.error.message) == ("ValueError", "cannot use 'x'")
    assert report.error.traceback is not None
    assert "_process_tasks.py" in report.error.traceback
    assert "in _check" in report.error.traceback
    assert report.error.traceback.rstrip().endswith("ValueError: cannot use 'x'")


def test_a_result_that_is_not_json_is_failed(tasks: ModuleType) -> None:
    async def scenario() -> ResultReport:
        async with started(1, {"not_json": tasks.not_json}) as pool:
            return await pool.run(attempt_of("not_json"), ignore)

    report = run(scenario())

    assert report.outcome == "failed"
    assert report.error is not None
    assert report.error.type == "TypeError"
    assert "the handler of 'not_json' returned lock, which is not JSON" in report.error.message


def test_an_async_handler_runs_in_the_child_on_a_loop_of_its_own(tasks: ModuleType) -> None:
    async def scenario() -> ResultReport:
        async with started(1, {"whoami_async": tasks.whoami_async}) as pool:
            return await pool.run(attempt_of("whoami_async"), ignore)

    report = run(scenario())

    assert report.outcome == "succeeded"
    assert report.result["loop"] is True
    assert report.result["pid"] != os.getpid()


def test_progress_arrives_in_order_on_the_callers_loop_thread_before_the_report(
    tasks: ModuleType,
) -> None:
    # Given a handler that reports 0..199 and then returns
    received: list[tuple[Any, int]] = []

    def progress(value: Any) -> None:
        received.append((value, threading.get_ident()))

    async def scenario() -> tuple[ResultReport, int]:
        async with started(1, {"count": tasks.count_out_loud}) as pool:
            report = await pool.run(attempt_of("count", 200), progress)
            # Then, the moment run() returns, every value is in
            return report, len(received)

    report, count_at_return = run(scenario())

    assert report.result == "counted"
    assert count_at_return == 200
    assert [value for value, _ in received] == list(range(200))
    assert {thread for _, thread in received} == {threading.get_ident()}


def test_progress_that_is_not_json_is_dropped_and_the_job_goes_on(tasks: ModuleType) -> None:
    received: list[Any] = []

    async def scenario() -> ResultReport:
        async with started(1, {"odd": tasks.odd_progress}) as pool:
            return await pool.run(attempt_of("odd"), received.append)

    report = run(scenario())

    assert report.outcome == "succeeded"
    assert received == ["after"]


def test_a_composed_pipeline_and_a_plugin_task_run_in_the_child(tasks: ModuleType) -> None:
    # Given a pipeline of a marker and a plugin task name (resolved in the child), and a
    # plugin task's function
    handlers: dict[str, Handler] = {
        "pipeline": compose(["progress:started", "ping"]),
        "word_count": word_count,
    }
    progress: list[Any] = []

    async def scenario() -> list[ResultReport]:
        async with started(1, handlers) as pool:
            return [
                await pool.run(attempt_of("pipeline", {"x": 1}), progress.append),
                await pool.run(attempt_of("word_count", "to be or not to be"), ignore),
            ]

    piped, counted = run(scenario())

    assert piped.result == {"pong": {"x": 1}, "job_id": "job-pipeline"}
    assert progress == [{"step": 0, "message": "started"}]
    assert counted.result["words"] == 6


def test_a_callable_object_whose_state_pickles_is_a_handler(tasks: ModuleType) -> None:
    async def scenario() -> ResultReport:
        async with started(1, {"add": tasks.Counter(40)}) as pool:
            return await pool.run(attempt_of("add", 2), ignore)

    assert run(scenario()).result == 42


def test_a_job_of_a_task_the_pool_does_not_have_is_failed_naming_it(tasks: ModuleType) -> None:
    async def scenario() -> ResultReport:
        async with started(1, {"whoami": tasks.whoami}) as pool:
            return await pool.run(attempt_of("nope"), ignore)

    report = run(scenario())

    assert report.outcome == "failed"
    assert report.error is not None
    assert "'nope'" in report.error.message


# Parallelism


def test_the_processes_run_jobs_in_parallel(tasks: ModuleType, tmp_path: Path) -> None:
    # Given two processes, and two jobs that can only return while both run at once
    rendezvous = {"dir": str(tmp_path), "parties": 2, "patience": PATIENCE}

    async def scenario() -> list[ResultReport]:
        async with started(2, {"meet": tasks.rendezvous}) as pool:
            return await asyncio.gather(
                pool.run(attempt_of("meet", rendezvous), ignore),
                pool.run(attempt_of("meet", rendezvous), ignore),
            )

    # When both are run
    reports = run(scenario())

    # Then both met, each in a process of its own
    assert [report.outcome for report in reports] == ["succeeded", "succeeded"]
    assert len({report.result["pid"] for report in reports}) == 2


def test_calls_beyond_the_pool_size_wait_for_a_free_process(tasks: ModuleType) -> None:
    async def scenario() -> list[ResultReport]:
        async with started(1, {"whoami": tasks.whoami}) as pool:
            return await asyncio.gather(
                *(pool.run(attempt_of("whoami", n), ignore) for n in range(4))
            )

    reports = run(scenario())

    assert [report.result["data"] for report in reports] == [0, 1, 2, 3]
    assert len({report.result["pid"] for report in reports}) == 1


# Stopping an attempt


def test_a_job_past_its_timeout_has_its_process_killed_and_the_next_job_runs(
    tasks: ModuleType,
) -> None:
    # Given one process and a job that spins forever, with a timeout
    handlers = {"spin": tasks.spin, "whoami": tasks.whoami}

    async def scenario() -> tuple[ResultReport, Any, ResultReport]:
        async with started(1, handlers) as pool:
            spinning, announced = await first_progress(pool, attempt_of("spin", timeout=2.0))
            # When the timeout passes
            timed_out = await spinning
            # Then the next job runs, in a fresh process
            after = await pool.run(attempt_of("whoami"), ignore)
            return timed_out, announced["pid"], after

    timed_out, spun_in, after = run(scenario())

    assert timed_out.outcome == "failed"
    assert timed_out.error is not None
    assert timed_out.error.type == TIMEOUT_ERROR
    assert timed_out.error.message == "job 'job-spin' ran longer than its timeout of 2.0 s"
    assert is_gone(spun_in)
    assert after.outcome == "succeeded"
    assert after.result["pid"] != spun_in


def test_cancelling_the_caller_kills_the_process_and_replaces_it(tasks: ModuleType) -> None:
    handlers = {"spin": tasks.spin, "whoami": tasks.whoami}

    async def scenario() -> tuple[int, ResultReport]:
        async with started(1, handlers) as pool:
            # Given a job spinning in the only process
            spinning, announced = await first_progress(pool, attempt_of("spin"))
            # When its caller is cancelled
            spinning.cancel()
            with pytest.raises(asyncio.CancelledError):
                await spinning
            # Then its process is killed, and another runs the next job
            await wait_until_gone(announced["pid"])
            return announced["pid"], await pool.run(attempt_of("whoami"), ignore)

    spun_in, after = run(scenario())

    assert after.outcome == "succeeded"
    assert after.result["pid"] != spun_in


def test_a_process_that_exits_fails_its_job_naming_the_exit_code(tasks: ModuleType) -> None:
    handlers = {"exit": tasks.exit_with, "whoami": tasks.whoami}

    async def scenario() -> list[ResultReport]:
        async with started(1, handlers) as pool:
            return [
                await pool.run(attempt_of("exit", 3), ignore),
                await pool.run(attempt_of("whoami"), ignore),
            ]

    died, after = run(scenario())

    assert died.outcome == "failed"
    assert died.error is not None
    assert died.error.type == PROCESS_DIED_ERROR
    assert "exited with code 3" in died.error.message
    assert "'job-exit'" in died.error.message
    assert after.outcome == "succeeded"


def test_a_process_killed_by_a_signal_fails_its_job_naming_the_signal(tasks: ModuleType) -> None:
    handlers = {"die": tasks.kill_myself, "whoami": tasks.whoami}

    async def scenario() -> list[ResultReport]:
        async with started(1, handlers) as pool:
            return [
                await pool.run(attempt_of("die"), ignore),
                await pool.run(attempt_of("whoami"), ignore),
            ]

    died, after = run(scenario())

    assert died.error is not None
    assert died.error.type == PROCESS_DIED_ERROR
    assert "killed by SIGKILL" in died.error.message
    assert after.outcome == "succeeded"


def test_a_process_that_died_while_idle_is_replaced_before_the_next_job(
    tasks: ModuleType,
) -> None:
    async def scenario() -> tuple[int, ResultReport]:
        async with started(1, {"whoami": tasks.whoami}) as pool:
            # Given the only process, killed from outside while it waits for work
            first = await pool.run(attempt_of("whoami"), ignore)
            os.kill(first.result["pid"], signal.SIGKILL)
            await wait_until_reaped(first.result["pid"])
            # When the next job comes, it runs in a new process
            return first.result["pid"], await pool.run(attempt_of("whoami"), ignore)

    killed, after = run(scenario())

    assert after.outcome == "succeeded"
    assert after.result["pid"] != killed


def test_ctrl_c_in_a_terminal_is_left_to_the_worker(tasks: ModuleType) -> None:
    async def scenario() -> list[ResultReport]:
        async with started(1, {"whoami": tasks.whoami}) as pool:
            # Given an idle process, sent SIGINT as a terminal sends it to the process group
            first = await pool.run(attempt_of("whoami"), ignore)
            os.kill(first.result["pid"], signal.SIGINT)
            # When the next job comes
            return [first, await pool.run(attempt_of("whoami"), ignore)]

    first, second = run(scenario())

    # Then the same process runs it: only the worker decides when its children stop
    assert second.outcome == "succeeded", second.error
    assert second.result["pid"] == first.result["pid"]


# Handlers a process cannot receive


def _closure() -> Handler:
    prefix = "p"

    def handler(job_id: str, data: Any) -> Any:
        return prefix + data

    return handler


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda tasks: tasks.not_by_reference, id="lambda"),
        pytest.param(lambda tasks: _closure(), id="closure"),
        pytest.param(lambda tasks: tasks.Guarded().handle, id="bound-method-of-unpicklable"),
    ],
)
def test_a_handler_that_cannot_be_sent_to_a_process_is_refused_naming_the_task(
    tasks: ModuleType, make: Any
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        ProcessPool(2, {"whoami": tasks.whoami, "troublesome": make(tasks)})

    assert "'troublesome'" in refused.value.message
    assert "module level" in refused.value.message


@pytest.mark.parametrize("size", [0, -1])
def test_a_pool_needs_at_least_one_process(tasks: ModuleType, size: int) -> None:
    with pytest.raises(ValidationError) as refused:
        ProcessPool(size, {"whoami": tasks.whoami})

    assert refused.value.field == "processes"


def test_a_task_module_that_fails_to_import_in_a_child_fails_start(
    fake_site: FakeSite, tmp_path: Path
) -> None:
    # Given a task module that imports here but raises in any child process, and notes
    # the pid of each child that tried
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    fake_site.add_module(
        "needs_a_gpu",
        f"""
        import multiprocessing, os, pathlib

        if multiprocessing.parent_process() is not None:
            pathlib.Path({str(attempts)!r}, str(os.getpid())).touch()
            raise RuntimeError("no GPU in this process")

        def handler(job_id, data):
            return data
        """,
    )
    fake_site.activate()
    import needs_a_gpu

    pool = ProcessPool(2, {"infer": needs_a_gpu.handler})

    # When the pool starts
    with pytest.raises(ConfigurationError) as failed:
        run(pool.start())

    # Then it fails with the child's error, and leaves no child running
    assert "RuntimeError: no GPU in this process" in failed.value.message
    assert "needs_a_gpu" in failed.value.message
    tried = [int(path.name) for path in attempts.iterdir()]
    assert len(tried) == 2
    assert all(is_gone(pid) for pid in tried)


# Closing


def test_close_is_idempotent_and_leaves_no_process_alive(tasks: ModuleType, tmp_path: Path) -> None:
    rendezvous = {"dir": str(tmp_path), "parties": 2, "patience": PATIENCE}

    async def scenario() -> list[int]:
        pool = ProcessPool(2, {"meet": tasks.rendezvous})
        await pool.start()
        # Given both processes known by their pids
        reports = await asyncio.gather(
            pool.run(attempt_of("meet", rendezvous), ignore),
            pool.run(attempt_of("meet", rendezvous), ignore),
        )
        # When the pool is closed, twice at once and once more after
        await asyncio.gather(pool.close(), pool.close())
        await pool.close()
        return [report.result["pid"] for report in reports]

    pids = run(scenario())

    # Then neither process is left
    assert len(set(pids)) == 2
    assert [is_gone(pid) for pid in pids] == [True, True]


def test_close_lets_a_busy_process_finish_its_job(tasks: ModuleType, tmp_path: Path) -> None:
    async def scenario() -> ResultReport:
        pool = ProcessPool(1, {"meet": tasks.rendezvous})
        await pool.start()
        # Given a job that is waiting for a second party
        meeting = {"dir": str(tmp_path), "parties": 2, "patience": PATIENCE}
        job = asyncio.create_task(pool.run(attempt_of("meet", meeting), ignore))
        while not any(tmp_path.iterdir()):
            await asyncio.sleep(0.01)
        # When the pool is closed
        closing = asyncio.create_task(pool.close(timeout=PATIENCE))
        done, _ = await asyncio.wait({closing}, timeout=0.5)
        # Then closing waits for the busy process, whose job can still end and report
        assert not done, "close() returned while a process was busy"
        (tmp_path / "second-party").touch()
        report = await job
        await closing
        return report

    assert run(scenario()).outcome == "succeeded"


def test_close_kills_a_process_that_does_not_finish_in_time(tasks: ModuleType) -> None:
    async def scenario() -> tuple[int, ResultReport]:
        pool = ProcessPool(1, {"spin": tasks.spin})
        await pool.start()
        spinning, announced = await first_progress(pool, attempt_of("spin"))
        await pool.close(timeout=0.2)
        return announced["pid"], await spinning

    pid, report = run(scenario())

    assert is_gone(pid)
    assert report.error is not None
    assert report.error.type == PROCESS_DIED_ERROR
    assert "killed by SIGKILL" in report.error.message


def test_a_job_waiting_for_a_process_when_the_pool_closes_is_failed_not_left_waiting(
    tasks: ModuleType,
) -> None:
    async def scenario() -> list[ResultReport]:
        pool = ProcessPool(1, {"spin": tasks.spin, "whoami": tasks.whoami})
        await pool.start()
        # Given the only process busy for good, and a second job waiting for it
        spinning, _ = await first_progress(pool, attempt_of("spin"))
        waiting = asyncio.create_task(pool.run(attempt_of("whoami"), ignore))
        await asyncio.sleep(0)
        # When the pool is closed
        await pool.close(timeout=0.2)
        return [await spinning, await waiting]

    spun, waited = run(scenario())

    # Then both jobs end, and the waiting one says why it did not run
    assert spun.error is not None
    assert spun.error.type == PROCESS_DIED_ERROR
    assert waited.error is not None
    assert "closed" in waited.error.message


def test_children_end_when_the_parent_process_is_killed(tasks: ModuleType) -> None:
    # Given a separate process whose pool spins on a job, and the pid of that child
    parent_script = textwrap.dedent(
        """
        import asyncio, sys
        import _process_tasks
        from forerunner.model import Job, JobState
        from forerunner.worker.processes import ProcessPool

        def announce(value):
            print(value["pid"], flush=True)

        async def main():
            pool = ProcessPool(1, {"spin": _process_tasks.spin})
            await pool.start()
            job = Job(id="j", type="spin", state=JobState.RUNNING, attempt=1)
            await pool.run(job, announce)

        if __name__ == "__main__":
            asyncio.run(main())
        """
    )
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join([str(Path(tasks.__file__).parent), *sys.path])
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_script],
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
    finally:
        # When the parent is killed without a chance to clean up
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()

    # Then its child does not spin on as an orphan
    try:
        run(wait_until_gone(child))
    finally:
        if not is_gone(child):
            os.kill(child, signal.SIGKILL)
