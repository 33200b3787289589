"""The HTTP face of the manager: a Starlette app over :class:`ManagerService`.

Request bodies are decoded and validated by the :mod:`forerunner.wire` Structs in one
pass, so a 422 names the field msgspec found at fault. The store and queue block, so
every call into the service runs in the thread pool; the event loop only waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from typing import TYPE_CHECKING, Any, Final, TypeVar

import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from forerunner.errors import (
    BackendError,
    ForerunnerError,
    InvalidTransition,
    JobNotFound,
    ValidationError,
)
from forerunner.model import JobState
from forerunner.wire import (
    MAX_BATCH,
    MAX_WAIT,
    BatchSubmit,
    BatchSubmitResponse,
    ErrorBody,
    ErrorDetail,
    JobList,
    JobResponse,
    JobSpec,
    PollRequest,
    PollResponse,
    SubmitResponse,
    WaitResponse,
    job_to_wire,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from starlette.requests import Request

    from forerunner.manager.service import ManagerService
    from forerunner.model import Job

__all__ = ["create_app", "openapi_document"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Longest ``/wait``, in seconds.
MAX_JOB_WAIT: Final = 60.0
#: How often a waiter looks at the store for changes made by other managers.
WAIT_POLL: Final = 0.2
#: Longest blocking queue pop: how soon a long poll notices shutdown or a gone client.
POP_SLICE: Final = 1.0
#: Seconds between two reaper steps.
REAP_EVERY: Final = 0.5
_STATUS: Final = {
    "malformed_json": 400,
    "validation_error": 422,
    "not_found": 404,
    "invalid_transition": 409,
    "unavailable": 503,
}


_encode: Final = msgspec.json.Encoder().encode


class _HTTPError(Exception):
    """An answer that is not a success; raised inside a handler, rendered by :func:`_guard`."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.detail = ErrorDetail(code=code, message=message, field=field)


def _json(body: msgspec.Struct | dict[str, Any], status: int = 200) -> Response:
    return Response(msgspec.json.encode(body), status_code=status, media_type="application/json")


def _encode_poll(jobs: list[Job], abandon: list[str], lease: float) -> bytes:
    return _encode(
        PollResponse(jobs=[job_to_wire(job) for job in jobs], abandon=abandon, lease_seconds=lease)
    )


def _error_response(detail: ErrorDetail) -> Response:
    return _json(ErrorBody(error=detail), _STATUS[detail.code])


def _decode(raw: bytes, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as error:
        # msgspec checks the shape while parsing, so a truncated body can fail validation
        # first; it is still malformed JSON, the more useful thing to say.
        _require_json(raw)
        raise _HTTPError("validation_error", str(error), _field_of(str(error))) from error
    except msgspec.DecodeError as error:
        raise _HTTPError("malformed_json", f"the body is not valid JSON: {error}") from error


def _require_json(raw: bytes) -> None:
    try:
        msgspec.json.decode(raw)
    except msgspec.DecodeError as error:
        raise _HTTPError("malformed_json", f"the body is not valid JSON: {error}") from error


def _field_of(message: str) -> str:
    """The ``$.path`` msgspec's message names, extended by a missing or unknown field."""
    head, at, path = message.rpartition(" - at `")
    base = path.rstrip("`") if at else "$"
    text = head if at else message
    for marker in ("missing required field `", "unknown field `"):
        if marker in text:
            name = text.split(marker, 1)[1].split("`", 1)[0]
            return f"{base}.{name}"
    return base


def _query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise _HTTPError(
            "validation_error", f"{name} must be an integer from {low} to {high}, got {raw!r}", name
        )
    return value


def _query_float(request: Request, name: str, default: float, low: float, high: float) -> float:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not low <= value <= high:
        raise _HTTPError(
            "validation_error",
            f"{name} must be a number from {low:g} to {high:g}, got {raw!r}",
            name,
        )
    return value


def _guard(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Render the errors a handler raises as :class:`ErrorBody` answers."""

    async def endpoint(request: Request) -> Response:
        try:
            response = await handler(request)
        except _HTTPError as error:
            return _error_response(error.detail)
        except ValidationError as error:
            return _error_response(ErrorDetail("validation_error", error.message, error.field))
        except JobNotFound as error:
            return _error_response(ErrorDetail("not_found", error.message))
        except InvalidTransition as error:
            return _error_response(ErrorDetail("invalid_transition", error.message))
        except BackendError as error:
            logger.warning("backend failed: %s", error, extra={"action": "backend_error"})
            return _error_response(ErrorDetail("unavailable", error.message))
        return response

    return endpoint


class _Api:
    """The endpoints, each a method over one service."""

    def __init__(self, service: ManagerService) -> None:
        self.service = service
        self.document = msgspec.json.encode(openapi_document())
        #: Worker id -> when it last said it is stopping (monotonic); its long polls
        #: opened before then end at the next pop slice.
        self.stopping: dict[str, float] = {}

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await run_in_threadpool(fn, *args)

    async def submit(self, request: Request) -> Response:
        spec = _decode(await request.body(), JobSpec)
        [(job, created)] = await self.call(self.service.submit, [spec])
        body = SubmitResponse(job=job_to_wire(job), created=created)
        return _json(body, 201 if created else 200)

    async def submit_batch(self, request: Request) -> Response:
        batch = _decode(await request.body(), BatchSubmit)
        results = await run_in_threadpool(
            functools.partial(self.service.submit, batch.jobs, batch=True)
        )
        return _json(
            BatchSubmitResponse(
                jobs=[job_to_wire(job) for job, _ in results],
                created=[created for _, created in results],
            )
        )

    async def get_job(self, request: Request) -> Response:
        job = await self.call(self.service.get, request.path_params["job_id"])
        return _json(JobResponse(job=job_to_wire(job)))

    async def list_jobs(self, request: Request) -> Response:
        raw_state = request.query_params.get("state")
        state: JobState | None = None
        if raw_state is not None:
            try:
                state = JobState(raw_state)
            except ValueError:
                known = ", ".join(s.value for s in JobState)
                raise _HTTPError(
                    "validation_error", f"state must be one of {known}, got {raw_state!r}", "state"
                ) from None
        limit = _query_int(request, "limit", 100, 1, MAX_BATCH)
        jobs, after = await self.call(
            self.service.list_jobs,
            state,
            request.query_params.get("type"),
            limit,
            request.query_params.get("before"),
        )
        return _json(JobList(jobs=[job_to_wire(job) for job in jobs], next=after))

    async def cancel(self, request: Request) -> Response:
        job = await self.call(self.service.cancel, request.path_params["job_id"])
        return _json(JobResponse(job=job_to_wire(job)))

    async def retry(self, request: Request) -> Response:
        job = await self.call(self.service.retry, request.path_params["job_id"])
        return _json(JobResponse(job=job_to_wire(job)))

    async def wait(self, request: Request) -> Response:
        job_id: str = request.path_params["job_id"]
        timeout = _query_float(request, "timeout", 30.0, 0.0, MAX_JOB_WAIT)
        deadline = time.monotonic() + timeout
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()

        def on_event(_: str, job: Job) -> None:
            if job.id == job_id:
                loop.call_soon_threadsafe(changed.set)

        stop = self.service.events.listen(on_event)
        try:
            while True:
                job = await self.call(self.service.get, job_id)
                left = deadline - time.monotonic()
                if job.state.terminal or left <= 0 or self.service.closing.is_set():
                    return _json(WaitResponse(job=job_to_wire(job), done=job.state.terminal))
                changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), min(WAIT_POLL, left))
        finally:
            stop()

    async def poll(self, request: Request) -> Response:
        body = _decode(await request.body(), PollRequest)
        opened = time.monotonic()
        if body.stopping:
            self._note_stopping(body.worker, opened)
        deadline = opened + body.wait
        # The reports and the first pop share one trip to the thread pool: a busy worker
        # polls hundreds of times a second, and each trip costs a thread hand-off.
        abandon, jobs = await self.call(self._settle_and_hand_out, body, min(POP_SLICE, body.wait))
        while not (
            jobs
            or deadline - time.monotonic() <= 0
            or body.capacity <= 0
            or not body.types
            or self.service.closing.is_set()
            or self.stopping.get(body.worker, -math.inf) >= opened
            or await request.is_disconnected()
        ):
            left = deadline - time.monotonic()
            jobs = await self.call(
                self.service.hand_out, body.worker, body.types, body.capacity, min(POP_SLICE, left)
            )
        return Response(
            _encode_poll(jobs, abandon, self.service.lease), media_type="application/json"
        )

    def _settle_and_hand_out(self, body: PollRequest, wait: float) -> tuple[list[str], list[Job]]:
        abandon = self.service.settle(body)
        jobs = self.service.hand_out(body.worker, body.types, body.capacity, wait)
        return abandon, jobs

    def _note_stopping(self, worker: str, when: float) -> None:
        """Remember that ``worker`` is stopping, forgetting notes no long poll can still see."""
        self.stopping[worker] = when
        stale = when - MAX_WAIT - POP_SLICE
        for other, noted in list(self.stopping.items()):
            if noted < stale:
                del self.stopping[other]

    async def healthz(self, _: Request) -> Response:
        # One queued job by id order: an index probe, where counts() would scan a large
        # store on every load balancer check.
        try:
            await self.call(self.service.store.queued, 1)
        except ForerunnerError as error:
            return _json({"status": "unavailable", "error": error.message}, 503)
        return _json({"status": "ok"})

    async def metrics(self, _: Request) -> Response:
        counts = await self.call(self.service.store.counts)
        lines = [
            "# HELP forerunner_jobs Jobs in the store by type and state.",
            "# TYPE forerunner_jobs gauge",
        ]
        for (job_type, state), count in sorted(counts.items()):
            label = job_type.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            lines.append(f'forerunner_jobs{{type="{label}",state="{state.value}"}} {count}')
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    async def openapi(self, _: Request) -> Response:
        return Response(self.document, media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(self, _: Starlette) -> AsyncIterator[None]:
        await self.call(self.service.rebuild)
        reaper = asyncio.create_task(_reap_forever(self.service))
        try:
            yield
        finally:
            self.service.closing.set()
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper


def create_app(service: ManagerService) -> Starlette:
    """The ASGI app serving ``/v1``, ``/healthz``, ``/metrics`` and ``/openapi.json``."""
    api = _Api(service)
    routes = [
        Route("/v1/jobs", _guard(api.submit), methods=["POST"]),
        Route("/v1/jobs", _guard(api.list_jobs), methods=["GET"]),
        Route("/v1/jobs/batch", _guard(api.submit_batch), methods=["POST"]),
        Route("/v1/jobs/{job_id}", _guard(api.get_job), methods=["GET"]),
        Route("/v1/jobs/{job_id}/cancel", _guard(api.cancel), methods=["POST"]),
        Route("/v1/jobs/{job_id}/retry", _guard(api.retry), methods=["POST"]),
        Route("/v1/jobs/{job_id}/wait", _guard(api.wait), methods=["GET"]),
        Route("/v1/workers/poll", _guard(api.poll), methods=["POST"]),
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/metrics", _guard(api.metrics), methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=api.lifespan)


async def _reap_forever(service: ManagerService) -> None:
    """Run reaper steps until cancelled; a failing step is logged and retried next time."""
    while True:
        try:
            await run_in_threadpool(service.reap)
        except Exception:
            logger.exception("reaper step failed", extra={"action": "reaper_error"})
        await asyncio.sleep(REAP_EVERY)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of ``/v1``, its schemas generated from the wire Structs."""
    structs = (
        JobSpec,
        BatchSubmit,
        SubmitResponse,
        BatchSubmitResponse,
        JobResponse,
        JobList,
        WaitResponse,
        PollRequest,
        PollResponse,
        ErrorBody,
    )
    _, components = msgspec.json.schema_components(
        structs, ref_template="#/components/schemas/{name}"
    )

    def ref(name: str) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{name}"}

    def body(name: str) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": ref(name)}}}

    def answer(name: str, description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": ref(name)}}}

    errors = {
        "400": answer("ErrorBody", "malformed JSON"),
        "404": answer("ErrorBody", "no such job"),
        "409": answer("ErrorBody", "the job's state does not allow this"),
        "422": answer("ErrorBody", "the input breaks a rule; field names it"),
        "503": answer("ErrorBody", "the store or queue is unavailable"),
    }
    job_id = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}

    def query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema}

    paths = {
        "/v1/jobs": {
            "post": {
                "summary": "Submit one job",
                "requestBody": body("JobSpec"),
                "responses": {
                    "201": answer("SubmitResponse", "created"),
                    "200": answer("SubmitResponse", "the idempotency key named an existing job"),
                    **errors,
                },
            },
            "get": {
                "summary": "List jobs, newest first",
                "parameters": [
                    query("state", {"type": "string", "enum": [s.value for s in JobState]}),
                    query("type", {"type": "string"}),
                    query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_BATCH}),
                    query("before", {"type": "string"}),
                ],
                "responses": {"200": answer("JobList", "a page of jobs"), **errors},
            },
        },
        "/v1/jobs/batch": {
            "post": {
                "summary": "Submit many jobs",
                "requestBody": body("BatchSubmit"),
                "responses": {"200": answer("BatchSubmitResponse", "stored"), **errors},
            }
        },
        "/v1/jobs/{job_id}": {
            "get": {
                "summary": "Get a job",
                "parameters": [job_id],
                "responses": {"200": answer("JobResponse", "the job"), **errors},
            }
        },
        "/v1/jobs/{job_id}/cancel": {
            "post": {
                "summary": "Cancel a job that has not finished",
                "parameters": [job_id],
                "responses": {"200": answer("JobResponse", "the cancelled job"), **errors},
            }
        },
        "/v1/jobs/{job_id}/retry": {
            "post": {
                "summary": "Queue a failed or cancelled job again",
                "parameters": [job_id],
                "responses": {"200": answer("JobResponse", "the queued job"), **errors},
            }
        },
        "/v1/jobs/{job_id}/wait": {
            "get": {
                "summary": "Wait until the job finishes or the timeout passes",
                "parameters": [
                    job_id,
                    query("timeout", {"type": "number", "minimum": 0, "maximum": MAX_JOB_WAIT}),
                ],
                "responses": {"200": answer("WaitResponse", "the job; done tells which"), **errors},
            }
        },
        "/v1/workers/poll": {
            "post": {
                "summary": "Report results and progress, renew leases, take new jobs",
                "requestBody": body("PollRequest"),
                "responses": {
                    "200": answer("PollResponse", "new jobs and ids to abandon"),
                    **errors,
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "forerunner manager", "version": "1"},
        "paths": paths,
        "components": {"schemas": components},
    }
