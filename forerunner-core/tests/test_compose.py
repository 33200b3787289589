"""compose: steps in series on one worker, as the seed's composition.

Covers ordering (each step's output is the next one's input), ``"progress:"`` markers,
late binding of task names (resolved when the step runs, through a resolver or the
plugin registry), async and sync steps mixed, the first failure failing the job with
``StepFailed`` naming the step and chaining the cause, the caller's data never being
mutated, the validation done when composing, and pickling: a pipeline of task names and
module-level functions pickles, so a worker can send it to a child process.
"""

from __future__ import annotations

import asyncio
import pickle
import threading
from typing import Any

import pytest

from forerunner.compose import compose
from forerunner.context import JobContext, running
from forerunner.errors import StepFailed, UnknownBackendError, ValidationError
from forerunner.tasks import word_count
from forerunner.worker.runner import is_async


def add(suffix: str) -> Any:
    def step(job_id: str, data: list[str]) -> list[str]:
        return [*data, suffix]

    step.__qualname__ = f"add_{suffix}"
    return step


def run(handler: Any, data: Any, job_id: str = "job-1") -> Any:
    return asyncio.run(handler(job_id, data))


def test_steps_run_in_order_each_on_the_previous_result() -> None:
    handler = compose([add("a"), add("b"), add("c")])
    assert run(handler, []) == ["a", "b", "c"]


def test_every_step_receives_the_job_id() -> None:
    seen: list[str] = []

    def remember(job_id: str, data: Any) -> Any:
        seen.append(job_id)
        return data

    run(compose([remember, remember]), None, job_id="job-42")
    assert seen == ["job-42", "job-42"]


def test_progress_markers_report_progress_instead_of_running() -> None:
    # Given a pipeline with markers, run inside a job
    reported: list[Any] = []
    handler = compose(["progress:starting", add("a"), "progress:half way", add("b")])
    context = JobContext(job_id="job-1", attempt=1, report_progress=reported.append)

    # When it runs
    async def main() -> Any:
        with running(context):
            return await handler("job-1", [])

    result = asyncio.run(main())

    # Then the markers became progress, indexed by their position, and ran nothing
    assert result == ["a", "b"]
    assert reported == [
        {"step": 0, "message": "starting"},
        {"step": 2, "message": "half way"},
    ]


def test_progress_markers_outside_a_job_are_ignored() -> None:
    assert run(compose(["progress:hello", add("a")]), []) == ["a"]


def test_task_names_are_resolved_when_the_step_runs_not_when_composed() -> None:
    # Given a pipeline naming a task nobody has registered yet
    registry: dict[str, Any] = {}
    handler = compose(["later", add("z")], resolver=registry.__getitem__)

    # When the task is registered after composing
    registry["later"] = add("late")

    # Then the pipeline runs it
    assert run(handler, []) == ["late", "z"]


def test_task_names_default_to_the_plugin_registry() -> None:
    handler = compose(["ping", "key_map"])
    with pytest.raises(StepFailed) as failure:
        # ping's output has no "map" field, so key_map refuses it: both were resolved.
        run(handler, {"x": 1})
    assert failure.value.step == 1
    assert failure.value.step_name == "key_map"
    assert isinstance(failure.value.__cause__, ValidationError)
    assert run(compose(["ping"]), {"x": 1}) == {"pong": {"x": 1}, "job_id": "job-1"}


def test_an_unknown_task_name_fails_the_step_that_names_it() -> None:
    handler = compose([add("a"), "no-such-task"])
    with pytest.raises(StepFailed, match=r"step 1 \(no-such-task\)") as failure:
        run(handler, [])
    assert isinstance(failure.value.__cause__, UnknownBackendError)


def test_the_first_failure_fails_the_job_naming_the_step_and_chaining_the_cause() -> None:
    ran: list[str] = []

    def explode(job_id: str, data: Any) -> Any:
        raise KeyError("missing")

    def never(job_id: str, data: Any) -> Any:
        ran.append("never")
        return data

    handler = compose([add("a"), explode, never], name="pipeline")
    with pytest.raises(StepFailed) as failure:
        run(handler, [])
    error = failure.value
    assert (error.step, error.step_name) == (1, explode.__qualname__)
    assert "step 1" in error.message
    assert "pipeline" in error.message
    assert "KeyError" in error.message
    assert isinstance(error.__cause__, KeyError)
    assert ran == []


def test_the_callers_data_is_never_mutated() -> None:
    def mutate(job_id: str, data: dict[str, Any]) -> dict[str, Any]:
        data["items"].append("added")
        data["new"] = True
        return data

    original = {"items": [1, 2]}
    result = run(compose([mutate]), original)
    assert original == {"items": [1, 2]}
    assert result == {"items": [1, 2, "added"], "new": True}


def test_async_and_sync_steps_mix() -> None:
    async def double(job_id: str, data: int) -> int:
        await asyncio.sleep(0)
        return data * 2

    def increment(job_id: str, data: int) -> int:
        return data + 1

    class AsyncCallable:
        async def __call__(self, job_id: str, data: int) -> int:
            return data * 10

    assert run(compose([double, increment, AsyncCallable(), double]), 1) == 60


def test_sync_steps_run_off_the_event_loop_thread() -> None:
    threads: list[int] = []

    def where(job_id: str, data: Any) -> Any:
        threads.append(threading.get_ident())
        return data

    async def main() -> None:
        await compose([where])("job-1", None)
        threads.append(threading.get_ident())

    asyncio.run(main())
    assert threads[0] != threads[1]


def test_the_composed_handler_is_named() -> None:
    assert compose([add("a"), "ping"]).__name__ == "compose(add_a, ping)"
    assert compose(["ping"], name="nightly").__name__ == "nightly"


@pytest.mark.parametrize(
    ("steps", "field"),
    [
        ([], "steps"),
        ("ping", "steps"),
        (None, "steps"),
        (["ping", 3], "steps.1"),
        ([""], "steps.0"),
    ],
)
def test_bad_steps_are_refused_when_composing(steps: Any, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        compose(steps)
    assert refused.value.field == field


def test_a_pipeline_of_task_names_and_module_level_functions_pickles() -> None:
    # Given a pipeline of a marker, a module-level function and a task name
    handler = compose(["progress:counting", word_count, "ping"], name="count")

    # When it makes the round trip through pickle
    copied = pickle.loads(pickle.dumps(handler))

    # Then the copy is named as the original and runs its steps, markers included
    reported: list[Any] = []
    context = JobContext(job_id="job-1", attempt=1, report_progress=reported.append)

    async def main() -> Any:
        with running(context):
            return await copied("job-1", "a b a")

    assert copied.__name__ == "count"
    assert asyncio.run(main()) == {
        "pong": {"words": 3, "unique": 2, "counts": {"a": 2, "b": 1}},
        "job_id": "job-1",
    }
    assert reported == [{"step": 0, "message": "counting"}]


def test_a_pipeline_is_an_async_handler() -> None:
    assert is_async(compose(["ping"]))


def test_a_pipeline_with_a_step_defined_in_a_function_does_not_pickle() -> None:
    handler = compose([add("a")])
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(handler)
