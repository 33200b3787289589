"""The queue contract as tests: one test per clause of :mod:`forerunner_queue_tests.clauses`.

``QueueContract`` has no ``Test`` prefix, so pytest collects it only through a subclass:
this package's ``test_contract.py`` (which runs it against ``--forerunner-queue URL``)
or a backend author's own ``class TestMyQueue(QueueContract)`` that overrides the
``forerunner_queue_factory`` fixture. The class and test names are public API: a test
is named for its clause (``queue.pop.fifo.order`` is ``test_pop_fifo_order``), so
``pytest -k`` selects a clause and renaming one breaks every subclasser.

Tests skip only for a capability the backend declares it lacks (``ordering``,
``shared``, ``durable``), never because a service does not answer.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from typing import TYPE_CHECKING, Final, cast

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from forerunner.model import QueueEntry
from forerunner_queue_tests import _processes
from forerunner_queue_tests.checks import (
    check,
    check_entries,
    check_same_entries,
    check_size,
    entries,
    fail,
    run_with_deadline,
    show,
)
from forerunner_queue_tests.stateful import QueueMachine

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from forerunner.queue import Queue

__all__ = ["QueueContract"]

#: Bound for "returns at once": generous, since a network round trip on a loaded CI
#: machine is still far below it, while a backend that waits instead exceeds it.
AT_ONCE: Final = 1.0
#: Bound for "well under a second" after a push wakes a blocked pop.
WAKE: Final = 1.0
#: How long a blocking call may take before the suite calls it stuck.
STUCK: Final = 15.0

#: Ids, types and priorities a backend must hand back exactly. Priorities are promised
#: for every int in [-2**53, 2**53]: the integers a double represents exactly, so
#: that backends which score entries with floats (Redis sorted sets) can conform.
EDGE_IDS: Final = (
    "job-😀",
    "作业-一",
    "e\u0301-combining",
    "line\nbreak",
    "tab\there",
    "quote\"s and 'apostrophes'",
    "colon:sep|pipe;semi,comma{json}",
    "  spaced  ",
    "x" * 1000,
)
EDGE_TYPES: Final = ("tâche", "タスク", "🚀", "type with spaces", "dotted.type:colon")
EDGE_PRIORITIES: Final = (0, 1, -1, 2**31, -(2**31) - 1, 2**53, -(2**53), 2**53 - 1)


def _require_ordering(queue: Queue, ordering: str) -> None:
    if queue.ordering != ordering:
        pytest.skip(f"the backend's ordering is {queue.ordering!r}; the clause is for {ordering!r}")


def _require_shared(queue: Queue, url: str | None) -> str:
    if not queue.shared:
        pytest.skip("the backend is not shared (shared = False): other processes cannot see it")
    if url is None:
        pytest.skip(
            "no URL for other processes to open: pass --forerunner-queue URL, set "
            "FORERUNNER_QUEUE_URL, or override the forerunner_queue_url fixture"
        )
    return url


def _is_fifo(queue: Queue) -> bool:
    return queue.ordering == "fifo"


def _check_popped(
    clause_id: str,
    queue: Queue,
    popped: Sequence[QueueEntry],
    expected: Sequence[QueueEntry],
    context: str,
) -> None:
    """In ``expected``'s order for a fifo queue; as a multiset for a random one."""
    if _is_fifo(queue):
        check_entries(clause_id, popped, expected, context)
    else:
        check_same_entries(clause_id, popped, expected, context)


def _check_exactly_once(
    clause_id: str, pushed: Sequence[QueueEntry], popped: Sequence[str], how: str
) -> None:
    counts = collections.Counter(popped)
    repeated = sorted(job_id for job_id, n in counts.items() if n > 1)
    lost = sorted({e.job_id for e in pushed} - set(counts))
    check(
        clause_id,
        not repeated and not lost,
        f"{len(pushed)} entries pushed, popped by {how}: {len(repeated)} popped more than "
        f"once (first: {repeated[:5]!r}), {len(lost)} never popped (first: {lost[:5]!r})",
    )


class QueueContract:
    """Every clause of the queue contract (design §4), one test each.

    Subclass it in a module named ``test_*.py`` as ``class TestMyQueue(QueueContract)``;
    override ``forerunner_queue_factory`` to hand the suite your backend without a URL.
    """

    def test_push_waits(self, forerunner_queue: Queue) -> None:
        clause = "queue.push.waits"
        entry = QueueEntry(job_id="waits-0", type="alpha")

        forerunner_queue.push([entry])

        check_size(clause, forerunner_queue, None, 1)
        check_size(clause, forerunner_queue, ["alpha"], 1)
        popped = forerunner_queue.pop(["alpha"], 1, 0.0)
        check_entries(clause, popped, [entry], "pop(['alpha']) after pushing one entry")

    def test_push_batch(self, forerunner_queue: Queue) -> None:
        clause = "queue.push.batch"
        batch = entries("batch", 5)

        forerunner_queue.push(batch)

        check_size(clause, forerunner_queue, None, len(batch))
        popped = forerunner_queue.pop(["alpha"], len(batch), 0.0)
        _check_popped(
            clause, forerunner_queue, popped, batch, "one push of 5 entries of equal priority"
        )

    def test_push_idempotent(self, forerunner_queue: Queue) -> None:
        """A re-push is how the manager repairs a queue it suspects: it must not reorder."""
        clause = "queue.push.idempotent"
        # Given three entries waiting
        first = entries("idem", 3)
        forerunner_queue.push(first)
        fresh = QueueEntry(job_id="idem-3", type="alpha")

        # When the first is pushed again, also with another priority, the second twice
        # in one batch, and a new one twice in one batch
        forerunner_queue.push([first[0]])
        forerunner_queue.push([attrs.evolve(first[0], priority=9)])
        forerunner_queue.push([first[1], first[1]])
        forerunner_queue.push([fresh, fresh])

        # Then each id waits once, where and as it was first pushed
        expected = [*first, fresh]
        context = "after re-pushing waiting ids (one with priority 9) and pushing a new id twice"
        check_size(clause, forerunner_queue, None, len(expected), context)
        popped = forerunner_queue.pop(["alpha"], 10, 0.0)
        _check_popped(clause, forerunner_queue, popped, expected, context)

    def test_pop_types(self, forerunner_queue: Queue) -> None:
        clause = "queue.pop.types"
        a1, a2 = entries("types-a", 2, type="alpha")
        (b1,) = entries("types-b", 1, type="beta")
        (g1,) = entries("types-g", 1, type="gamma")
        forerunner_queue.push([a1, b1, a2, g1])

        popped = forerunner_queue.pop(["alpha", "gamma"], 10, 0.0)

        check_same_entries(
            clause, popped, [a1, a2, g1], "pop(['alpha', 'gamma'], count=10) with beta waiting"
        )
        for types in (["delta"], []):
            other = forerunner_queue.pop(types, 10, 0.0)
            check(clause, other == [], f"pop({types!r}) returned {show(other)}, expected []")
        check_size(clause, forerunner_queue, ["beta"], 1)
        check_entries(clause, forerunner_queue.pop(["beta"], 10, 0.0), [b1], "pop(['beta'])")

    def test_pop_count(self, forerunner_queue: Queue) -> None:
        clause = "queue.pop.count"
        forerunner_queue.push(entries("count", 5) + entries("count-b", 2, type="beta"))

        sizes = [len(forerunner_queue.pop(["alpha"], count, 0.0)) for count in (2, 10, 1)]

        check(
            clause,
            sizes == [2, 3, 0],
            f"with 5 alpha and 2 beta waiting, pop(['alpha'], count) for counts 2, 10, 1 "
            f"returned {sizes} entries, expected [2, 3, 0]",
        )
        check_size(clause, forerunner_queue, ["beta"], 2)

    def test_pop_removes(self, forerunner_queue: Queue) -> None:
        clause = "queue.pop.removes"
        pushed = entries("removes", 2)
        forerunner_queue.push(pushed)

        first = forerunner_queue.pop(["alpha"], 1, 0.0)

        check(clause, len(first) == 1, f"pop(['alpha']) returned {show(first)}, expected 1 entry")
        check_size(clause, forerunner_queue, None, 1)
        rest = forerunner_queue.pop(["alpha"], 10, 0.0)
        left = [e for e in pushed if e not in first]
        check_same_entries(clause, rest, left, f"the pop after {show(first)} was popped")
        check_size(clause, forerunner_queue, None, 0)
        again = forerunner_queue.pop(["alpha"], 10, 0.0)
        check(clause, again == [], f"a pop after both were popped returned {show(again)}")

    def test_pop_repush(self, forerunner_queue: Queue) -> None:
        """A retried job is pushed again under its id, sometimes with a new priority."""
        clause = "queue.pop.repush"
        entry = QueueEntry(job_id="repush-0", type="alpha")
        forerunner_queue.push([entry])
        check_entries(clause, forerunner_queue.pop(["alpha"], 1, 0.0), [entry], "first pop")

        for again in (entry, attrs.evolve(entry, priority=3)):
            forerunner_queue.push([again])

            check_size(clause, forerunner_queue, None, 1)
            popped = forerunner_queue.pop(["alpha"], 1, 0.0)
            check_entries(clause, popped, [again], f"pop after pushing {show([again])} again")

    def test_pop_empty(self, forerunner_queue: Queue) -> None:
        clause = "queue.pop.empty"
        for waiting in ([], [QueueEntry(job_id="empty-0", type="beta")]):
            forerunner_queue.push(waiting)
            what = f"pop(['alpha'], timeout=0) with {show(waiting)} waiting"

            timed = run_with_deadline(
                clause, lambda: forerunner_queue.pop(["alpha"], 1, 0.0), STUCK, what
            )

            check(clause, timed.value == [], f"{what} returned {show(timed.value)}, expected []")
            check(
                clause,
                timed.elapsed < AT_ONCE,
                f"{what} took {timed.elapsed:.2f} s, expected at once (bound {AT_ONCE} s)",
            )
        check_size(clause, forerunner_queue, ["beta"], 1)

    def test_pop_timeout(self, forerunner_queue: Queue) -> None:
        clause = "queue.pop.timeout"
        bound = 5.0
        for waiting in ([], [QueueEntry(job_id="timeout-0", type="beta")]):
            forerunner_queue.push(waiting)
            what = f"pop(['alpha'], timeout=0.3) with {show(waiting)} waiting"

            timed = run_with_deadline(
                clause, lambda: forerunner_queue.pop(["alpha"], 1, 0.3), bound, what
            )

            check(clause, timed.value == [], f"{what} returned {show(timed.value)}, expected []")

    def test_pop_wake_thread(self, forerunner_queue: Queue) -> None:
        clause = "queue.pop.wake.thread"
        entry = QueueEntry(job_id="wake-thread-0", type="alpha")
        pushed_at: list[float] = []

        def push_later() -> None:
            time.sleep(0.2)
            pushed_at.append(time.monotonic())
            forerunner_queue.push([entry])

        # Given a pop blocked for up to 10 s, when another thread pushes 0.2 s later
        pusher = threading.Thread(
            target=push_later, name="forerunner-queue-tests pusher", daemon=True
        )
        pusher.start()
        what = "pop(['alpha'], timeout=10) while another thread pushes after 0.2 s"
        timed = run_with_deadline(
            clause, lambda: forerunner_queue.pop(["alpha"], 1, 10.0), STUCK, what
        )
        pusher.join(STUCK)

        # Then the pop returns the entry soon after the push
        check_entries(clause, timed.value, [entry], what)
        late = timed.finished - pushed_at[0]
        check(
            clause,
            late < WAKE,
            f"{what} returned {late:.2f} s after the push, expected well under a second "
            f"(bound {WAKE} s)",
        )

    def test_pop_wake_process(
        self, forerunner_queue: Queue, forerunner_queue_url: str | None
    ) -> None:
        clause = "queue.pop.wake.process"
        url = _require_shared(forerunner_queue, forerunner_queue_url)
        entry = QueueEntry(job_id="wake-process-0", type="alpha")
        what = "pop(['alpha'], timeout=10) while another process pushes after 0.2 s"

        with _processes.Children(clause) as children:
            # Given another process that has opened the queue
            ready, go = children.context.Event(), children.context.Event()
            children.start(_processes.push_when_told, url, [entry], 0.2, (ready, go))
            children.wait_until(ready, "the pushing process opening the queue")
            # When it pushes 0.2 s into a blocked pop
            go.set()
            timed = run_with_deadline(
                clause, lambda: forerunner_queue.pop(["alpha"], 1, 10.0), STUCK, what
            )
            pushed_at: float = children.receive(STUCK, "the pushing process")

        # Then the pop returns the entry soon after the push
        check_entries(clause, timed.value, [entry], what)
        late = timed.returned_at - pushed_at
        check(
            clause,
            late < WAKE,
            f"{what} returned {late:.2f} s after the push, expected well under a second "
            f"(bound {WAKE} s)",
        )

    def test_pop_fifo_priority(self, forerunner_queue: Queue) -> None:
        clause = "queue.pop.fifo.priority"
        _require_ordering(forerunner_queue, "fifo")
        low = QueueEntry(job_id="prio-low", type="alpha", priority=0)
        high = QueueEntry(job_id="prio-high", type="alpha", priority=5)
        mid = QueueEntry(job_id="prio-mid", type="alpha", priority=1)
        negative = QueueEntry(job_id="prio-negative", type="alpha", priority=-3)
        by_priority = [high, mid, low, negative]

        # One pop of many, then one pop per entry
        for count in (10, 1):
            forerunner_queue.push([low])
            forerunner_queue.push([high])
            forerunner_queue.push([mid, negative])
            popped: list[QueueEntry] = []
            for _ in by_priority:
                popped.extend(forerunner_queue.pop(["alpha"], count, 0.0))
            check_entries(
                clause, popped, by_priority, f"pops with count={count} after pushing 0, 5, 1, -3"
            )

        # Across types too: priority is not a per-type affair
        urgent = QueueEntry(job_id="prio-urgent", type="beta", priority=7)
        forerunner_queue.push([low, urgent])
        popped = forerunner_queue.pop(["alpha", "beta"], 10, 0.0)
        check_entries(clause, popped, [urgent, low], "pop(['alpha', 'beta']) across types")

    def test_pop_fifo_order(self, forerunner_queue: Queue) -> None:
        clause = "queue.pop.fifo.order"
        _require_ordering(forerunner_queue, "fifo")
        a1, a2, a3 = entries("order-a", 3, type="alpha")
        b1, b2 = entries("order-b", 2, type="beta")
        (g1,) = entries("order-g", 1, type="gamma")
        # Given entries of equal priority pushed one at a time, the types interleaved
        for entry in (a1, b1, a2, b2, g1, a3):
            forerunner_queue.push([entry])

        # When popping two types, named in either order
        first = forerunner_queue.pop(["beta", "alpha"], 1, 0.0)
        rest = forerunner_queue.pop(["alpha", "beta"], 10, 0.0)

        # Then the earliest push comes first, across the types
        check_entries(clause, first, [a1], "pop(['beta', 'alpha'], count=1)")
        check_entries(clause, rest, [b1, a2, b2, a3], "pop(['alpha', 'beta'], count=10)")
        check_size(clause, forerunner_queue, ["gamma"], 1)

    def test_pop_random_no_starvation(self, forerunner_queue: Queue) -> None:
        """A pop that always prefers newer entries would strand the oldest job forever.

        With one old and one new entry waiting in each round, a fair random pop leaves
        the old one waiting through every round with probability 2**-200.
        """
        clause = "queue.pop.random.no_starvation"
        _require_ordering(forerunner_queue, "random")
        rounds = 200
        old = QueueEntry(job_id="starve-old", type="alpha")
        forerunner_queue.push([old])

        for n in range(rounds):
            forerunner_queue.push([QueueEntry(job_id=f"starve-new-{n}", type="alpha")])
            if old in forerunner_queue.pop(["alpha"], 1, 0.0):
                return
        fail(
            clause,
            f"{show([old])} was still waiting after {rounds} rounds of "
            "'push a newer entry, pop one'",
        )

    def test_pop_once_threads(self, forerunner_queue: Queue) -> None:
        clause = "queue.pop.once.threads"
        total, threads, batch = 2000, 8, 50
        pushed = entries("threads", total)
        pushing_done = threading.Event()
        popped: list[list[str]] = [[] for _ in range(threads)]
        errors: list[BaseException] = []

        def pop_until_drained(mine: list[str], seed: int) -> None:
            rng = random.Random(seed)
            try:
                while True:
                    done = pushing_done.is_set()
                    got = forerunner_queue.pop(["alpha"], rng.randint(2, 16), 0.05)
                    mine.extend(e.job_id for e in got)
                    if not got and done:
                        return
            except BaseException as error:
                errors.append(error)

        # Given 8 threads popping while the entries are pushed in batches
        poppers = [
            threading.Thread(target=pop_until_drained, args=(popped[n], n), daemon=True)
            for n in range(threads)
        ]
        for thread in poppers:
            thread.start()
        for start in range(0, total, batch):
            forerunner_queue.push(pushed[start : start + batch])
        pushing_done.set()
        deadline = time.monotonic() + 60
        for thread in poppers:
            thread.join(max(0.0, deadline - time.monotonic()))

        # Then every entry was popped by exactly one pop
        if errors:
            raise errors[0]
        stuck = sum(thread.is_alive() for thread in poppers)
        check(clause, stuck == 0, f"{stuck} popping threads had not finished after 60 s")
        _check_exactly_once(
            clause, pushed, [job_id for mine in popped for job_id in mine], f"{threads} threads"
        )
        check_size(clause, forerunner_queue, None, 0)

    def test_pop_once_processes(
        self, forerunner_queue: Queue, forerunner_queue_url: str | None
    ) -> None:
        clause = "queue.pop.once.processes"
        url = _require_shared(forerunner_queue, forerunner_queue_url)
        total, processes = 2000, 4
        pushed = entries("processes", total)
        forerunner_queue.push(pushed)

        # When 4 processes open the queue and, together, pop until it is drained
        with _processes.Children(clause) as children:
            start = children.context.Barrier(processes)
            for n in range(processes):
                children.start(_processes.pop_until_drained, url, ["alpha"], 3 + 2 * n, start)
            popped = [
                children.receive(_processes.START_SECONDS + 60, "a popping process")
                for _ in range(processes)
            ]

        # Then every entry was popped by exactly one of them
        _check_exactly_once(
            clause, pushed, [job_id for got in popped for job_id in got], f"{processes} processes"
        )
        check_size(clause, forerunner_queue, None, 0)

    def test_remove_drops(self, forerunner_queue: Queue) -> None:
        clause = "queue.remove.drops"
        a, b, c = entries("remove", 3)
        forerunner_queue.push([a, b, c])

        dropped = forerunner_queue.remove([a.job_id, c.job_id, "remove-unknown"])

        check(
            clause,
            dropped == 2,
            f"remove([{a.job_id!r}, {c.job_id!r}, 'remove-unknown']) with {show([a, b, c])} "
            f"waiting returned {dropped!r}, expected 2",
        )
        check_size(clause, forerunner_queue, None, 1)
        check_entries(clause, forerunner_queue.pop(["alpha"], 10, 0.0), [b], "pop after remove")
        for job_ids in ([b.job_id], []):
            dropped = forerunner_queue.remove(job_ids)
            check(
                clause,
                dropped == 0,
                f"remove({job_ids!r}) with nothing waiting returned {dropped!r}, expected 0",
            )

    def test_size_types(self, forerunner_queue: Queue) -> None:
        clause = "queue.size.types"
        forerunner_queue.push(
            entries("size-a", 2, type="alpha")
            + entries("size-b", 3, type="beta", priority=4)
            + entries("size-g", 1, type="gamma", priority=-1)
        )

        for types, expected in (
            (None, 6),
            (["alpha"], 2),
            (["beta"], 3),
            (["alpha", "gamma"], 3),
            (["gamma", "beta", "alpha"], 6),
            (["delta"], 0),
            ([], 0),
        ):
            check_size(clause, forerunner_queue, types, expected)

    def test_clear_empties(self, forerunner_queue: Queue) -> None:
        clause = "queue.clear.empties"
        forerunner_queue.push(
            entries("clear-a", 3, type="alpha") + entries("clear-b", 2, type="beta", priority=2)
        )

        forerunner_queue.clear()

        for types in (None, ["alpha"], ["beta"]):
            check_size(clause, forerunner_queue, types, 0)
        popped = forerunner_queue.pop(["alpha", "beta"], 10, 0.0)
        check(clause, popped == [], f"pop after clear() returned {show(popped)}, expected []")
        forerunner_queue.clear()
        check_size(clause, forerunner_queue, None, 0)

    def test_entry_roundtrip(self, forerunner_queue: Queue) -> None:
        """Ids and types are any non-empty text; priorities any int in [-2**53, 2**53]."""
        clause = "queue.entry.roundtrip"
        width = max(len(EDGE_IDS), len(EDGE_TYPES), len(EDGE_PRIORITIES))
        pushed = [
            QueueEntry(
                job_id=f"{EDGE_IDS[n % len(EDGE_IDS)]}-{n}",
                type=EDGE_TYPES[n % len(EDGE_TYPES)],
                priority=EDGE_PRIORITIES[n % len(EDGE_PRIORITIES)],
            )
            for n in range(width)
        ]
        forerunner_queue.push(pushed)

        popped = forerunner_queue.pop(EDGE_TYPES, len(pushed) + 1, 0.0)

        check_same_entries(
            clause,
            popped,
            pushed,
            "unicode ids and types, priorities anywhere in [-2**53, 2**53]",
        )
        odd = [e for e in popped if type(e) is not QueueEntry or type(e.priority) is not int]
        check(clause, not odd, f"popped {odd!r}: expected QueueEntry records with int priorities")

    def test_shared_visible(
        self, forerunner_queue: Queue, forerunner_queue_url: str | None
    ) -> None:
        clause = "queue.shared.visible"
        url = _require_shared(forerunner_queue, forerunner_queue_url)
        mine = entries("shared", 2)
        theirs = QueueEntry(job_id="shared-theirs", type="alpha")
        forerunner_queue.push(mine)

        # When another process counts, pops one and pushes one
        with _processes.Children(clause) as children:
            children.start(_processes.visit, url, ["alpha"], [theirs])
            counted, taken = children.receive(_processes.START_SECONDS, "the visiting process")

        # Then it saw what this one pushed, and this one sees what it did
        check(
            clause,
            counted == len(mine),
            f"another process's size(['alpha']) was {counted!r} after this one pushed "
            f"{show(mine)}, expected {len(mine)}",
        )
        expected_taken = mine[:1] if _is_fifo(forerunner_queue) else taken
        check(
            clause,
            len(taken) == 1 and taken == expected_taken and taken[0] in mine,
            f"another process popped {show(taken)}, expected one of {show(mine)}"
            + (f", namely {show(expected_taken)}" if _is_fifo(forerunner_queue) else ""),
        )
        left = [e for e in mine if e not in taken] + [theirs]
        popped = forerunner_queue.pop(["alpha"], 10, 0.0)
        check_same_entries(clause, popped, left, "this process's pop after the other's visit")

    def test_durable_reopen(
        self, forerunner_queue: Queue, forerunner_queue_factory: Callable[[], Queue]
    ) -> None:
        clause = "queue.durable.reopen"
        if not forerunner_queue.durable:
            pytest.skip("the backend is not durable (durable = False)")
        pushed = [
            QueueEntry(job_id="durable-0", type="alpha", priority=0),
            QueueEntry(job_id="durable-1", type="beta", priority=5),
            QueueEntry(job_id="durable-2", type="alpha", priority=-1),
        ]
        # Given entries pushed through a queue that is then closed
        writer = forerunner_queue_factory()
        writer.push(pushed)
        writer.close()

        # When the same URL is opened again
        reader = forerunner_queue_factory()

        # Then every entry is still waiting, in the same order
        check_size(clause, reader, None, len(pushed))
        popped = reader.pop(["alpha", "beta"], 10, 0.0)
        by_priority = [pushed[1], pushed[0], pushed[2]]
        _check_popped(clause, reader, popped, by_priority, "pop after closing and reopening")
        reader.clear()

    def test_model_reference(self, forerunner_queue: Queue, pytestconfig: pytest.Config) -> None:
        """Random sequences of push, pop, remove, size and clear against ReferenceQueue."""
        examples: int = pytestconfig.getoption("forerunner_queue_examples")
        # Hypothesis accepts any zero-argument callable here, though it annotates a class.
        machine = cast("type[QueueMachine]", lambda: QueueMachine(forerunner_queue))
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=examples,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
