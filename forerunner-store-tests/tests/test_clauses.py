"""The clause catalogue and the contract match one to one.

Every clause has exactly one test named for it, and every test of ``StoreContract``
checks a clause: a clause without a test is a rule nobody checks, and a test without
a clause fails with a message that names nothing.
"""

from __future__ import annotations

import re

import pytest

from forerunner_store_tests import CLAUSES, StoreContract, clauses, test_contract

CONTRACT_TESTS = sorted(name for name in vars(StoreContract) if name.startswith("test_"))


def test_every_clause_has_exactly_one_test() -> None:
    missing = [c for c in CLAUSES if clauses.test_name_for(c) not in CONTRACT_TESTS]
    assert missing == [], f"clauses without a test in StoreContract: {missing}"
    names = [clauses.test_name_for(clause) for clause in CLAUSES]
    assert len(set(names)) == len(names), "two clauses map to one test name"


def test_every_test_is_a_clause() -> None:
    names = {clauses.test_name_for(clause) for clause in CLAUSES}
    extra = [name for name in CONTRACT_TESTS if name not in names]
    assert extra == [], f"StoreContract tests that check no clause: {extra}"


def test_no_test_name_selects_another_with_k() -> None:
    # `pytest -k test_x` matches substrings; each clause must select only its own test.
    for name in CONTRACT_TESTS:
        also = [other for other in CONTRACT_TESTS if other != name and name in other]
        assert also == [], f"-k {name} also selects {also}"


@pytest.mark.parametrize("clause_id", list(CLAUSES))
def test_clause_ids_and_texts_are_well_formed(clause_id: str) -> None:
    assert re.fullmatch(r"store(\.[a-z_]+)+", clause_id), clause_id
    text = CLAUSES[clause_id]
    assert text, clause_id
    assert text == text.strip(), text
    assert not text.endswith("."), text


def test_message_starts_with_the_clause() -> None:
    assert (
        clauses.message("store.counts", "saw 3")
        == f"[store.counts] {CLAUSES['store.counts']}: saw 3"
    )


def test_packaged_class_adds_nothing() -> None:
    packaged = test_contract.TestStoreContract
    assert packaged.__bases__ == (StoreContract,)
    added = [name for name in vars(packaged) if not name.startswith("__")]
    assert added == []
