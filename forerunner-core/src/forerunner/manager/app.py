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
from starlette.requests import ClientDisconnect
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
from forerunner.manager.auth import Role, Tokens, WorkerBindings
from forerunner.manager.history import BUCKET_SECONDS
from forerunner.manager.limits import DEFAULT_LIMITS, Limits
from forerunner.manager.metrics import CONTENT_TYPE, Metrics
from forerunner.manager.openapi import MAX_JOB_WAIT, openapi_document
from forerunner.manager.service import utc_now
from forerunner.model import JobState
from forerunner.urls import mask_password
from forerunner.wire import (
    MAX_BATCH,
    MAX_DEPTH,
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
    ResultReport,
    Session,
    StateCount,
    SubmitResponse,
    Throughput,
    Timeline,
    TimelineEvent,
    WaitResponse,
    WireError,
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

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The installed forerunner-core, as the overview reports it.
VERSION: Final = importlib.metadata.version("forerunner-core")
#: How often a waiter looks at the store for changes made by other managers.
WAIT_POLL: Final = 0.2
#: Longest blocking queue pop: how soon a long poll notices shutdown or a gone client.
POP_SLICE: Final = 1.0
#: Seconds between two reaper steps.
REAP_EVERY: Final = 0.5
_STATUS: Final = {
    "malformed_json": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "worker_taken": 403,
    "read_only": 403,
    "cross_origin": 403,
    "not_found": 404,
    "request_timeout": 408,
    "invalid_transition": 409,
    "too_large": 413,
    "validation_error": 422,
    "too_many_requests": 429,
    "internal_error": 500,
    "unavailable": 503,
}
#: Who may call what: a client submits and reads, an admin also changes jobs, a
#: worker only polls. Routes without a role are open (health, the document, the
#: dashboard's shell, /v1/session).
READ: Final = frozenset({Role.CLIENT, Role.ADMIN})
CHANGE: Final = frozenset({Role.ADMIN})
POLL: Final = frozenset({Role.WORKER})
#: Open to anyone: a missing or wrong token is not refused, only reported by the answer.
OPEN: Final = frozenset(Role)


_encode: Final = msgspec.json.Encoder().encode


class Access:
    """The tokens a manager takes, its limits, and what each token has in flight.

    Only the event loop touches the counts, so they need no lock.
    """

    def __init__(self, tokens: Tokens, limits: Limits) -> None:
        self.tokens = tokens
        self.limits = limits
        self._in_flight: dict[str, int] = {}

    def hold(self, fingerprint: str) -> bool:
        """Count one more request of this token in flight, unless it has the most allowed."""
        held = self._in_flight.get(fingerprint, 0)
        if held >= self.limits.max_in_flight:
            return False
        self._in_flight[fingerprint] = held + 1
        return True

    def release(self, fingerprint: str) -> None:
        held = self._in_flight[fingerprint] - 1
        if held:
            self._in_flight[fingerprint] = held
        else:
            del self._in_flight[fingerprint]


class _HTTPError(Exception):
    """An answer that is not a success; raised inside a handler, rendered by :func:`_guard`."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.detail = ErrorDetail(code=code, message=message, field=field)


def _json(body: msgspec.Struct | dict[str, Any], status: int = 200) -> Response:
    return Response(msgspec.json.encode(body), status_code=status, media_type="application/json")


def _encode_poll(jobs: list[Job], abandon: list[str], lease: float, max_body: int) -> bytes:
    return _encode(
        PollResponse(
            jobs=[job_to_wire(job) for job in jobs],
            abandon=abandon,
            lease_seconds=lease,
            max_body=max_body,
        )
    )


def _capped(report: ResultReport, most: int) -> ResultReport:
    size = len(_encode(report.result)) if report.result is not None else 0
    if size <= most:
        return report
    return ResultReport(
        id=report.id,
        attempt=report.attempt,
        outcome="failed",
        error=WireError(
            type="ResultTooLarge",
            message=f"the result is {size} bytes of JSON, more than the {most} this manager "
            "keeps (--max-result-bytes); store large results elsewhere and return their address",
        ),
    )


def _cap_results(body: PollRequest, most: int) -> PollRequest:
    """``body`` with results over ``most`` JSON bytes turned into failures, and progress
    values over it dropped: the store keeps every result, and one huge result would
    slow every read of its job. A failure, unlike a refused poll, ends the attempt."""
    reports = [_capped(report, most) for report in body.reports]
    progress = [item for item in body.progress if len(_encode(item.value)) <= most]
    return msgspec.structs.replace(body, reports=reports, progress=progress)


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
    except RecursionError:
        # msgspec runs out of stack near a thousand levels, before any check of ours.
        raise _HTTPError(
            "validation_error",
            f"the body nests arrays and objects too deeply (at most {MAX_DEPTH} levels "
            "in a job's data)",
            "$",
        ) from None


def _require_json(raw: bytes) -> None:
    try:
        msgspec.json.decode(raw)
    except msgspec.ValidationError:
        return  # JSON, with a number too big for any type: the typed error says where.
    except msgspec.DecodeError as error:
        raise _HTTPError("malformed_json", f"the body is not valid JSON: {error}") from error
    except RecursionError:
        return


def _field_of(message: str) -> str:
    """The ``$.path`` msgspec's message names, extended by a missing or unknown field."""
    head, at, path = message.rpartition(" - at `")
    base = path.rstrip("`") if at else "$"
    text = head if at else message
    for marker in ("missing required field `", "unknown field `", "in field `"):
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
    access: Access,
    roles: frozenset[Role],
) -> Callable[[Request], Awaitable[Response]]:
    """Let in the callers ``roles`` allow, and render a handler's errors as :class:`ErrorBody`.

    An unexpected exception is logged with its traceback and answered 500 with a fixed
    message: a traceback can hold data, paths and URLs, and the caller may be anyone.
    """

    async def endpoint(request: Request) -> Response:
        principal = None
        if access.tokens.enabled:
            principal = access.tokens.authenticate(request.headers.get("authorization"))
        if access.tokens.enabled and roles is not OPEN:
            if principal is None:
                return _unauthorized(request)
            if principal.role not in roles:
                return _error_response(
                    ErrorDetail(
                        "forbidden",
                        f"a {principal.role} token may not {request.method} {request.url.path}; "
                        f"it takes a token of role {' or '.join(sorted(roles))}",
                    )
                )
        request.state.principal = principal
        if request.method == "POST" and _from_another_site(request):
            return _error_response(
                ErrorDetail(
                    "cross_origin",
                    "this request came from a page of another site; the manager takes "
                    "changes only from its own dashboard and from clients that are not browsers",
                )
            )
        held = None
        if principal is not None and access.tokens.enabled:
            if not access.hold(principal.fingerprint):
                response = _error_response(
                    ErrorDetail(
                        "too_many_requests",
                        f"this token has {access.limits.max_in_flight} requests in flight, the "
                        "most the manager takes from one token; wait for answers first",
                    )
                )
                response.headers["retry-after"] = "1"
                return response
            held = principal.fingerprint
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
        except ClientDisconnect:
            # The client went before its body arrived, or the protocol cut it off for
            # breaking a limit and answered it already: nothing was changed, and no one
            # is left to answer.
            return Response(status_code=400)
        except BackendError as error:
            logger.warning("backend failed: %s", error, extra={"action": "backend_error"})
            return _error_response(ErrorDetail("unavailable", error.message))
        except Exception:
            logger.exception(
                "%s %s failed", request.method, request.url.path, extra={"action": "internal_error"}
            )
            return _error_response(
                ErrorDetail("internal_error", "the manager failed to answer; its log says why")
            )
        finally:
            if held is not None:
                access.release(held)
        return response

    return endpoint


def _unauthorized(request: Request) -> Response:
    given = request.headers.get("authorization")
    message = (
        "this manager asks for a token: send `Authorization: Bearer TOKEN` "
        "(forerunner reads it from FORERUNNER_TOKEN or --token-file)"
        if given is None
        else "the token is not one this manager accepts (or not a Bearer token)"
    )
    response = _error_response(ErrorDetail("unauthorized", message))
    response.headers["www-authenticate"] = 'Bearer realm="forerunner"'
    return response


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
        access: Access | None = None,
    ) -> None:
        self.service = service
        self.read_only = read_only
        self.access = access or Access(Tokens(), DEFAULT_LIMITS)
        self.limits = self.access.limits
        #: Which token and session each worker id belongs to (only with tokens: without
        #: them anyone may do anything, so there is no identity to protect).
        self.bindings = WorkerBindings(2 * service.lease)
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

    async def jobs(self, request: Request) -> Response:
        # One route for both methods of /v1/jobs, so that a 405 there lists both in Allow.
        if request.method == "POST":
            return await self.submit(request)
        return await self.list_jobs(request)

    async def submit(self, request: Request) -> Response:
        raw = await request.body()
        spec = _decode(raw, JobSpec)
        if len(raw) > self.limits.max_data:
            self._check_data(spec, "data")
        [(job, created)] = await self.call(self.service.submit, [spec])
        body = SubmitResponse(job=job_to_wire(job), created=created)
        return _json(body, 201 if created else 200)

    async def submit_batch(self, request: Request) -> Response:
        raw = await request.body()
        batch = _decode(raw, BatchSubmit)
        if len(raw) > self.limits.max_data:
            for index, spec in enumerate(batch.jobs):
                self._check_data(spec, f"jobs[{index}].data")
        results = await run_in_threadpool(
            functools.partial(self.service.submit, batch.jobs, batch=True)
        )
        return _json(
            BatchSubmitResponse(
                jobs=[job_to_wire(job) for job, _ in results],
                created=[created for _, created in results],
            )
        )

    def _check_data(self, spec: JobSpec, field: str) -> None:
        """Refuse data over the limit; only called when the body alone could hold such data."""
        size = len(_encode(spec.data))
        if size > self.limits.max_data:
            raise _HTTPError(
                "too_large",
                f"the job's data is {size} bytes of JSON, more than the {self.limits.max_data} "
                "this manager takes (--max-data-bytes); store large inputs elsewhere and pass "
                "their address",
                field,
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

    async def session(self, request: Request) -> Response:
        principal = request.state.principal
        if not self.access.tokens.enabled:
            role: Any = "admin"
        else:
            role = None if principal is None else principal.role.value
        return _json(Session(auth=self.access.tokens.enabled, role=role, read_only=self.read_only))

    async def poll(self, request: Request) -> Response:
        raw = await request.body()
        body = _decode(raw, PollRequest)
        principal = request.state.principal
        if principal is not None and not self.bindings.admit(
            body.worker, principal.fingerprint, body.session
        ):
            raise _HTTPError(
                "worker_taken",
                f"worker id {body.worker!r} belongs to another worker (another token or "
                f"session); start this worker with another id, or wait "
                f"{self.bindings.seconds_left(body.worker):.0f} s for the id to be free",
            )
        if len(raw) > self.limits.max_result:
            body = _cap_results(body, self.limits.max_result)
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
            _encode_poll(jobs, abandon, self.service.lease, self.limits.max_body),
            media_type="application/json",
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
    tokens: Tokens | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Starlette:
    """The ASGI app serving ``/v1``, ``/healthz``, ``/metrics``, ``/openapi.json`` and ``/``.

    ``read_only`` refuses every request that would change a job but a submission (403
    ``read_only``); ``dashboard`` serves the web dashboard at ``/``; ``backends`` are
    the store and queue URLs the overview shows, passwords masked. ``tokens`` turn on
    authentication (none: every caller may do anything); ``limits`` bound what one
    request or one token may ask.
    """
    access = Access(tokens if tokens is not None else Tokens(), limits)
    api = _Api(service, metrics=metrics, read_only=read_only, backends=backends, access=access)

    def route(
        path: str,
        handler: Callable[[Request], Awaitable[Response]],
        method: str,
        roles: frozenset[Role],
    ) -> Route:
        return Route(path, _guard(handler, access, roles), methods=[method])

    routes: list[BaseRoute] = [
        Route("/v1/jobs", _guard(api.jobs, access, READ), methods=["GET", "POST"]),
        route("/v1/jobs/batch", api.submit_batch, "POST", READ),
        route("/v1/jobs/retry", api.retry_many, "POST", CHANGE),
        route("/v1/jobs/purge", api.purge, "POST", CHANGE),
        route("/v1/jobs/{job_id}", api.get_job, "GET", READ),
        route("/v1/jobs/{job_id}/cancel", api.cancel, "POST", CHANGE),
        route("/v1/jobs/{job_id}/retry", api.retry, "POST", CHANGE),
        route("/v1/jobs/{job_id}/wait", api.wait, "GET", READ),
        route("/v1/jobs/{job_id}/timeline", api.timeline, "GET", READ),
        route("/v1/overview", api.overview, "GET", READ),
        route("/v1/workers", api.workers, "GET", READ),
        route("/v1/workers/poll", api.poll, "POST", POLL),
        route("/v1/session", api.session, "GET", OPEN),
        route("/healthz", api.healthz, "GET", OPEN),
        route("/metrics", api.metrics, "GET", READ),
        route("/openapi.json", api.openapi, "GET", OPEN),
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
