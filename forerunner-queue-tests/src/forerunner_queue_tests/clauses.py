"""The queue contract, clause by clause (design §4).

Each clause has a stable id and one line of text. The suite has one test per clause,
named for it (``queue.pop.fifo.order`` is ``test_pop_fifo_order``), and every failure
message starts with ``[id] text:``. docs/conformance.md is generated from this table.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CLAUSES", "message", "test_name_for"]

CLAUSES: Final[dict[str, str]] = {
    "queue.push.waits": "an entry pushed is waiting: size() counts it and pop() returns it",
    "queue.push.batch": "push(entries) makes every entry of the batch wait, in batch order",
    "queue.push.idempotent": (
        "pushing an id that is already waiting changes nothing: no second copy, same place"
    ),
    "queue.pop.types": "pop(types) returns only entries of those types and leaves others waiting",
    "queue.pop.count": "pop(types, count) returns min(count, matching waiting entries) entries",
    "queue.pop.removes": "an entry popped is gone: no later pop returns it, size() drops it",
    "queue.pop.repush": "an entry popped and pushed again waits again",
    "queue.pop.empty": "pop with timeout 0 and no matching entry returns [] at once",
    "queue.pop.timeout": "pop with no matching entry blocks at most about timeout seconds",
    "queue.pop.wake.thread": (
        "a blocked pop returns well under a second after another thread pushes a match"
    ),
    "queue.pop.wake.process": (
        "a blocked pop returns well under a second after another process pushes a match"
    ),
    "queue.pop.fifo.priority": "fifo: a higher priority pops before a lower one",
    "queue.pop.fifo.order": (
        "fifo: among equal priorities the earliest push pops first, across the requested types"
    ),
    "queue.pop.random.no_starvation": (
        "random: a waiting entry is not starved by entries pushed after it"
    ),
    "queue.pop.once.threads": (
        "each pushed entry is popped exactly once under concurrent pops from many threads"
    ),
    "queue.pop.once.processes": (
        "each pushed entry is popped exactly once under concurrent pops from many processes"
    ),
    "queue.remove.drops": (
        "remove(job_ids) drops those waiting entries and returns how many; unknown ids count 0"
    ),
    "queue.size.types": "size() counts every waiting entry; size(types) only those types",
    "queue.clear.empties": "clear() leaves no entry waiting",
    "queue.entry.roundtrip": (
        "a popped entry equals the one pushed: unicode ids and types, large and negative priorities"
    ),
    "queue.shared.visible": "shared: another process opening the same URL sees the same entries",
    "queue.durable.reopen": "durable: entries survive close() and reopening the same URL",
    "queue.model.reference": "every sequence of operations gives the reference model's results",
}


def message(clause_id: str, detail: str) -> str:
    """The failure message for a clause: its id and text first, then what was seen."""
    return f"[{clause_id}] {CLAUSES[clause_id]}: {detail}"


def test_name_for(clause_id: str) -> str:
    """The name of the contract test that checks a clause."""
    return "test_" + clause_id.removeprefix("queue.").replace(".", "_")
