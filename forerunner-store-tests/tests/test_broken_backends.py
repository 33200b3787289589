"""The suite fails a store that breaks a clause, naming it, and passes a correct one.

Each clause has a variant of the test store in ``broken_stores.py`` that breaks that
clause alone; running the packaged suite against it, selected with ``-k``, must fail
and print ``[<clause id>]``. That is the only proof the suite can fail. The same runs
cover how the suite is used: the URL from the option or the environment, the usage
error without one, the refusal to clear a store that holds jobs, subclassing without a
URL, and the report header.

The test store is installed as a real forerunner plugin (a ``*.dist-info`` directory on
``PYTHONPATH``), so the suite's child processes resolve its URLs as a stranger's would.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from forerunner.model import Job
from forerunner_store_tests import clauses
from forerunner_store_tests.clauses import CLAUSES

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

pytest_plugins = ["pytester"]

BROKEN_STORES: Final = Path(__file__).with_name("broken_stores.py")
#: Model examples for runs that are not about the model: a few suffice to pass.
EXAMPLES: Final = "15"
#: Model examples for the run that must find the model-only bug: it needs some luck.
MODEL_EXAMPLES: Final = "100"
RUN_SECONDS: Final = 300


def _load_broken_stores() -> ModuleType:
    spec = importlib.util.spec_from_file_location("broken_stores", BROKEN_STORES)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("broken_stores", module)
    spec.loader.exec_module(module)
    return module


broken_stores = _load_broken_stores()


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory that installs ``broken_stores`` as a forerunner plugin when on the path."""
    root = tmp_path_factory.mktemp("broken-plugin")
    shutil.copy(BROKEN_STORES, root / "broken_stores.py")
    info = root / "broken_stores-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-stores\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[forerunner]\nbroken = broken_stores\n")
    return root


@pytest.fixture
def run_suite(
    pytester: pytest.Pytester, plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., pytest.RunResult]:
    """Run pytest in a child process with the test store installed."""
    paths = [str(plugin_dir), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, paths)))
    monkeypatch.delenv("FORERUNNER_STORE_URL", raising=False)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)

    def run(*args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=RUN_SECONDS)

    return run


def _url(pytester: pytest.Pytester, scheme: str, name: str = "store.db") -> str:
    return f"{scheme}://{pytester.path / name}"


def _output(result: pytest.RunResult) -> str:
    return result.stdout.str() + "\n" + result.stderr.str()


@pytest.mark.parametrize("clause_id", list(CLAUSES))
def test_broken_store_fails_naming_the_clause(
    clause_id: str, pytester: pytest.Pytester, run_suite: Callable[..., pytest.RunResult]
) -> None:
    # Given a store that breaks exactly this clause
    url = _url(pytester, broken_stores.scheme_for(clause_id))
    # When the clause's test runs against it
    result = run_suite(
        "--pyargs",
        "forerunner_store_tests",
        "--forerunner-store",
        url,
        "--forerunner-store-examples",
        MODEL_EXAMPLES if clause_id == "store.model.reference" else EXAMPLES,
        "-k",
        clauses.test_name_for(clause_id),
    )
    # Then the run fails, and the failure names the clause
    output = _output(result)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output
    assert f"[{clause_id}]" in output, output
    result.assert_outcomes(failed=1)


def test_correct_store_passes_every_clause(
    pytester: pytest.Pytester, run_suite: Callable[..., pytest.RunResult]
) -> None:
    result = run_suite(
        "--pyargs",
        "forerunner_store_tests",
        "--forerunner-store",
        _url(pytester, broken_stores.SCHEME),
        "--forerunner-store-examples",
        EXAMPLES,
    )
    assert result.ret == pytest.ExitCode.OK, _output(result)
    result.assert_outcomes(passed=len(CLAUSES))


def test_url_from_the_environment(
    pytester: pytest.Pytester,
    run_suite: Callable[..., pytest.RunResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FORERUNNER_STORE_URL", _url(pytester, broken_stores.SCHEME))
    result = run_suite("--pyargs", "forerunner_store_tests", "-k", "test_get_unknown")
    assert result.ret == pytest.ExitCode.OK, _output(result)
    result.assert_outcomes(passed=1)


def test_no_url_is_a_usage_error(run_suite: Callable[..., pytest.RunResult]) -> None:
    # When the suite runs without a URL
    result = run_suite("--pyargs", "forerunner_store_tests")
    # Then it stops before any test, saying both ways to give one
    output = _output(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    assert "--forerunner-store" in output, output
    assert "FORERUNNER_STORE_URL" in output, output


def test_store_with_jobs_is_refused_unless_clearing_is_allowed(
    pytester: pytest.Pytester, run_suite: Callable[..., pytest.RunResult]
) -> None:
    # Given a store that already holds a job
    url = _url(pytester, broken_stores.SCHEME)
    store = broken_stores.FileStore.from_url(url)
    store.add([Job(id="0190a000-0000-7000-8000-000000000001", type="precious")])
    store.close()
    # When the suite runs against it, then it stops with a usage error naming the way out
    refused = run_suite("--pyargs", "forerunner_store_tests", "--forerunner-store", url)
    output = _output(refused)
    assert refused.ret == pytest.ExitCode.USAGE_ERROR, output
    assert "holds 1 jobs" in output, output
    assert url in output, output
    assert "--forerunner-store-allow-clear" in output, output
    kept = broken_stores.FileStore.from_url(url)
    assert kept.counts() == {("precious", "queued"): 1}
    kept.close()
    # When clearing is allowed, then it runs and leaves the store empty
    allowed = run_suite(
        "--pyargs",
        "forerunner_store_tests",
        "--forerunner-store",
        url,
        "--forerunner-store-allow-clear",
        "-k",
        "test_get_unknown or test_counts",
    )
    assert allowed.ret == pytest.ExitCode.OK, _output(allowed)
    allowed.assert_outcomes(passed=2)
    emptied = broken_stores.FileStore.from_url(url)
    assert emptied.counts() == {}
    emptied.close()


def test_subclass_overriding_the_factory_needs_no_url(
    pytester: pytest.Pytester, run_suite: Callable[..., pytest.RunResult]
) -> None:
    # Given a backend author's own subclass that builds the store itself
    pytester.makepyfile(
        test_mine="""
        from __future__ import annotations

        import pytest

        from forerunner_store_tests import StoreContract
        from forerunner_store_tests.model import ReferenceStore


        class TestMyStore(StoreContract):
            @pytest.fixture
            def forerunner_store_factory(self):
                return ReferenceStore
        """
    )
    # When it runs without any URL
    result = run_suite("--forerunner-store-examples", EXAMPLES, "-rs")
    # Then every clause passes, and those the store cannot do skip with a reason
    output = _output(result)
    assert result.ret == pytest.ExitCode.OK, output
    result.assert_outcomes(passed=len(CLAUSES) - 3, skipped=3)
    assert "ReferenceStore.shared is False" in output, output
    assert "ReferenceStore.durable is False" in output, output


def test_subclass_with_a_url_runs_the_process_clauses(
    pytester: pytest.Pytester, run_suite: Callable[..., pytest.RunResult]
) -> None:
    # Given a subclass that names its store by URL and opens it itself
    url = _url(pytester, broken_stores.SCHEME)
    pytester.makepyfile(
        test_mine=f"""
        from __future__ import annotations

        import pytest
        from broken_stores import FileStore

        from forerunner_store_tests import StoreContract


        class TestMyStore(StoreContract):
            @pytest.fixture
            def forerunner_store_url(self):
                return {url!r}

            @pytest.fixture
            def forerunner_store_factory(self, forerunner_store_url):
                opened = []

                def factory():
                    opened.append(FileStore.from_url(forerunner_store_url))
                    return opened[-1]

                yield factory
                for store in opened:
                    store.close()
        """
    )
    # When the process and durability clauses run, then they pass
    result = run_suite("-k", "processes or shared or durable")
    assert result.ret == pytest.ExitCode.OK, _output(result)
    result.assert_outcomes(passed=3)


def test_report_header_names_the_backend(
    run_suite: Callable[..., pytest.RunResult],
) -> None:
    # When the suite is collected with a URL that carries a password
    url = "filestore://user:s3cret@localhost/tmp/header.db"
    result = run_suite("--pyargs", "forerunner_store_tests", "--forerunner-store", url, "--co")
    # Then the header shows the URL masked, the backend class and its distribution
    output = _output(result)
    assert result.ret == pytest.ExitCode.OK, output
    assert "s3cret" not in output, output
    assert (
        "forerunner store: filestore://user:***@localhost/tmp/header.db -> "
        "broken_stores.FileStore (broken-stores 0.1, plugin 'broken')"
    ) in output, output


def test_report_header_names_an_unknown_scheme(
    run_suite: Callable[..., pytest.RunResult],
) -> None:
    result = run_suite(
        "--pyargs", "forerunner_store_tests", "--forerunner-store", "nosuch://x", "--co"
    )
    output = _output(result)
    assert "forerunner store: nosuch://x -> not available: no store backend" in output, output
