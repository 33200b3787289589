"""The suite fails every broken queue, naming the clause it breaks, and passes correct ones.

Each test runs the installed suite the way a backend author does, ``pytest --pyargs
forerunner_queue_tests --forerunner-queue URL``, in a subprocess. The backends come
from ``broken_queues.py``, registered through a real ``forerunner`` entry point (a
``*.dist-info`` directory on the subprocess's ``PYTHONPATH``), so the suite's child
processes open them by URL too. Also covered here: the usage errors (no URL, a queue
that is not empty), ``--forerunner-queue-allow-clear``, the environment variable, the
report header, and a subclass that brings its own factory and no URL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Final
from xml.etree import ElementTree

import pytest

from forerunner_queue_tests import clauses
from forerunner_queue_tests.clauses import CLAUSES

pytest_plugins = ["pytester"]

HERE: Final = Path(__file__).parent
#: Each run starts Python, pytest and sometimes spawned children on a two-core machine.
RUN_TIMEOUT: Final = 300.0
#: Enough Hypothesis examples to find the broken model variant every time (measured:
#: 300 found it in 10 of 10 runs, 100 in only 7 of 10), and still a few seconds.
EXAMPLES: Final = "400"

#: Which tests a correct backend runs and skips, by its capabilities.
RANDOM_ONLY: Final = {"queue.pop.random.no_starvation"}
FIFO_ONLY: Final = {"queue.pop.fifo.priority", "queue.pop.fifo.order"}
PROCESSES: Final = {"queue.pop.wake.process", "queue.pop.once.processes", "queue.shared.visible"}
DURABLE: Final = {"queue.durable.reopen"}


def broken_scheme(clause_id: str) -> str:
    """``queue.pop.fifo.order`` -> ``broken-pop-fifo-order``, as broken_queues registers it."""
    return "broken-" + clause_id.removeprefix("queue.").replace(".", "-").replace("_", "-")


def output(result: pytest.RunResult) -> pytest.LineMatcher:
    """stdout and stderr together: where pytest prints a usage error varies by version."""
    return pytest.LineMatcher(result.outlines + result.errlines)


class Suite:
    """Runs the installed suite in a subprocess that sees the test backends."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.path = pytester.path
        self.report = pytester.path / "report.xml"

    def url(self, scheme: str, name: str = "queue.db") -> str:
        """A URL with a file path: the shared backends keep their SQLite file there."""
        return f"{scheme}://{self.path / name}"

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess(
            *("-p", "no:cacheprovider", "-W", "error", f"--junitxml={self.report}", *args),
            timeout=RUN_TIMEOUT,
        )

    def certify(self, url: str, *args: str) -> pytest.RunResult:
        return self.run(
            "--pyargs",
            "forerunner_queue_tests",
            "--forerunner-queue",
            url,
            "--forerunner-queue-examples",
            EXAMPLES,
            *args,
        )

    def skipped(self) -> dict[str, str]:
        """Test name -> skip reason, from the last run's JUnit XML report."""
        cases = ElementTree.parse(self.report).getroot().iter("testcase")
        return {
            case.attrib["name"]: skip.attrib.get("message", "")
            for case in cases
            if (skip := case.find("skipped")) is not None
        }

    def python(self, code: str) -> None:
        """Run ``code`` in a fresh interpreter that sees the test backends."""
        subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)], check=True, timeout=RUN_TIMEOUT
        )


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Suite:
    """A subprocess environment where ``broken_queues`` is an installed forerunner plugin."""
    site = pytester.path / "site"
    dist_info = site / "forerunner_broken_queues-0.0.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: forerunner-broken-queues\nVersion: 0.0.0\n"
    )
    (dist_info / "entry_points.txt").write_text("[forerunner]\nbroken-queues = broken_queues\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(HERE)]))
    monkeypatch.delenv("FORERUNNER_QUEUE_URL", raising=False)
    return Suite(pytester)


@pytest.mark.parametrize("clause_id", sorted(CLAUSES))
def test_broken_queue_fails_naming_its_clause(suite: Suite, clause_id: str) -> None:
    # Given a queue that breaks exactly this clause
    url = suite.url(broken_scheme(clause_id))

    # When the suite's test for the clause runs against it
    result = suite.certify(url, "-k", clauses.test_name_for(clause_id))

    # Then that test fails, and the failure starts with the clause
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"*[[]{clause_id}] {CLAUSES[clause_id]}: *"])


@pytest.mark.parametrize(
    ("scheme", "skipped"),
    [
        pytest.param("ok", RANDOM_ONLY | PROCESSES | DURABLE, id="in-process-fifo"),
        pytest.param("ok+random", FIFO_ONLY | PROCESSES | DURABLE, id="in-process-random"),
        pytest.param("ok+shared", RANDOM_ONLY, id="shared-durable-fifo"),
    ],
)
def test_correct_queue_passes_every_clause(suite: Suite, scheme: str, skipped: set[str]) -> None:
    result = suite.certify(suite.url(scheme))

    result.assert_outcomes(passed=len(CLAUSES) - len(skipped), skipped=len(skipped))
    reasons = suite.skipped()
    assert set(reasons) == {clauses.test_name_for(clause_id) for clause_id in skipped}
    assert all(reasons.values()), f"a skip without a reason: {reasons}"


def test_no_url_is_a_usage_error(suite: Suite) -> None:
    result = suite.run("--pyargs", "forerunner_queue_tests")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output(result).fnmatch_lines(["*--forerunner-queue*FORERUNNER_QUEUE_URL*"])


def test_url_may_come_from_the_environment(suite: Suite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORERUNNER_QUEUE_URL", "ok://")

    result = suite.run("--pyargs", "forerunner_queue_tests", "-k", "test_push_waits")

    result.assert_outcomes(passed=1)


def test_report_header_names_the_backend_and_masks_the_password(suite: Suite) -> None:
    result = suite.certify("ok://user:secret@localhost/", "-k", "test_push_waits")

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "forerunner queue: ok://user:***@localhost/ -> broken_queues.LocalQueue "
            "(forerunner-broken-queues 0.0.0, plugin 'broken-queues')",
        ]
    )
    assert "secret" not in result.stdout.str()


def test_a_queue_holding_entries_stops_the_run_unless_clearing_is_allowed(suite: Suite) -> None:
    # Given a shared queue that already holds three entries
    url = suite.url("ok+shared")
    suite.python(
        f"""
        from forerunner.model import QueueEntry
        from forerunner.plugins import open_queue
        open_queue({url!r}).push([QueueEntry(job_id=str(n), type="t") for n in range(3)])
        """
    )

    # When the suite runs against it, it refuses, naming the queue and the way out
    refused = suite.certify(url, "-k", "test_push_waits")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    output(refused).fnmatch_lines(
        [f"*the queue at {url} holds 3 waiting entries*--forerunner-queue-allow-clear*"]
    )

    # Unless told it may clear the queue
    allowed = suite.certify(url, "-k", "test_push_waits", "--forerunner-queue-allow-clear")
    allowed.assert_outcomes(passed=1)

    # And it leaves the queue empty, so the next run needs no permission
    again = suite.certify(url, "-k", "test_push_waits")
    again.assert_outcomes(passed=1)


def test_subclass_with_its_own_factory_needs_no_url(suite: Suite) -> None:
    suite.pytester.makepyfile(
        test_my_queue="""
        from __future__ import annotations

        import pytest

        from broken_queues import FileQueue
        from forerunner_queue_tests import QueueContract


        class TestMyQueue(QueueContract):
            @pytest.fixture
            def forerunner_queue_factory(self, tmp_path):
                opened = []

                def factory():
                    opened.append(FileQueue(str(tmp_path / "queue.db")))
                    return opened[-1]

                yield factory
                for queue in opened:
                    queue.close()
        """
    )

    result = suite.run("--forerunner-queue-examples", EXAMPLES)

    skipped = RANDOM_ONLY | PROCESSES
    result.assert_outcomes(passed=len(CLAUSES) - len(skipped), skipped=len(skipped))
    reasons = suite.skipped()
    assert set(reasons) == {clauses.test_name_for(clause_id) for clause_id in skipped}
    for clause_id in PROCESSES:
        assert "no URL for other processes" in reasons[clauses.test_name_for(clause_id)]
