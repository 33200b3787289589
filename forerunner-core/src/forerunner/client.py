"""Talk to a manager over its HTTP API: :class:`Client` (sync) and :class:`AsyncClient`.

Both speak the bodies of :mod:`forerunner.wire` and give back :class:`forerunner.model.Job`
records. An error answer becomes the matching :mod:`forerunner.errors` class carrying the
server's message (404 :class:`JobNotFound`, 409 :class:`InvalidTransition`, 400/413/422
:class:`ValidationError` with the field, 403 from a read-only manager
:class:`ConfigurationError`, 503, 429 or no answer at all :class:`BackendUnavailable`),
so code written against a store in-process and code written against a manager over the
network handle failures the same way.

A manager that asks for tokens answers 401 (:class:`AuthenticationError`) to a request
without a token it knows, and 403 (:class:`PermissionDenied`) to a token whose role may
not do what was asked; both messages say which token to use. The token is given as
``token=``, else read from ``$FORERUNNER_TOKEN``, and sent as ``Authorization: Bearer``
on every request. It never appears in an error message or a repr. Certificates are
always verified, against the system's CAs plus ``ca_file=`` (or ``$FORERUNNER_CA_FILE``):
there is no way to turn that off, so a token is never handed to whoever sits between
the client and its manager. A certificate that does not verify is a
:class:`ConfigurationError` that names the fix, and is not retried.

The two classes share everything but the transport: a request is described once as a
:class:`_Call` and decoded once by :func:`_decode`.

With ``retry_for=S`` a client keeps trying a request that failed transiently for up to S
seconds, backing off from 0.1 s to 5 s with jitter: a 503 (the manager's store or queue
is unavailable, and nothing was written), a 429 (this token has too many requests in
flight; the request was refused before it was read), a connection that could not be made (nothing
was sent), and for reads any broken connection. A submit cut off after it was sent is
not retried, since the manager may have stored it: give the job a ``key`` to make that
safe. The default, 0, fails at once, so a mistyped URL is reported without a wait.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import ssl
import time
import urllib.parse
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs
import httpx
import msgspec

from forerunner.credentials import CA_FILE_ENV, TOKEN_ENV, header_safe, load_token, ssl_context
from forerunner.errors import (
    AuthenticationError,
    BackendError,
    BackendUnavailable,
    ConfigurationError,
    ForerunnerError,
    InvalidTransition,
    JobNotFound,
    PermissionDenied,
    ValidationError,
)
from forerunner.model import Job, JobState
from forerunner.wire import (
    BatchSubmit,
    BatchSubmitResponse,
    BulkRetry,
    BulkRetryResponse,
    ErrorBody,
    JobList,
    JobResponse,
    JobSpec,
    Overview,
    Purge,
    PurgeResponse,
    SubmitResponse,
    Timeline,
    TimelineEvent,
    WaitResponse,
    WorkerList,
    WorkerView,
    job_from_wire,
)

if TYPE_CHECKING:
    import builtins
    from collections.abc import Iterable, Mapping

__all__ = ["DEFAULT_URL", "AsyncClient", "Client", "JobPage", "JobTimeline", "Submitted"]

logger = logging.getLogger(__name__)

#: Where ``forerunner manager`` listens by default.
DEFAULT_URL: Final = "http://127.0.0.1:2718"
#: The longest wait one request asks the manager for; longer waits are several requests.
_WAIT_SLICE: Final = 60.0
#: Back-off bounds between two tries of a transiently failed request, in seconds.
_RETRY_FIRST: Final = 0.1
_RETRY_MAX: Final = 5.0
#: The POST endpoints only an admin token may call; every other endpoint of a client is
#: open to client (and admin) tokens.
_ADMIN_ACTIONS: Final = ("/cancel", "/retry", "/v1/jobs/purge")

R = TypeVar("R")


@attrs.frozen(kw_only=True)
class JobPage:
    """One page of :meth:`Client.list`, newest first.

    ``next`` is the ``before`` argument that fetches the following page, None on the last.
    """

    jobs: list[Job]
    next: str | None = None


@attrs.frozen(kw_only=True)
class Submitted:
    """A job of :meth:`Client.submit_batch`; ``created`` is false where its key named an
    existing job, which is the job given back."""

    job: Job
    created: bool


@attrs.frozen(kw_only=True)
class JobTimeline:
    """A job and the steps of its life, oldest first, from :meth:`Client.timeline`."""

    job: Job
    events: list[TimelineEvent]


@attrs.frozen(kw_only=True)
class _Call:
    """One HTTP request and the body type its success answer decodes to."""

    method: str
    path: str
    answer: type[Any]
    body: bytes | None = None
    params: dict[str, str | int | float] = attrs.field(factory=dict)
    #: Extra seconds the server may legitimately hold the request (long polls).
    hold: float = 0.0


def _spec(
    type: str,
    data: Any = None,
    *,
    priority: int = 0,
    max_attempts: int = 3,
    key: str | None = None,
    run_at: dt.datetime | None = None,
    delay: float | None = None,
    timeout: float | None = None,
) -> JobSpec:
    return JobSpec(
        type=type,
        data=data,
        priority=priority,
        max_attempts=max_attempts,
        key=key,
        run_at=run_at,
        delay=delay,
        timeout=timeout,
    )


def _as_spec(spec: JobSpec | Mapping[str, Any]) -> JobSpec:
    if isinstance(spec, JobSpec):
        return spec
    try:
        return msgspec.convert(dict(spec), JobSpec)
    except msgspec.ValidationError as error:
        raise ValidationError(f"invalid job spec: {error}") from error


def _submit_call(spec: JobSpec) -> _Call:
    return _Call(
        method="POST", path="/v1/jobs", answer=SubmitResponse, body=msgspec.json.encode(spec)
    )


def _batch_call(specs: Iterable[JobSpec | Mapping[str, Any]]) -> _Call:
    body = BatchSubmit(jobs=[_as_spec(spec) for spec in specs])
    return _Call(
        method="POST",
        path="/v1/jobs/batch",
        answer=BatchSubmitResponse,
        body=msgspec.json.encode(body),
    )


def _list_call(
    state: JobState | str | None,
    type: str | None,
    limit: int,
    before: str | None,
    text: str | None = None,
) -> _Call:
    params: dict[str, str | int | float] = {"limit": limit}
    if state is not None:
        params["state"] = str(JobState(state))
    if type is not None:
        params["type"] = type
    if text:
        params["text"] = text
    if before is not None:
        params["before"] = before
    return _Call(method="GET", path="/v1/jobs", answer=JobList, params=params)


def _wait_call(job_id: str, seconds: float) -> _Call:
    return _Call(
        method="GET",
        path=f"/v1/jobs/{_quoted(job_id)}/wait",
        answer=WaitResponse,
        params={"timeout": seconds},
        hold=seconds,
    )


def _overview_call() -> _Call:
    return _Call(method="GET", path="/v1/overview", answer=Overview)


def _workers_call() -> _Call:
    return _Call(method="GET", path="/v1/workers", answer=WorkerList)


def _timeline_call(job_id: str) -> _Call:
    return _Call(method="GET", path=f"/v1/jobs/{_quoted(job_id)}/timeline", answer=Timeline)


def _retry_many_call(state: JobState | str, type: str | None, limit: int) -> _Call:
    if state == JobState.FAILED:
        body = BulkRetry(type=type, state="failed", limit=limit)
    elif state == JobState.CANCELLED:
        body = BulkRetry(type=type, state="cancelled", limit=limit)
    else:
        raise ValidationError(
            f"only failed or cancelled jobs can be retried, not {state!s} ones", field="state"
        )
    return _Call(
        method="POST",
        path="/v1/jobs/retry",
        answer=BulkRetryResponse,
        body=msgspec.json.encode(body),
    )


def _purge_call(older_than: float | dt.timedelta, limit: int) -> _Call:
    seconds = older_than.total_seconds() if isinstance(older_than, dt.timedelta) else older_than
    body = Purge(older_than=seconds, limit=limit)
    return _Call(
        method="POST", path="/v1/jobs/purge", answer=PurgeResponse, body=msgspec.json.encode(body)
    )


def _timeline(answer: Timeline) -> JobTimeline:
    return JobTimeline(job=job_from_wire(answer.job), events=answer.events)


def _quoted(job_id: str) -> str:
    """The id as one path segment: an id with a slash must not reach another endpoint."""
    return urllib.parse.quote(job_id, safe="")


def _job_call(method: str, job_id: str, action: str = "") -> _Call:
    suffix = f"/{action}" if action else ""
    return _Call(method=method, path=f"/v1/jobs/{_quoted(job_id)}{suffix}", answer=JobResponse)


def _decode(call: _Call, response: httpx.Response) -> Any:
    """The success body of ``response``, or the forerunner error its status and body say."""
    if response.is_success:
        try:
            return msgspec.json.decode(response.content, type=call.answer)
        except msgspec.DecodeError as error:
            raise BackendError(
                f"{call.method} {call.path}: the manager answered {response.status_code} with a "
                f"body that is not a {call.answer.__name__}: {error}"
            ) from error
    raise _error_for(call, response)


def _error_for(call: _Call, response: httpx.Response) -> ForerunnerError:
    code: str | None
    try:
        detail = msgspec.json.decode(response.content, type=ErrorBody).error
        code, message, field = detail.code, detail.message, detail.field
    except msgspec.DecodeError:
        message = f"{response.status_code} {response.reason_phrase}: {response.text[:200]}"
        code = field = None
    status = response.status_code
    if status == 401:
        return _unauthorized(call, response)
    if status == 403 and code == "forbidden":
        return PermissionDenied(
            f"{message} (give a token of role {_role_for(call)} with --token-file PATH "
            f"or {TOKEN_ENV})"
        )
    if status == 403 and code == "worker_taken":
        return PermissionDenied(message)
    if status == 403:
        return ConfigurationError(message)
    if status == 404:
        return JobNotFound(message)
    if status == 409:
        return InvalidTransition(message)
    if status in (400, 413, 422):
        return ValidationError(message, field=field)
    if status in (429, 503):
        return BackendUnavailable(message)
    return BackendError(f"{call.method} {call.path} failed with {status}: {message}")


def _unauthorized(call: _Call, response: httpx.Response) -> AuthenticationError:
    """The 401 told as what to do: give a token, or a valid one.

    The server's message is left out on purpose: the fix depends only on whether a token
    was sent, and nothing of the request's credentials can then reach the text.
    """
    where = f"{call.method} {call.path}"
    if "authorization" not in response.request.headers:
        return AuthenticationError(
            f"{where}: the manager asks for a token and none was given; set {TOKEN_ENV} "
            f"or pass --token-file PATH with a token of role {_role_for(call)}"
        )
    return AuthenticationError(
        f"{where}: the manager does not know the token given (from --token-file or "
        f"${TOKEN_ENV}); it may be mistyped or revoked: ask the manager's operator for a "
        f"token of role {_role_for(call)}"
    )


def _role_for(call: _Call) -> str:
    """The roles whose tokens may make ``call``, as the manager's rules say."""
    if call.path == "/v1/workers/poll":
        return "worker"
    if call.method == "POST" and call.path.endswith(_ADMIN_ACTIONS):
        return "admin"
    return "client (or admin)"


def _headers(call: _Call) -> dict[str, str] | None:
    return {"content-type": "application/json"} if call.body is not None else None


def _unreachable(base_url: str, error: httpx.HTTPError) -> ForerunnerError:
    tls = _tls_failure(error)
    if isinstance(tls, ssl.SSLCertVerificationError):
        why = str(tls.verify_message or tls.reason).rstrip(".")
        fix = (
            "connect by a name the certificate was made for"
            if "mismatch" in why
            else "if a private CA signed the manager's certificate, give that CA with "
            f"--ca-file PATH or {CA_FILE_ENV}"
        )
        return ConfigurationError(
            f"the certificate of the manager at {base_url} could not be verified ({why}); "
            f"nothing was sent; {fix}"
        )
    if tls is not None:
        return ConfigurationError(
            f"TLS with the manager at {base_url} failed ({tls.reason or tls}); check that "
            "the URL says https:// only for a manager started with --tls-cert"
        )
    hint = (
        "; if the manager serves https, use an https:// URL"
        if base_url.startswith("http://") and isinstance(error, httpx.RemoteProtocolError)
        else ""
    )
    return BackendUnavailable(
        f"the manager at {base_url} did not answer ({type(error).__name__}: {error}); "
        f"check that it runs and the URL is right{hint}"
    )


def _tls_failure(error: BaseException) -> ssl.SSLError | None:
    """The TLS error behind ``error``, if any: httpx chains the ssl module's as a cause."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _auth_headers(token: str | None) -> dict[str, str]:
    """The header that carries ``token``, or ``$FORERUNNER_TOKEN`` when none is given."""
    if token is None:
        token = load_token()
    elif not header_safe(token):
        raise ConfigurationError(
            "the token given is empty or holds spaces or characters a header cannot carry"
        )
    return {} if token is None else {"authorization": f"Bearer {token}"}


def _page(answer: JobList) -> JobPage:
    return JobPage(jobs=[job_from_wire(body) for body in answer.jobs], next=answer.next)


def _submitted(answer: BatchSubmitResponse) -> list[Submitted]:
    return [
        Submitted(job=job_from_wire(body), created=created)
        for body, created in zip(answer.jobs, answer.created, strict=True)
    ]


def _wait_slices(timeout: float) -> tuple[float, float]:
    """The first slice to ask for and the monotonic deadline of the whole wait."""
    return min(max(timeout, 0.0), _WAIT_SLICE), time.monotonic() + max(timeout, 0.0)


def _transient(call: _Call, outcome: httpx.Response | httpx.HTTPError) -> bool:
    """Whether trying ``call`` again after ``outcome`` can neither duplicate nor mislead."""
    if isinstance(outcome, httpx.Response):
        return outcome.status_code in (429, 503)
    if _tls_failure(outcome) is not None:
        return False
    if isinstance(outcome, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return True
    return call.method == "GET" and isinstance(outcome, httpx.TransportError)


@attrs.define
class _Retries:
    """The back-off of one request: how long to pause before the next try, if any."""

    url: str
    call: _Call
    deadline: float
    tries: int = 0

    @classmethod
    def within(cls, url: str, call: _Call, seconds: float) -> _Retries:
        return cls(url=url, call=call, deadline=time.monotonic() + seconds)

    def pause(self, outcome: httpx.Response | httpx.HTTPError) -> float | None:
        """Seconds to wait before trying again, or None to give up with ``outcome``."""
        if not _transient(self.call, outcome):
            return None
        self.tries += 1
        delay = min(_RETRY_MAX, _RETRY_FIRST * 2.0 ** (self.tries - 1)) * random.uniform(0.5, 1.0)
        if isinstance(outcome, httpx.Response):
            delay = max(delay, _retry_after(outcome))
        if time.monotonic() + delay > self.deadline:
            if self.tries > 1:
                what = (
                    f"status {outcome.status_code}"
                    if isinstance(outcome, httpx.Response)
                    else type(outcome).__name__
                )
                logger.warning(
                    "%s %s%s: giving up after %d tries (%s)",
                    self.call.method,
                    self.url,
                    self.call.path,
                    self.tries,
                    what,
                    extra={"action": "client_gave_up", "path": self.call.path},
                )
            return None
        return delay


def _retry_after(response: httpx.Response) -> float:
    """The pause a 429 or 503 asks for in ``Retry-After`` (seconds), capped; 0 if none."""
    try:
        seconds = float(response.headers.get("retry-after", "0"))
    except ValueError:
        return 0.0
    return min(max(seconds, 0.0), _RETRY_MAX)


class Client:
    """A synchronous client of one manager.

    :param url: the manager's base URL, e.g. ``http://127.0.0.1:2718`` or ``https://...``.
    :param token: the bearer token to send; default ``$FORERUNNER_TOKEN``, if set.
    :param ca_file: a PEM file of CAs to trust beside the system's (default
        ``$FORERUNNER_CA_FILE``), for a manager whose certificate a private CA signed.
    :param timeout: seconds one request may take, beyond what a long poll asks for.
    :param retry_for: seconds to keep trying a request that failed transiently (see the
        module's docstring); 0 fails at once.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        ca_file: str | None = None,
        timeout: float = 10.0,
        retry_for: float = 0.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._retry_for = retry_for
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            headers=_auth_headers(token),
            verify=ssl_context(ca_file),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def submit(
        self,
        type: str,
        data: Any = None,
        *,
        priority: int = 0,
        max_attempts: int = 3,
        key: str | None = None,
        run_at: dt.datetime | None = None,
        delay: float | None = None,
        timeout: float | None = None,
    ) -> Job:
        """Submit one job; with a ``key`` that already exists, return that job instead."""
        spec = _spec(
            type,
            data,
            priority=priority,
            max_attempts=max_attempts,
            key=key,
            run_at=run_at,
            delay=delay,
            timeout=timeout,
        )
        answer: SubmitResponse = self._send(_submit_call(spec))
        return job_from_wire(answer.job)

    def submit_many(self, specs: Iterable[JobSpec | Mapping[str, Any]]) -> list[Job]:
        """Submit many jobs in one request; each spec is a JobSpec or a mapping of its fields."""
        answer: BatchSubmitResponse = self._send(_batch_call(specs))
        return [job_from_wire(body) for body in answer.jobs]

    def submit_batch(self, specs: Iterable[JobSpec | Mapping[str, Any]]) -> list[Submitted]:
        """Submit up to 1000 jobs in one request, stored all or none; aligned with ``specs``."""
        return _submitted(self._send(_batch_call(specs)))

    def get(self, job_id: str) -> Job:
        answer: JobResponse = self._send(_job_call("GET", job_id))
        return job_from_wire(answer.job)

    def wait(self, job_id: str, timeout: float = 30.0) -> Job:
        """Return the job once it is terminal, or as it stands when ``timeout`` seconds pass."""
        seconds, deadline = _wait_slices(timeout)
        while True:
            answer: WaitResponse = self._send(_wait_call(job_id, seconds))
            left = deadline - time.monotonic()
            if answer.done or left <= 0:
                return job_from_wire(answer.job)
            seconds = min(left, _WAIT_SLICE)

    def list(
        self,
        *,
        state: JobState | str | None = None,
        type: str | None = None,
        limit: int = 100,
        before: str | None = None,
        text: str | None = None,
    ) -> JobPage:
        """One page of jobs, newest first; pass ``page.next`` as ``before`` for the next.

        ``text`` keeps the jobs whose id or key contains it (case-sensitive).
        """
        return _page(self._send(_list_call(state, type, limit, before, text)))

    def cancel(self, job_id: str) -> Job:
        answer: JobResponse = self._send(_job_call("POST", job_id, "cancel"))
        return job_from_wire(answer.job)

    def retry(self, job_id: str) -> Job:
        answer: JobResponse = self._send(_job_call("POST", job_id, "retry"))
        return job_from_wire(answer.job)

    def timeline(self, job_id: str) -> JobTimeline:
        """The job and its events, oldest first: created, claimed, failed, retried..."""
        return _timeline(self._send(_timeline_call(job_id)))

    def overview(self) -> Overview:
        """Counts, queue depth, the oldest waiting job and throughput, at a glance."""
        answer: Overview = self._send(_overview_call())
        return answer

    def workers(self) -> builtins.list[WorkerView]:
        """The workers that polled the manager within the last lease."""
        answer: WorkerList = self._send(_workers_call())
        return answer.workers

    def retry_many(
        self, *, state: JobState | str = JobState.FAILED, type: str | None = None, limit: int = 1000
    ) -> BulkRetryResponse:
        """Retry up to ``limit`` failed (or cancelled) jobs, of ``type`` if given, newest first."""
        answer: BulkRetryResponse = self._send(_retry_many_call(state, type, limit))
        return answer

    def purge(self, *, older_than: float | dt.timedelta, limit: int = 100_000) -> int:
        """Delete up to ``limit`` finished jobs that ended more than ``older_than`` ago.

        ``older_than`` is seconds or a timedelta; the answer is how many were deleted.
        """
        answer: PurgeResponse = self._send(_purge_call(older_than, limit))
        return answer.purged

    def _send(self, call: _Call) -> Any:
        retries = _Retries.within(self.url, call, self._retry_for)
        while True:
            outcome: httpx.Response | httpx.HTTPError
            try:
                outcome = self._http.request(
                    call.method,
                    call.path,
                    content=call.body,
                    params=call.params,
                    headers=_headers(call),
                    timeout=self._timeout + call.hold,
                )
            except httpx.HTTPError as error:
                outcome = error
            pause = retries.pause(outcome)
            if pause is None:
                break
            time.sleep(pause)
        if isinstance(outcome, httpx.HTTPError):
            raise _unreachable(self.url, outcome) from outcome
        return _decode(call, outcome)


class AsyncClient:
    """The asyncio twin of :class:`Client`: the same methods, awaited."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        ca_file: str | None = None,
        timeout: float = 10.0,
        retry_for: float = 0.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._retry_for = retry_for
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=timeout,
            headers=_auth_headers(token),
            verify=ssl_context(ca_file),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def submit(
        self,
        type: str,
        data: Any = None,
        *,
        priority: int = 0,
        max_attempts: int = 3,
        key: str | None = None,
        run_at: dt.datetime | None = None,
        delay: float | None = None,
        timeout: float | None = None,
    ) -> Job:
        """Submit one job; with a ``key`` that already exists, return that job instead."""
        spec = _spec(
            type,
            data,
            priority=priority,
            max_attempts=max_attempts,
            key=key,
            run_at=run_at,
            delay=delay,
            timeout=timeout,
        )
        answer: SubmitResponse = await self._send(_submit_call(spec))
        return job_from_wire(answer.job)

    async def submit_many(self, specs: Iterable[JobSpec | Mapping[str, Any]]) -> list[Job]:
        answer: BatchSubmitResponse = await self._send(_batch_call(specs))
        return [job_from_wire(body) for body in answer.jobs]

    async def submit_batch(self, specs: Iterable[JobSpec | Mapping[str, Any]]) -> list[Submitted]:
        """Submit up to 1000 jobs in one request, stored all or none; aligned with ``specs``."""
        return _submitted(await self._send(_batch_call(specs)))

    async def get(self, job_id: str) -> Job:
        answer: JobResponse = await self._send(_job_call("GET", job_id))
        return job_from_wire(answer.job)

    async def wait(self, job_id: str, timeout: float = 30.0) -> Job:
        """Return the job once it is terminal, or as it stands when ``timeout`` seconds pass."""
        seconds, deadline = _wait_slices(timeout)
        while True:
            answer: WaitResponse = await self._send(_wait_call(job_id, seconds))
            left = deadline - time.monotonic()
            if answer.done or left <= 0:
                return job_from_wire(answer.job)
            seconds = min(left, _WAIT_SLICE)

    async def list(
        self,
        *,
        state: JobState | str | None = None,
        type: str | None = None,
        limit: int = 100,
        before: str | None = None,
        text: str | None = None,
    ) -> JobPage:
        return _page(await self._send(_list_call(state, type, limit, before, text)))

    async def cancel(self, job_id: str) -> Job:
        answer: JobResponse = await self._send(_job_call("POST", job_id, "cancel"))
        return job_from_wire(answer.job)

    async def retry(self, job_id: str) -> Job:
        answer: JobResponse = await self._send(_job_call("POST", job_id, "retry"))
        return job_from_wire(answer.job)

    async def timeline(self, job_id: str) -> JobTimeline:
        return _timeline(await self._send(_timeline_call(job_id)))

    async def overview(self) -> Overview:
        answer: Overview = await self._send(_overview_call())
        return answer

    async def workers(self) -> builtins.list[WorkerView]:
        answer: WorkerList = await self._send(_workers_call())
        return answer.workers

    async def retry_many(
        self, *, state: JobState | str = JobState.FAILED, type: str | None = None, limit: int = 1000
    ) -> BulkRetryResponse:
        answer: BulkRetryResponse = await self._send(_retry_many_call(state, type, limit))
        return answer

    async def purge(self, *, older_than: float | dt.timedelta, limit: int = 100_000) -> int:
        answer: PurgeResponse = await self._send(_purge_call(older_than, limit))
        return answer.purged

    async def _send(self, call: _Call) -> Any:
        retries = _Retries.within(self.url, call, self._retry_for)
        while True:
            outcome: httpx.Response | httpx.HTTPError
            try:
                outcome = await self._http.request(
                    call.method,
                    call.path,
                    content=call.body,
                    params=call.params,
                    headers=_headers(call),
                    timeout=self._timeout + call.hold,
                )
            except httpx.HTTPError as error:
                outcome = error
            pause = retries.pause(outcome)
            if pause is None:
                break
            await asyncio.sleep(pause)
        if isinstance(outcome, httpx.HTTPError):
            raise _unreachable(self.url, outcome) from outcome
        return _decode(call, outcome)
