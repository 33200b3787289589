"""A real browser against a real manager: the fixtures of the dashboard's tests.

Each test module gets one manager (a sqlite store in a temporary directory, a memory
queue) with one worker in a thread of this process, and all the modules share one
headless Chromium, Debian's own (``/usr/bin/chromium``; Playwright's downloaded
browsers are never used). Each test gets a fresh browser context, so no page state
leaks between tests, at the width it asks for.

Without Chromium (or Playwright) the tests are skipped with the reason, except under
``CI``, where a missing browser fails them: CI must run them, and ``.ci/run`` installs
Chromium first.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs
import pytest

from forerunner.client import Client
from forerunner.manager import Manager
from forerunner.model import JobState
from forerunner.worker import Worker

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright

REPO: Final = Path(__file__).resolve().parents[3]
#: The browser the tests drive; FORERUNNER_CHROMIUM names another binary.
CHROMIUM: Final = os.environ.get("FORERUNNER_CHROMIUM", "/usr/bin/chromium")
#: Milliseconds an expectation waits; the pages refresh every 3 seconds, and the
#: overview's counts may be 5 seconds old.
EXPECT_TIMEOUT: Final = 15_000


if os.environ.get("CI") and importlib.util.find_spec("playwright") is None:
    raise ImportError(
        "CI must run the dashboard's browser tests, and Playwright for Python is not "
        "installed: install requirements-dev.txt (./dev test does)"
    )


def screenshot_dir() -> Path:
    """``artifacts/screenshots`` at the repository root, or under ``FORERUNNER_ARTIFACTS``."""
    root = os.environ.get("FORERUNNER_ARTIFACTS")
    folder = (Path(root) if root else REPO / "artifacts") / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(
            f"{reason}; CI must run the dashboard's browser tests: install Debian's chromium "
            "(apt-get install chromium), as .ci/run does, or set FORERUNNER_CHROMIUM",
            pytrace=False,
        )
    pytest.skip(f"{reason}; install Debian's chromium (apt-get install chromium) to run them")


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """Playwright, started once for these tests and stopped after them (see __init__)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One headless Chromium for all the dashboard's tests."""
    executable = CHROMIUM if os.path.isfile(CHROMIUM) else shutil.which("chromium")
    if not executable:
        _unavailable(f"no Chromium at {CHROMIUM} nor on the PATH")
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT)
    launched = playwright.chromium.launch(executable_path=executable)
    yield launched
    launched.close()


class PageErrors:
    """Uncaught errors and console errors of a page, but for failed requests.

    A refused action (a 409, a 404) makes Chromium log "Failed to load resource"; the
    tests that cause one check what the page shows instead.
    """

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(f"console: {message.text}")


class Ui:
    """Opens dashboard pages in fresh browser contexts and looks at them."""

    def __init__(self, browser: Browser) -> None:
        self._browser = browser
        self._contexts: list[BrowserContext] = []
        self._watchers: list[PageErrors] = []

    def open(self, url: str, *, width: int = 1280) -> Page:
        """A new page ``width`` pixels wide, at ``url``, once the dashboard rendered it."""
        context = self._browser.new_context(viewport={"width": width, "height": 900})
        self._contexts.append(context)
        page = context.new_page()
        self._watchers.append(PageErrors(page))
        self.goto(page, url)
        return page

    @staticmethod
    def goto(page: Page, url: str) -> None:
        """Load ``url`` and wait until the dashboard rendered its first page."""
        page.goto(url)
        page.wait_for_selector("body[data-ready]")

    @staticmethod
    def fits(page: Page) -> bool:
        """True when the page itself is no wider than the window (tables scroll inside)."""
        return bool(
            page.evaluate(
                "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
            )
        )

    @staticmethod
    def screenshot(page: Page, name: str, *, full_page: bool = True) -> None:
        """Save the page as ``<name>.png`` in :func:`screenshot_dir`; the window alone
        with ``full_page=False`` (a modal dialog's backdrop covers only the window)."""
        page.screenshot(path=screenshot_dir() / f"{name}.png", full_page=full_page)

    def close(self) -> list[str]:
        """Close every context; the errors the pages logged."""
        for context in self._contexts:
            context.close()
        return [error for watcher in self._watchers for error in watcher.errors]


@pytest.fixture
def ui(browser: Browser) -> Iterator[Ui]:
    """Pages for one test; an error any of them logged fails the test."""
    opened = Ui(browser)
    yield opened
    errors = opened.close()
    assert not errors, "the dashboard logged errors in the browser:\n" + "\n".join(errors)


@attrs.frozen(kw_only=True)
class Seeded:
    """The ids of jobs in each state, as :meth:`Stack.seed` left them."""

    succeeded: list[str]
    failed: str
    queued: str
    scheduled: str
    running: str


class Stack:
    """A manager on a free port with a worker in a thread, and the switches of its tasks.

    ``echo`` succeeds; ``flaky`` and ``flaky_bulk`` raise until :attr:`healed` is set;
    ``slow`` reports progress and runs until the stack stops; nothing handles
    ``report``, so such a job stays queued. A manager given tokens needs ``client_token``
    (for :attr:`client`) and ``worker_token``.
    """

    def __init__(
        self,
        store_url: str,
        *,
        client_token: str | None = None,
        worker_token: str | None = None,
        **options: Any,
    ) -> None:
        self.healed = threading.Event()
        self.release = threading.Event()
        self.slow_started = threading.Event()
        self.manager = Manager(store_url, "memory://", port=0, **options).start()
        self.url = self.manager.url + "/"
        self.client = Client(self.manager.url, token=client_token)
        self.worker = Worker(4, token=worker_token)
        self._register()
        self._thread = threading.Thread(
            target=self.worker.start, args=(self.manager.url,), daemon=True
        )
        self._thread.start()

    def _register(self) -> None:
        from forerunner.context import report_progress

        def echo(job_id: str, data: Any) -> Any:
            return {"echo": data}

        def flaky(job_id: str, data: Any) -> Any:
            if not self.healed.is_set():
                raise LookupError(f"no record for {data!r} yet")
            return {"healed": data}

        def slow(job_id: str, data: Any) -> Any:
            report_progress({"done": 3, "total": 10})
            self.slow_started.set()
            self.release.wait(120)
            return "released"

        for name, handler in (("echo", echo), ("flaky", flaky), ("flaky_bulk", flaky)):
            self.worker.register_job_handler(name, handler)
        self.worker.register_job_handler("slow", slow)

    def done(self, job_id: str) -> str:
        """Wait until the job ended; its state."""
        job = self.client.wait(job_id, 30)
        assert job.state.terminal, f"job {job_id} still {job.state} after 30 s"
        return str(job.state)

    def seed(self) -> Seeded:
        """One job in every state: succeeded, failed (with a traceback), queued,
        scheduled an hour ahead, and running (until the stack stops)."""
        succeeded = [self.client.submit("echo", {"n": n}, key=f"echo-{n}").id for n in range(3)]
        failed = self.client.submit("flaky", {"order": 7}, max_attempts=1).id
        queued = self.client.submit("report", {"month": "2026-11"}).id
        scheduled = self.client.submit("echo", {"later": True}, delay=3600).id
        running = self.client.submit("slow", {"rows": 10}).id
        assert [self.done(job_id) for job_id in succeeded] == ["succeeded"] * 3
        assert self.done(failed) == JobState.FAILED
        assert self.slow_started.wait(30), "the slow job did not start"
        return Seeded(
            succeeded=succeeded,
            failed=failed,
            queued=queued,
            scheduled=scheduled,
            running=running,
        )

    def stop(self) -> None:
        self.release.set()
        self.worker.stop()
        self._thread.join(15)
        self.client.close()
        self.manager.stop()
        assert not self._thread.is_alive(), "the worker did not stop"


@pytest.fixture(scope="module")
def manager_options() -> dict[str, Any]:
    """Keyword arguments of the module's :class:`Manager`; a module overrides this.

    Besides the Manager's own, ``client_token`` and ``worker_token`` are the tokens the
    stack's client and worker use with a manager that asks for them.
    """
    return {}


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, manager_options: dict[str, Any]
) -> Iterator[Stack]:
    """The module's manager and worker."""
    folder = tmp_path_factory.mktemp("dashboard")
    running = Stack(f"sqlite:///{folder / 'jobs.db'}", **manager_options)
    yield running
    running.stop()
