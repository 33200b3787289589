"""The HTTP face of the manager: a Starlette app over :class:`ManagerService`.

Request bodies are decoded and validated by the :mod:`forerunner.wire` Structs in one
pass, so a 422 names the field msgspec found at fault. The store and queue block, so
every call into the service runs in the thread pool; the event loop only waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.metadata
import logging
import math
import time
from typing import TYPE_CHECKING, Any, Final, TypeVar

import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from forerunner.errors import (
    BackendError,
    ForerunnerError,
    InvalidTransition,
    JobNotFound,
    ValidationError,
)
from forerunner.manager import dashboard as forerunner_dashboard
from forerunner.manager.history import BUCKET_SECONDS
from forerunner.manager.metrics import CONTENT_TYPE, Metrics
from forerunner.manager.service import utc_now
from forerunner.model import JobState
from forerunner.urls import mask_password
from forerunner.wire import (
    MAX_BATCH,
    MAX_WAIT,
    BatchSubmit,
    BatchSubmitResponse,
    BulkRetry,
    BulkRetryResponse,
    ErrorBody,
    ErrorDetail,
    JobList,
    JobResponse,
    JobSpec,
    OldestWaiting,
    Overview,
    PollRequest,
    PollResponse,
    Purge,
    PurgeResponse,
    QueueDepth,
    StateCount,
    SubmitResponse,
    Throughput,
    Timeline,
    TimelineEvent,
    WaitResponse,
    WorkerList,
    WorkerView,
    job_to_wire,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from starlette.requests import Request

    from forerunner.manager.service import ManagerService
    from forerunner.manager.workers import SeenWorker
    from forerunner.model import Job

__all__ = ["create_app", "openapi_document"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The installed forerunner-core, as the overview reports it.
VERSION: Final = importlib.metadata.version("forerunner-core")
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
    "read_only": 403,
    "cross_origin": 403,
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
        if request.method == "POST" and _from_another_site(request):
            return _error_response(
                ErrorDetail(
                    "cross_origin",
                    "this request came from a page of another site; the manager takes "
                    "changes only from its own dashboard and from clients that are not browsers",
                )
            )
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


def _from_another_site(request: Request) -> bool:
    """Whether a browser sent this on behalf of a page that is not the manager's own.

    The dashboard's actions are plain POSTs, and a page on any other site that an
    operator has open could send the same to a manager it can reach (a cross-site
    request forgery): browsers let a page POST anywhere, they only hide the answer.
    Browsers say where a request comes from, in ``Sec-Fetch-Site`` and ``Origin``;
    clients and workers are not browsers and send neither, so they are unaffected.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return origin.partition("://")[2] != request.headers.get("host")


class _Api:
    """The endpoints, each a method over one service."""

    def __init__(
        self,
        service: ManagerService,
        *,
        metrics: Metrics | None = None,
        read_only: bool = False,
        backends: tuple[str, str] | None = None,
    ) -> None:
        self.service = service
        self.read_only = read_only
        self.backends = backends or (_describe(service.store), _describe(service.queue))
        if metrics is None:
            metrics = Metrics(utc_now)
            metrics.bind(service)
        #: The series ``/metrics`` serves.
        self.prometheus = metrics
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
            request.query_params.get("type") or None,
            limit,
            request.query_params.get("before") or None,
            request.query_params.get("text") or None,
        )
        return _json(JobList(jobs=[job_to_wire(job) for job in jobs], next=after))

    async def cancel(self, request: Request) -> Response:
        self._check_writable("cancel a job")
        job = await self.call(self.service.cancel, request.path_params["job_id"])
        return _json(JobResponse(job=job_to_wire(job)))

    async def retry(self, request: Request) -> Response:
        self._check_writable("retry a job")
        job = await self.call(self.service.retry, request.path_params["job_id"])
        return _json(JobResponse(job=job_to_wire(job)))

    async def retry_many(self, request: Request) -> Response:
        self._check_writable("retry jobs")
        body = _decode(await request.body(), BulkRetry)
        jobs = await self.call(self.service.retry_many, JobState(body.state), body.type, body.limit)
        return _json(BulkRetryResponse(retried=len(jobs), ids=[job.id for job in jobs]))

    async def purge(self, request: Request) -> Response:
        self._check_writable("purge jobs")
        body = _decode(await request.body(), Purge)
        purged = await self.call(self.service.purge, body.older_than, body.limit)
        return _json(PurgeResponse(purged=purged))

    async def timeline(self, request: Request) -> Response:
        job, steps = await self.call(self.service.timeline, request.path_params["job_id"])
        events = [
            TimelineEvent(
                at=step.at,
                event=step.event,
                attempt=step.attempt,
                worker=step.worker,
                detail=step.detail,
            )
            for step in steps
        ]
        return _json(Timeline(job=job_to_wire(job), events=events))

    async def overview(self, _: Request) -> Response:
        snapshot = await self.call(self.service.overview)
        oldest = snapshot.oldest
        flow = snapshot.throughput
        return _json(
            Overview(
                counts=[
                    StateCount(type=kind, state=state, count=count)
                    for (kind, state), count in sorted(snapshot.counts.items())
                ],
                queue=[
                    QueueDepth(type=kind, depth=depth) for kind, depth in snapshot.queue.items()
                ],
                queue_total=snapshot.queue_total,
                oldest_waiting=None
                if oldest is None
                else OldestWaiting(
                    id=oldest.job.id,
                    type=oldest.job.type,
                    since=oldest.since,
                    age_seconds=oldest.age_seconds,
                ),
                throughput=Throughput(
                    bucket_seconds=BUCKET_SECONDS,
                    start=flow.start,
                    submitted=list(flow.submitted),
                    succeeded=list(flow.succeeded),
                    failed=list(flow.failed),
                ),
                workers=snapshot.workers,
                read_only=self.read_only,
                version=VERSION,
                store=self.backends[0],
                queue_url=self.backends[1],
            )
        )

    async def workers(self, _: Request) -> Response:
        seen = self.service.workers.snapshot()
        return _json(WorkerList(workers=[_worker_view(worker) for worker in seen]))

    def _check_writable(self, what: str) -> None:
        if self.read_only:
            raise _HTTPError(
                "read_only",
                f"this manager runs read-only (--read-only): it does not {what}; "
                "restart it without --read-only to change jobs",
            )

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
        return Response(await self.call(self.prometheus.render), media_type=CONTENT_TYPE)

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


def create_app(
    service: ManagerService,
    *,
    metrics: Metrics | None = None,
    read_only: bool = False,
    dashboard: bool = True,
    backends: tuple[str, str] | None = None,
) -> Starlette:
    """The ASGI app serving ``/v1``, ``/healthz``, ``/metrics``, ``/openapi.json`` and ``/``.

    ``read_only`` refuses every request that would change a job but a submission (403
    ``read_only``); ``dashboard`` serves the web dashboard at ``/``; ``backends`` are
    the store and queue URLs the overview shows, passwords masked.
    """
    api = _Api(service, metrics=metrics, read_only=read_only, backends=backends)
    routes: list[BaseRoute] = [
        Route("/v1/jobs", _guard(api.submit), methods=["POST"]),
        Route("/v1/jobs", _guard(api.list_jobs), methods=["GET"]),
        Route("/v1/jobs/batch", _guard(api.submit_batch), methods=["POST"]),
        Route("/v1/jobs/retry", _guard(api.retry_many), methods=["POST"]),
        Route("/v1/jobs/purge", _guard(api.purge), methods=["POST"]),
        Route("/v1/jobs/{job_id}", _guard(api.get_job), methods=["GET"]),
        Route("/v1/jobs/{job_id}/cancel", _guard(api.cancel), methods=["POST"]),
        Route("/v1/jobs/{job_id}/retry", _guard(api.retry), methods=["POST"]),
        Route("/v1/jobs/{job_id}/wait", _guard(api.wait), methods=["GET"]),
        Route("/v1/jobs/{job_id}/timeline", _guard(api.timeline), methods=["GET"]),
        Route("/v1/overview", _guard(api.overview), methods=["GET"]),
        Route("/v1/workers", _guard(api.workers), methods=["GET"]),
        Route("/v1/workers/poll", _guard(api.poll), methods=["POST"]),
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/metrics", _guard(api.metrics), methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
    ]
    if dashboard:
        routes += forerunner_dashboard.routes()
    return Starlette(routes=routes, lifespan=api.lifespan)


def _describe(backend: object) -> str:
    """A backend as the overview names it: its URL, password masked, or its class."""
    url = getattr(backend, "url", None)
    return mask_password(url) if isinstance(url, str) else type(backend).__name__


def _worker_view(worker: SeenWorker) -> WorkerView:
    return WorkerView(
        id=worker.id,
        types=list(worker.types),
        capacity=worker.capacity,
        running=list(worker.running),
        last_seen=worker.last_seen,
        seconds_since=worker.seconds_since,
        stopping=worker.stopping,
        host=worker.host,
        pid=worker.pid,
        concurrency=worker.concurrency,
    )


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
        Timeline,
        Overview,
        WorkerList,
        BulkRetry,
        BulkRetryResponse,
        Purge,
        PurgeResponse,
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
        "403": answer("ErrorBody", "the manager is read-only"),
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
                    query("text", {"type": "string"}),
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
        "/v1/jobs/{job_id}/timeline": {
            "get": {
                "summary": "A job and the steps of its life, oldest first",
                "parameters": [job_id],
                "responses": {"200": answer("Timeline", "the job and its steps"), **errors},
            }
        },
        "/v1/jobs/retry": {
            "post": {
                "summary": "Retry failed or cancelled jobs, of one type or all",
                "requestBody": body("BulkRetry"),
                "responses": {"200": answer("BulkRetryResponse", "the retried ids"), **errors},
            }
        },
        "/v1/jobs/purge": {
            "post": {
                "summary": "Delete jobs that finished long enough ago",
                "requestBody": body("Purge"),
                "responses": {"200": answer("PurgeResponse", "how many were deleted"), **errors},
            }
        },
        "/v1/overview": {
            "get": {
                "summary": "Counts, queue depths, oldest waiting job, the last hour",
                "responses": {"200": answer("Overview", "the overview"), **errors},
            }
        },
        "/v1/workers": {
            "get": {
                "summary": "The workers that polled within the last lease",
                "responses": {"200": answer("WorkerList", "the workers"), **errors},
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
