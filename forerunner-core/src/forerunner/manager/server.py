"""The public :class:`Manager`: the seed's Python API over the HTTP service.

uvicorn serves the Starlette app; :meth:`Manager.start` runs it on a background thread
for embedding (tests, scripts, the one-shot batch mode) and :meth:`Manager.serve`
blocks in the foreground for the ``forerunner manager`` command.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Final

import uvicorn

from forerunner.errors import ConfigurationError
from forerunner.manager.app import create_app
from forerunner.manager.auth import Tokens, is_loopback
from forerunner.manager.events import Events
from forerunner.manager.joblog import JobLog
from forerunner.manager.limits import DEFAULT_LIMITS, Limits
from forerunner.manager.metrics import Metrics, TimedQueue, TimedStore
from forerunner.manager.protocol import guarded_protocol
from forerunner.manager.service import ManagerService, spec_from_options, utc_now
from forerunner.plugins import get_registry
from forerunner.urls import mask_password

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Iterable
    from types import FrameType, TracebackType

    from forerunner.model import Job
    from forerunner.plugins import Registry
    from forerunner.queue import Queue
    from forerunner.store import Store

__all__ = ["DEFAULT_PORT", "DEFAULT_QUEUE", "DEFAULT_STORE", "Manager"]

logger = logging.getLogger(__name__)

DEFAULT_STORE: Final = "sqlite:///forerunner.db"
DEFAULT_QUEUE: Final = "memory://"
DEFAULT_PORT: Final = 2718
#: Seconds :meth:`Manager.start` waits for the server to listen.
START_TIMEOUT: Final = 30.0
#: Seconds a stopping manager gives open requests to finish.
GRACE: Final = 5.0


class _Server(uvicorn.Server):
    """uvicorn's server, telling the service first so long polls answer at once."""

    def __init__(self, config: uvicorn.Config, service: ManagerService) -> None:
        super().__init__(config)
        self._service = service

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._service.closing.set()
        super().handle_exit(sig, frame)


class Manager:
    """Accepts jobs, hands them to workers by lease, and keeps every fact in the store.

    ``store`` and ``queue`` are URLs (opened through the plugins, closed by :meth:`stop`)
    or open backends (left open: the caller owns them). ``clock`` gives the time every
    lease, retry and reaper step is judged by (UTC now by default); the fault tests pass
    a skewed one to show that managers whose clocks disagree do not claim a job twice.

    ``tokens`` turn on authentication (by default the ``FORERUNNER_*_TOKENS`` variables;
    ``Tokens()`` for none); without tokens the manager listens only on a loopback
    address, unless ``insecure``. ``tls_cert`` and ``tls_key`` serve HTTPS. ``limits``
    bound what one request or one token may ask (:class:`Limits`).

    Every job event is logged (``forerunner.manager.joblog``, at INFO) and counted in
    :attr:`metrics`, which ``/metrics`` serves; ``log_job_data`` adds the jobs' data,
    results and tracebacks to the log. ``read_only`` refuses the requests that change
    a job other than submitting; ``dashboard=False`` serves no dashboard.
    """

    def __init__(
        self,
        store: str | Store = DEFAULT_STORE,
        queue: str | Queue = DEFAULT_QUEUE,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        lease: float = 30.0,
        registry: Registry | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        log_job_data: bool = False,
        read_only: bool = False,
        dashboard: bool = True,
        tokens: Tokens | None = None,
        insecure: bool = False,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        if lease <= 0:
            raise ConfigurationError(f"lease must be a positive number of seconds, got {lease!r}")
        self.tokens = tokens if tokens is not None else Tokens.from_environment()
        if not self.tokens.enabled and not insecure and not is_loopback(host):
            raise ConfigurationError(
                f"refusing to listen on {host} without tokens: anyone who can reach it could "
                "take every job's data and report results for any job; give tokens "
                "(--tokens-file, or FORERUNNER_CLIENT_TOKENS, FORERUNNER_WORKER_TOKENS and "
                "FORERUNNER_ADMIN_TOKENS), or --insecure if a network you trust guards the port"
            )
        if (tls_cert is None) != (tls_key is None):
            raise ConfigurationError(
                "TLS needs both a certificate and its key (--tls-cert, --tls-key)"
            )
        for path in (tls_cert, tls_key):
            if path is not None and not os.path.isfile(path):
                raise ConfigurationError(f"cannot read the TLS file {path!r}: no such file")
        self.tls = (tls_cert, tls_key) if tls_cert is not None and tls_key is not None else None
        self.limits = limits
        self._registry = registry if registry is not None else get_registry()
        self._owned: list[Store | Queue] = []
        opened_store = self._registry.open_store(store) if isinstance(store, str) else store
        if isinstance(store, str):
            self._owned.append(opened_store)
        try:
            opened_queue = self._registry.open_queue(queue) if isinstance(queue, str) else queue
        except BaseException:
            self._close_owned()
            raise
        if isinstance(queue, str):
            self._owned.append(opened_queue)
        self.host = host
        self.port = port
        self.read_only = read_only
        self.dashboard = dashboard
        #: The store and queue as the overview names them: URLs with passwords masked.
        self._backends = (_name(store), _name(queue))
        clock = clock or utc_now
        self.events = Events(self._registry)
        #: What ``/metrics`` serves: this manager's series, in a registry of its own.
        self.metrics = Metrics(clock)
        self.service = ManagerService(
            TimedStore.wrap(opened_store, self.metrics),
            TimedQueue.wrap(opened_queue, self.metrics),
            self.events,
            lease=lease,
            clock=clock,
        )
        self.metrics.bind(self.service)
        self.events.listen_batches(JobLog(job_data=log_job_data, clock=clock))
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def store(self) -> Store:
        return self.service.store

    @property
    def queue(self) -> Queue:
        return self.service.queue

    @property
    def url(self) -> str:
        """The base URL workers and clients use, e.g. ``http://127.0.0.1:2718``."""
        scheme = "https" if self.tls is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    # Serving

    def start(self) -> Manager:
        """Serve on a background thread; return once the server is listening."""
        if self._thread is not None:
            raise ConfigurationError("this manager is already running; stop() it first")
        sock = self._bind()
        server = self._make_server()
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="forerunner-manager", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self._server = self._thread = None
                sock.close()
                raise ConfigurationError(f"the manager failed to start on {self.url}; see the log")
            time.sleep(0.01)
        self._log_started()
        return self

    def serve(self) -> None:
        """Serve in the foreground until SIGINT or SIGTERM, then stop gracefully."""
        sock = self._bind()
        server = self._make_server()
        self._server = server
        self._log_started()
        # uvicorn handles SIGINT/SIGTERM while serving and raises the signal again once it
        # stopped; handing it to the server here too means that late signal (and one
        # arriving before uvicorn took over) stops the server, and serve() returns with
        # the backends closed instead of the process dying on the spot.
        previous: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for stop_signal in (signal.SIGINT, signal.SIGTERM):
                previous[stop_signal] = signal.signal(stop_signal, server.handle_exit)
        try:
            server.run(sockets=[sock])
        finally:
            for stop_signal, handler in previous.items():
                signal.signal(stop_signal, handler)
            self._server = None
            self._close_owned()

    def stop(self) -> None:
        """Stop serving, let open requests answer, and close the backends opened from URLs.

        A stopped manager is done: its backends are closed, so make a new one to serve again.
        """
        server, thread = self._server, self._thread
        self.service.closing.set()
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(GRACE + 5.0)
        self._server = self._thread = None
        self._close_owned()

    def __enter__(self) -> Manager:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # The seed's Python API

    def assign_job(self, type: str, data: Any = None, **options: Any) -> Job:
        """Submit a job in-process; ``options`` are the JobSpec fields (priority, delay, ...)."""
        [(job, _)] = self.service.submit([spec_from_options(type, data, **options)])
        return job

    def on_created(self, types: str | Iterable[str], fn: Callable[[Job], object]) -> None:
        self.events.on("created", types, fn)

    def on_staged(self, types: str | Iterable[str], fn: Callable[[Job], object]) -> None:
        self.events.on("staged", types, fn)

    def on_progress(self, types: str | Iterable[str], fn: Callable[[Job], object]) -> None:
        self.events.on("progress", types, fn)

    def on_complete(self, types: str | Iterable[str], fn: Callable[[Job], object]) -> None:
        self.events.on("succeeded", types, fn)

    def on_retry(self, types: str | Iterable[str], fn: Callable[[Job], object]) -> None:
        self.events.on("retrying", types, fn)

    def on_failed(self, types: str | Iterable[str], fn: Callable[[Job], object]) -> None:
        self.events.on("failed", types, fn)

    # Internals

    def _log_started(self) -> None:
        # The URL is followed by a space, so that a script can cut it out of any format.
        logger.info(
            "manager listening on %s (lease %g s)",
            self.url,
            self.service.lease,
            extra={"action": "manager_started", "url": self.url},
        )

    def _bind(self) -> socket.socket:
        """Bind before serving, so ``port=0`` is resolved and a taken port fails here."""
        try:
            sock = socket.create_server((self.host, self.port), reuse_port=False)
        except OSError as error:
            raise ConfigurationError(
                f"cannot listen on {self.host}:{self.port}: {error.strerror}; "
                "pick another --port, or stop what uses it"
            ) from error
        self.port = sock.getsockname()[1]
        return sock

    def _make_server(self) -> _Server:
        self.service.closing.clear()
        config = uvicorn.Config(
            create_app(
                self.service,
                metrics=self.metrics,
                read_only=self.read_only,
                dashboard=self.dashboard,
                backends=self._backends,
                tokens=self.tokens,
                limits=self.limits,
            ),
            ssl_certfile=self.tls[0] if self.tls else None,
            ssl_keyfile=self.tls[1] if self.tls else None,
            # Closes a connection whose request head is slow or oversized (slowloris):
            # uvicorn's own protocol waits for a head forever.
            http=guarded_protocol(self.limits),
            log_config=None,
            access_log=False,
            ws="none",
            lifespan="on",
            timeout_graceful_shutdown=int(GRACE),
        )
        return _Server(config, self.service)

    def _close_owned(self) -> None:
        owned, self._owned = self._owned, []
        for backend in reversed(owned):
            try:
                backend.close()
            except Exception:
                logger.exception("closing %r failed", backend)


def _name(backend: str | Store | Queue) -> str:
    """A backend as an operator knows it: its URL, password masked, or its class name."""
    return mask_password(backend) if isinstance(backend, str) else type(backend).__name__
