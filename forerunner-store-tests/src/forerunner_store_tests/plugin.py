"""The pytest plugin of the store conformance suite (the ``pytest11`` entry point).

pytest loads this module in every run of an environment where forerunner-store-tests is
installed, so it imports nothing heavy at module level: backends, hypothesis and the
contract load only inside the fixtures and hooks that need them (style guide §3.1).

It adds the ``--forerunner-store`` options, the fixtures the contract uses, a report
header naming the backend under test, and a usage error when the suite's own tests are
collected without a store URL.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from forerunner_store_tests import clauses

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator

    from forerunner.store import Store

__all__ = [
    "DEFAULT_EXAMPLES",
    "forerunner_store",
    "forerunner_store_factory",
    "forerunner_store_url",
]

pytest.register_assert_rewrite(
    "forerunner_store_tests.contract",
    "forerunner_store_tests.checks",
    "forerunner_store_tests.stateful",
    "forerunner_store_tests.model",
)

#: Stateful examples per run: about six seconds on ``sqlite://`` on a two-core machine,
#: so that the whole suite stays well under a minute there.
DEFAULT_EXAMPLES: Final = 300

URL_ENV: Final = "FORERUNNER_STORE_URL"
_CONTRACT_MODULE: Final = Path(__file__).with_name("test_contract.py").resolve()
_checked_empty = pytest.StashKey[set[str]]()
_TEST_TO_CLAUSE: Final = {clauses.test_name_for(clause): clause for clause in clauses.CLAUSES}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("forerunner-store-tests", "forerunner store conformance suite")
    group.addoption(
        "--forerunner-store",
        dest="forerunner_store",
        metavar="URL",
        default=os.environ.get(URL_ENV) or None,
        help=f"URL of the store to certify, e.g. sqlite:///tmp/x.db (default: ${URL_ENV}).",
    )
    group.addoption(
        "--forerunner-store-allow-clear",
        dest="forerunner_store_allow_clear",
        action="store_true",
        default=False,
        help="Run even when the store already holds jobs; the suite deletes every one of them.",
    )
    group.addoption(
        "--forerunner-store-examples",
        dest="forerunner_store_examples",
        metavar="N",
        type=int,
        default=DEFAULT_EXAMPLES,
        help=f"Hypothesis examples of the stateful model test (default: {DEFAULT_EXAMPLES}).",
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    url = _configured_url(config)
    if url is None:
        return []
    from forerunner.plugins import get_registry
    from forerunner.urls import mask_password

    backend = get_registry().describe_backend("store", url)
    return [f"forerunner store: {mask_password(url)} -> {backend}"]


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Refuse to run the packaged contract without a store, as a usage error.

    Raised here rather than in a fixture so that the run stops with exit code 4 and one
    message instead of erroring every test. A subclass in the user's own module that
    overrides ``forerunner_store_factory`` needs no URL and is not affected.
    """
    if _configured_url(config) is not None:
        return
    if any(item.path.resolve() == _CONTRACT_MODULE for item in items):
        raise pytest.UsageError(
            "forerunner-store-tests: no store to certify; pass --forerunner-store URL "
            f"or set {URL_ENV}, e.g. --forerunner-store sqlite:///tmp/forerunner-test.db"
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Name the clause when a backend raises instead of answering.

    A failed assertion already starts with its clause; an exception from the backend
    (a SQL error, a ``KeyError``) would otherwise show only a traceback, and design §6
    wants every failure to name the clause it breaks.
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
            clauses.message(clause, f"the store raised {type(error).__name__}: {error}")
        ) from error


@pytest.fixture
def forerunner_store_url(pytestconfig: pytest.Config) -> str | None:
    """The URL of the store under test, or None when none was configured.

    Child processes open the store from this URL; override it together with
    ``forerunner_store_factory`` to run the multi-process clauses without the option.
    """
    return _configured_url(pytestconfig)


@pytest.fixture
def forerunner_store_factory(forerunner_store_url: str | None) -> Iterator[Callable[[], Store]]:
    """A callable that opens the store under test anew on each call.

    Override this fixture in a subclass of
    :class:`~forerunner_store_tests.StoreContract` to certify a store without a URL.
    Every store it opened is closed at teardown, including one a test closed already,
    so ``close()`` must be harmless on a closed store.
    """
    from forerunner.plugins import open_store

    opened: list[Store] = []

    def factory() -> Store:
        if forerunner_store_url is None:
            pytest.fail(
                "no store to test: pass --forerunner-store URL, set "
                f"{URL_ENV}, or override the forerunner_store_factory fixture",
                pytrace=False,
            )
        store = open_store(forerunner_store_url)
        opened.append(store)
        return store

    yield factory
    for store in reversed(opened):
        store.close()


@pytest.fixture
def forerunner_store(
    forerunner_store_factory: Callable[[], Store],
    forerunner_store_url: str | None,
    pytestconfig: pytest.Config,
) -> Iterator[Store]:
    """The store under test, empty; cleared again after the test.

    The first time a session meets a store it checks that the store is empty before
    clearing anything, and stops the run if it is not: the URL may point at someone's
    real jobs. ``--forerunner-store-allow-clear`` waives the check.
    """
    store = forerunner_store_factory()
    if not pytestconfig.getoption("forerunner_store_allow_clear"):
        _check_empty_once(store, forerunner_store_url, pytestconfig)
    store.clear()
    yield store
    store.clear()


def _configured_url(config: pytest.Config) -> str | None:
    url: str | None = config.getoption("forerunner_store")
    return url or None


def _check_empty_once(store: Store, url: str | None, config: pytest.Config) -> None:
    from forerunner.urls import mask_password

    kind = type(store)
    where = (
        f"the store at {mask_password(url)}"
        if url is not None
        else f"the store from forerunner_store_factory ({kind.__module__}.{kind.__qualname__})"
    )
    checked = config.stash.setdefault(_checked_empty, set())
    if where in checked:
        return
    held = sum(store.counts().values())
    if held:
        pytest.exit(
            f"{where} holds {held} jobs, and the suite clears the store before every test. "
            "Point it at an empty store, or pass --forerunner-store-allow-clear to let the "
            "suite delete them.",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )
    checked.add(where)


def _clause_of(item: pytest.Item) -> str | None:
    """The clause a contract test checks; None for every other test of the session."""
    contract = sys.modules.get("forerunner_store_tests.contract")
    if contract is None or not isinstance(item, pytest.Function) or item.cls is None:
        return None
    if not issubclass(item.cls, contract.StoreContract):
        return None
    return _TEST_TO_CLAUSE.get(item.originalname)
