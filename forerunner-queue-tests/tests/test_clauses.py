"""The clause catalogue, the contract class and the queue Protocol agree.

Every clause has exactly one contract test, named for it; every test of
``QueueContract`` checks a clause; every clause id that ``forerunner.queue`` cites is
in the catalogue. A clause without a test would be a rule nobody checks; a test
without a clause would fail with a message that names nothing.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys

import forerunner.queue
import forerunner_queue_tests
from forerunner_queue_tests import clauses, test_contract
from forerunner_queue_tests.clauses import CLAUSES
from forerunner_queue_tests.contract import QueueContract


def contract_tests() -> set[str]:
    return {name for name in dir(QueueContract) if name.startswith("test_")}


def test_every_clause_has_one_contract_test() -> None:
    named = [clauses.test_name_for(clause) for clause in CLAUSES]

    assert len(set(named)) == len(named), "two clauses map to one test name"
    missing = sorted(set(named) - contract_tests())
    assert not missing, f"clauses without a contract test: {missing}"


def test_every_contract_test_is_a_clause() -> None:
    named = {clauses.test_name_for(clause) for clause in CLAUSES}

    strays = sorted(contract_tests() - named)

    assert not strays, f"contract tests that check no clause: {strays}"


def test_every_clause_cited_by_the_protocol_is_catalogued() -> None:
    brackets = re.findall(r"\[(queue\.[a-z_.,\s]+)\]", inspect.getsource(forerunner.queue))
    cited = {c.strip() for inside in brackets for c in inside.split(",")}

    assert cited, "forerunner.queue cites no clause ids; the pattern is out of date"
    assert cited <= set(CLAUSES), f"cited but not catalogued: {sorted(cited - set(CLAUSES))}"


def test_message_starts_with_the_clause() -> None:
    text = clauses.message("queue.pop.fifo.order", "popped [b] expected [a]")

    assert (
        text == f"[queue.pop.fifo.order] {CLAUSES['queue.pop.fifo.order']}: popped [b] expected [a]"
    )


def test_package_exports_the_contract_and_catalogue() -> None:
    assert forerunner_queue_tests.QueueContract is QueueContract
    assert forerunner_queue_tests.CLAUSES is CLAUSES
    assert set(forerunner_queue_tests.__all__) == {"CLAUSES", "QueueContract"}


def test_packaged_test_class_only_opts_in() -> None:
    """``TestQueueContract`` adds nothing, so the packaged run is exactly the contract."""
    cls = test_contract.TestQueueContract

    assert cls.__bases__ == (QueueContract,)
    assert not [name for name in vars(cls) if name.startswith("test_")]


def test_plugin_imports_nothing_heavy() -> None:
    """The pytest11 plugin loads in every pytest run of the environment (style guide §3.1)."""
    heavy = ["hypothesis", "forerunner.plugins", "forerunner_queue_tests.contract"]
    probe = (
        "import sys, forerunner_queue_tests.plugin; "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )

    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()

    assert loaded == "[]", f"importing the plugin imported {loaded}"
