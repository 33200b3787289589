"""Composed tasks: several steps run in series on one worker as one job.

As in the seed, ``compose(["fetch", clean, "progress:fetched", "word_count"])`` is a
handler whose steps are task names or callables; each step's result is the next step's
``data``, and a ``"progress:<message>"`` string reports progress instead of running
anything. Task names are looked up when the step runs, not when the pipeline is built,
so a module can compose tasks that plugins register later, and a reinstalled plugin is
picked up without rebuilding the pipeline.

The composed handler is always ``async def``: whether a step is async can only be
known once a name is resolved, so the pipeline cannot choose its own kind up front.
Async steps are awaited on the worker's event loop; sync steps run in a thread through
:func:`asyncio.to_thread` (which carries the job context along, so they can report
progress), so a blocking step never stalls the loop that runs other jobs.

The handler is a :class:`Pipeline` object rather than a closure, so that it pickles by
reference like a module-level function whenever its steps do (task names, functions
defined at module level): a worker running tasks in child processes has to send every
handler to them.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import attrs

from forerunner.context import report_progress
from forerunner.errors import StepFailed, ValidationError

__all__ = ["PROGRESS_PREFIX", "Pipeline", "compose"]

#: A step string starting with this reports the rest of the string as progress.
PROGRESS_PREFIX: Final = "progress:"

Resolver = Callable[[str], Callable[..., Any]]
Composed = Callable[[str, Any], Awaitable[Any]]


def compose(
    steps: Sequence[str | Callable[..., Any]],
    *,
    name: str | None = None,
    resolver: Resolver | None = None,
) -> Composed:
    """Return a handler that runs ``steps`` in series, each on the previous one's result.

    :param name: how the pipeline is named in errors and logs; by default its steps.
    :param resolver: turns a task name into a handler when the step runs; by default the
        process's plugin registry (:meth:`forerunner.Registry.task`).

    The first step gets a deep copy of the job's data, so no step can change the
    caller's object. The first step that raises fails the whole job with
    :class:`~forerunner.errors.StepFailed` naming its index and name.
    """
    plan = _validate(steps)
    label = name or "compose(" + ", ".join(step_name for _, step_name in plan) + ")"
    return Pipeline(plan=tuple(plan), label=label, resolver=resolver)


@attrs.frozen(kw_only=True, repr=False)
class Pipeline:
    """The handler :func:`compose` returns; build it with :func:`compose`, which validates.

    Named like the function it replaces (``__name__`` and ``repr`` give the label), so
    logs and error messages read the same as for a plain handler.
    """

    #: Each step with the name it is shown under in errors.
    plan: tuple[tuple[str | Callable[..., Any], str], ...]
    #: How the pipeline is named in errors and logs.
    label: str
    #: Turns a task name into a handler; ``None`` for the plugin registry.
    resolver: Resolver | None = None

    @property
    def __name__(self) -> str:
        return self.label

    def __repr__(self) -> str:
        return self.label

    async def __call__(self, job_id: str, data: Any) -> Any:
        value = copy.deepcopy(data)
        for index, (step, step_name) in enumerate(self.plan):
            if isinstance(step, str) and step.startswith(PROGRESS_PREFIX):
                report_progress({"step": index, "message": step[len(PROGRESS_PREFIX) :]})
                continue
            try:
                handler = _resolve(step, self.resolver)
                value = await _call(handler, job_id, value)
            except Exception as error:
                raise StepFailed(
                    f"step {index} ({step_name}) of {self.label} failed: "
                    f"{type(error).__name__}: {error}",
                    step=index,
                    step_name=step_name,
                ) from error
        return value


def _validate(steps: object) -> list[tuple[str | Callable[..., Any], str]]:
    if isinstance(steps, str | bytes) or not isinstance(steps, Sequence):
        raise ValidationError(
            f"compose takes a list of steps, got {type(steps).__name__}", field="steps"
        )
    if not steps:
        raise ValidationError("compose needs at least one step; got an empty list", field="steps")
    plan: list[tuple[str | Callable[..., Any], str]] = []
    for index, step in enumerate(steps):
        if isinstance(step, str):
            if not step:
                raise ValidationError(
                    f"step {index} is an empty string; give a task name", field=f"steps.{index}"
                )
            plan.append((step, step))
        elif callable(step):
            plan.append((step, getattr(step, "__qualname__", None) or repr(step)))
        else:
            raise ValidationError(
                f"step {index} is {type(step).__name__} {step!r}; a step is a task name, "
                f"a '{PROGRESS_PREFIX}<message>' marker or a handler callable",
                field=f"steps.{index}",
            )
    return plan


def _resolve(step: str | Callable[..., Any], resolver: Resolver | None) -> Callable[..., Any]:
    if not isinstance(step, str):
        return step
    if resolver is not None:
        return resolver(step)
    from forerunner.plugins import get_registry

    return get_registry().task(step)


async def _call(handler: Callable[..., Any], job_id: str, data: Any) -> Any:
    if inspect.iscoroutinefunction(handler):
        return await handler(job_id, data)
    result = await asyncio.to_thread(handler, job_id, data)
    if inspect.isawaitable(result):
        # A callable object with an async __call__ is not seen as a coroutine function.
        return await result
    return result
