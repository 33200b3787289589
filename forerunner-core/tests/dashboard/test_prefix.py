"""The dashboard behind a path prefix, as a proxy serves it at ``https://host/ops/``.

The manager's app is mounted under ``/ops`` in a Starlette app of its own (what a proxy
that keeps the prefix looks like to the browser), and every request the pages make must
stay under it: the page, its assets and the API calls are all relative.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import TYPE_CHECKING

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from forerunner.manager import Manager
from forerunner.manager.app import create_app

expect = pytest.importorskip(
    "playwright.sync_api", reason="needs Playwright for Python (requirements-dev.txt)"
).expect

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from conftest import Ui


@pytest.fixture(scope="module")
def prefixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(the server's root URL, a queued job's id), the manager mounted at ``/ops``."""
    folder = tmp_path_factory.mktemp("prefix")
    manager = Manager(f"sqlite:///{folder / 'jobs.db'}", "memory://", port=0)
    job = manager.assign_job("report", {"month": "2026-11"})
    inner = create_app(manager.service, metrics=manager.metrics)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with inner.router.lifespan_context(inner):
            yield

    outer = Starlette(routes=[Mount("/ops", app=inner)], lifespan=lifespan)
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(outer, log_config=None, access_log=False, ws="none"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the server stopped before it started"
        assert time.monotonic() < deadline, "the server did not start within 30 s"
        time.sleep(0.01)
    host, port = sock.getsockname()[:2]
    yield f"http://{host}:{port}", job.id
    manager.service.closing.set()
    server.should_exit = True
    thread.join(15)
    manager.stop()


def test_every_request_stays_under_the_prefix(ui: Ui, prefixed: tuple[str, str]) -> None:
    root, job_id = prefixed
    page = ui.open(f"{root}/ops/")
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    ui.goto(page, f"{root}/ops/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    expect(page.get_by_role("region", name="At a glance")).to_contain_text("Waiting in queue1")
    page.get_by_role("navigation").get_by_role("link", name="Jobs").click()
    page.locator(f'a[href="#/jobs/{job_id}"]').click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Job {job_id}")
    expect(page.get_by_role("region", name="Timeline")).to_contain_text("submitted")
    page.get_by_role("navigation").get_by_role("link", name="Workers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Workers")

    assert requested, "the page made no requests"
    outside = [url for url in requested if not url.startswith(f"{root}/ops/")]
    assert outside == [], "requests left the prefix"
    assert any(url.endswith("/ops/static/app.js") for url in requested)
    assert any("/ops/v1/jobs/" in url and url.endswith("/timeline") for url in requested)


def test_the_prefix_without_its_slash_redirects_to_the_dashboard(
    prefixed: tuple[str, str],
) -> None:
    root, _ = prefixed
    answer = httpx.get(f"{root}/ops", follow_redirects=False)

    assert answer.status_code in (301, 307, 308)
    assert answer.headers["location"] == f"{root}/ops/"
