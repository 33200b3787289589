"""The in-process store ``memory://`` (MemoryStore).

Covers what the store conformance suite does not: the URL it accepts, that each opening
is a new store, and its JSON copy behaviour, which makes it answer like a durable store
(no object shared with the caller in either direction, values normalised by a JSON
round trip), bad input refused without storing part of a batch, and the indexes
agreeing with the jobs after many transitions. The Store contract itself is certified
by ``pytest --pyargs forerunner_store_tests --forerunner-store memory://``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest

from forerunner.backends.memory_store import MemoryStore
from forerunner.errors import BackendError, ConfigurationError, ValidationError
from forerunner.ids import new_id
from forerunner.model import Job, JobState, Report
from forerunner.plugins import open_store
from forerunner.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterator

NOW = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    made = MemoryStore()
    yield made
    made.close()


def make_job(**fields: Any) -> Job:
    values: dict[str, Any] = {"id": new_id(), "type": "alpha", "created_at": NOW}
    return Job(**(values | fields))


def test_capabilities() -> None:
    assert (MemoryStore.durable, MemoryStore.shared) == (False, False)
    assert isinstance(MemoryStore(), Store)


def test_from_url_accepts_exactly_memory() -> None:
    assert type(open_store("memory://")) is MemoryStore


@pytest.mark.parametrize("url", ["memory://jobs", "memory:///tmp/x", "memory://?x=1"])
def test_from_url_refuses_anything_after_the_scheme(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"write exactly memory://"):
        MemoryStore.from_url(url)


def test_each_opening_is_a_new_store() -> None:
    first, second = MemoryStore.from_url("memory://"), MemoryStore.from_url("memory://")

    first.add([make_job()])

    assert (len(first.list()), len(second.list())) == (1, 0)


def test_mutating_what_was_added_changes_nothing_stored(store: MemoryStore) -> None:
    # Given a job added with nested data
    data: dict[str, Any] = {"items": [1, 2], "meta": {"k": "v"}}
    job = make_job(data=data)
    store.add([job])

    # When the caller mutates the object it passed in
    data["items"].append(3)
    data["meta"]["k"] = "changed"

    # Then the stored job still holds what was added
    stored = store.get(job.id)
    assert stored is not None
    assert stored.data == {"items": [1, 2], "meta": {"k": "v"}}


def test_mutating_what_was_returned_changes_nothing_stored(store: MemoryStore) -> None:
    # Given a job, and the copies add and get returned
    job = make_job(data={"items": [1]})
    (added,) = store.add([job])
    got = store.get(job.id)
    assert got is not None

    # When the caller mutates them
    added.data["items"].append("from add")
    got.data["items"].append("from get")

    # Then the store still answers with what was added
    again = store.get(job.id)
    assert again is not None
    assert again.data == {"items": [1]}


def test_values_come_back_as_their_json_round_trip(store: MemoryStore) -> None:
    # Given data, progress and a result that JSON cannot keep as they are
    job = make_job(data={"tuple": (1, 2), "int key": {1: "one"}, "nested": [("a", None)]})
    (added,) = store.add([job])
    store.claim([job.id], "w", NOW, NOW + dt.timedelta(seconds=30))
    store.progress(job.id, 1, ("half", 0.5))
    (finished,) = store.finish(
        [Report(job_id=job.id, attempt=1, state=JobState.SUCCEEDED, now=NOW, result=(True,))]
    )

    # Then each comes back as JSON would return it, from add, get and finish alike
    expected = {"tuple": [1, 2], "int key": {"1": "one"}, "nested": [["a", None]]}
    assert added.data == expected
    assert finished is not None
    assert finished.data == expected
    assert finished.progress == ["half", 0.5]
    assert finished.result == [True]
    assert store.get(job.id) == finished


def test_data_that_is_not_json_is_refused_and_nothing_stored(store: MemoryStore) -> None:
    good = make_job()
    bad = make_job(data={"when": NOW})

    with pytest.raises(ValidationError, match="data is not JSON") as raised:
        store.add([good, bad])

    assert raised.value.field == "data"
    assert store.counts() == {}


def test_progress_that_is_not_json_is_refused(store: MemoryStore) -> None:
    job = make_job()
    store.add([job])
    store.claim([job.id], "w", NOW, NOW + dt.timedelta(seconds=30))

    with pytest.raises(ValidationError, match="progress is not JSON"):
        store.progress(job.id, 1, {1, 2})


def test_a_reused_id_is_refused_and_nothing_stored(store: MemoryStore) -> None:
    # Given a stored job
    stored = make_job()
    store.add([stored])

    # When a batch holds a new job and one reusing the stored id
    fresh = make_job()
    with pytest.raises(ValidationError, match="already stored") as raised:
        store.add([fresh, make_job(id=stored.id, type="beta")])

    # Then neither is stored
    assert raised.value.field == "id"
    assert store.get(fresh.id) is None
    assert store.counts() == {("alpha", JobState.QUEUED): 1}


def test_an_id_repeated_in_a_batch_is_refused(store: MemoryStore) -> None:
    job = make_job()

    with pytest.raises(ValidationError, match="repeated in the batch"):
        store.add([job, job])
    assert store.counts() == {}


def test_a_duplicate_key_does_not_need_a_new_id(store: MemoryStore) -> None:
    """A job skipped for its key is not inserted, so its id cannot clash."""
    first = make_job(key="k")

    result = store.add([first, make_job(id=first.id, key="k", type="beta")])

    assert result == [first, first]


def test_indexes_follow_every_transition(store: MemoryStore) -> None:
    # Given jobs driven through claim, finish, reclaim, cancel, retry, promote and purge
    jobs = [make_job(type="alpha" if n % 2 else "beta") for n in range(6)]
    store.add(jobs)
    lease = NOW + dt.timedelta(seconds=10)
    store.claim([j.id for j in jobs[:4]], "w", NOW, lease)
    store.finish(
        [
            Report(job_id=jobs[0].id, attempt=1, state=JobState.SUCCEEDED, now=NOW),
            Report(
                job_id=jobs[1].id,
                attempt=1,
                state=JobState.SCHEDULED,
                now=NOW,
                run_at=NOW + dt.timedelta(seconds=5),
            ),
        ]
    )
    store.reclaim_expired(lease + dt.timedelta(seconds=1), 10)
    store.cancel(jobs[4].id, NOW)
    store.retry(jobs[4].id, NOW)
    store.promote_due(NOW + dt.timedelta(seconds=5), 10)
    store.purge(NOW + dt.timedelta(seconds=1), 10)

    # Then counts, queued and list by state agree with the jobs themselves
    everything = store.list(limit=100)
    by_pair: dict[tuple[str, JobState], int] = {}
    for job in everything:
        by_pair[job.type, job.state] = by_pair.get((job.type, job.state), 0) + 1
    assert store.counts() == by_pair
    assert store.queued(100) == sorted(
        (j for j in everything if j.state is JobState.QUEUED), key=lambda j: j.id
    )
    for state in JobState:
        assert store.list(state=state) == [j for j in everything if j.state is state]
    assert jobs[0].id not in {j.id for j in everything}


def test_close_drops_the_jobs_and_refuses_further_calls() -> None:
    store = MemoryStore()
    store.add([make_job()])

    store.close()
    store.close()

    with pytest.raises(BackendError, match="is closed"):
        store.counts()
