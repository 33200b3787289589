"""The pytest plugin of the queue suite: options, report header and fixtures.

It is the ``pytest11`` entry point, because a conftest inside the installed package
would register ``--forerunner-queue`` too late under ``--pyargs``. It loads in every
pytest run of an environment that has the suite installed, so it imports nothing
heavy at module level: the backend registry, Hypothesis and the contract are imported
only when a fixture or hook needs them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from forerunner_queue_tests import clauses

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator

    from forerunner.queue import Queue

# Before the modules are imported anywhere: their asserts carry the clause messages.
pytest.register_assert_rewrite(
    "forerunner_queue_tests.checks",
    "forerunner_queue_tests.contract",
    "forerunner_queue_tests.stateful",
    "forerunner_queue_tests._processes",
)

URL_ENV: Final = "FORERUNNER_QUEUE_URL"
#: Stateful examples per run: about two seconds on ``memory://``. Fewer miss sequence
#: bugs: 100 examples found a push-after-remove bug in only 7 runs of 10, 300 in 10 of 10.
DEFAULT_EXAMPLES: Final = 300

_CONTRACT_MODULE: Final = Path(__file__).with_name("test_contract.py").resolve()
_checked_empty = pytest.StashKey[set[str]]()
_TEST_TO_CLAUSE: Final = {clauses.test_name_for(clause): clause for clause in clauses.CLAUSES}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("forerunner-queue-tests", "forerunner queue conformance suite")
    group.addoption(
        "--forerunner-queue",
        metavar="URL",
        default=os.environ.get(URL_ENV) or None,
        help=f"URL of the queue backend to certify (default: ${URL_ENV}), e.g. memory://",
    )
    group.addoption(
        "--forerunner-queue-allow-clear",
        action="store_true",
        default=False,
        help="let the suite delete entries that are already waiting in the queue",
    )
    group.addoption(
        "--forerunner-queue-examples",
        metavar="N",
        type=int,
        default=DEFAULT_EXAMPLES,
        help=f"Hypothesis examples for the stateful model test (default: {DEFAULT_EXAMPLES})",
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    url = _configured_url(config)
    if url is None:
        return []
    from forerunner.plugins import get_registry
    from forerunner.urls import mask_password

    backend = get_registry().describe_backend("queue", url)
    return [f"forerunner queue: {mask_password(url)} -> {backend}"]


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Refuse to run the packaged contract without a backend, as a usage error.

    Raised here rather than in a fixture so that the run stops with exit code 4 and one
    message, instead of erroring every test. A subclass in the user's own module that
    overrides ``forerunner_queue_factory`` needs no URL and is not affected.
    """
    if _configured_url(config) is not None:
        return
    if any(item.path.resolve() == _CONTRACT_MODULE for item in items):
        raise pytest.UsageError(
            "forerunner-queue-tests needs the queue to certify: pass --forerunner-queue URL "
            f"or set {URL_ENV}, e.g. --forerunner-queue memory://"
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Name the clause when a backend raises instead of answering.

    A failed assertion already starts with its clause; an exception from the backend
    (a driver error, a ``KeyError``) would otherwise show only a traceback, and design
    §6 wants every failure to name the clause it breaks.
    """
    try:
        return (yield)
    except AssertionError:
        raise
    except Exception as error:
        clause = _clause_of(item)
        if clause is None:
            raise
        raise AssertionError(
            clauses.message(clause, f"the queue raised {type(error).__name__}: {error}")
        ) from error


@pytest.fixture
def forerunner_queue_url(pytestconfig: pytest.Config) -> str | None:
    """The URL of the queue under test, or None when none was configured.

    Child processes open the backend from this URL; override it together with
    ``forerunner_queue_factory`` to run the multi-process clauses without the option.
    """
    return _configured_url(pytestconfig)


@pytest.fixture
def forerunner_queue_factory(
    forerunner_queue_url: str | None,
) -> Iterator[Callable[[], Queue]]:
    """A callable that opens the queue under test anew on every call.

    Every queue it opened is closed at teardown, including one the test closed itself,
    so ``close()`` must tolerate a second call. Override this fixture to certify a
    backend without going through a URL.
    """
    from forerunner.plugins import open_queue

    opened: list[Queue] = []

    def factory() -> Queue:
        if forerunner_queue_url is None:
            pytest.fail(
                "no queue to test: pass --forerunner-queue URL, set "
                f"{URL_ENV}, or override the forerunner_queue_factory fixture",
                pytrace=False,
            )
        queue = open_queue(forerunner_queue_url)
        opened.append(queue)
        return queue

    yield factory
    for queue in reversed(opened):
        queue.close()


@pytest.fixture
def forerunner_queue(
    forerunner_queue_factory: Callable[[], Queue],
    forerunner_queue_url: str | None,
    pytestconfig: pytest.Config,
) -> Iterator[Queue]:
    """The queue under test, empty; cleared again after the test.

    The first time a session meets a backend it checks that the backend is empty
    before clearing anything, and stops the run if it is not: the URL may point at
    someone's real queue. ``--forerunner-queue-allow-clear`` waives the check.
    """
    queue = forerunner_queue_factory()
    if not pytestconfig.getoption("forerunner_queue_allow_clear"):
        _check_empty_once(queue, forerunner_queue_url, pytestconfig)
    queue.clear()
    yield queue
    queue.clear()


def _configured_url(config: pytest.Config) -> str | None:
    url: str | None = config.getoption("forerunner_queue")
    return url or None


def _check_empty_once(queue: Queue, url: str | None, config: pytest.Config) -> None:
    from forerunner.urls import mask_password

    kind = type(queue)
    where = (
        f"the queue at {mask_password(url)}"
        if url is not None
        else f"the queue from forerunner_queue_factory ({kind.__module__}.{kind.__qualname__})"
    )
    checked = config.stash.setdefault(_checked_empty, set())
    if where in checked:
        return
    waiting = queue.size()
    if waiting:
        pytest.exit(
            f"{where} holds {waiting} waiting entries, and the suite clears the queue before "
            "every test. Point it at an empty queue, or pass --forerunner-queue-allow-clear "
            "to let the suite delete them.",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )
    checked.add(where)


def _clause_of(item: pytest.Item) -> str | None:
    if not isinstance(item, pytest.Function) or item.cls is None:
        return None
    from forerunner_queue_tests.contract import QueueContract

    if not issubclass(item.cls, QueueContract):
        return None
    return _TEST_TO_CLAUSE.get(item.originalname)
