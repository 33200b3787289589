"""The seed's basic example, manager side: print every finished ping, hand out a few.

Run it, then ``python worker.py`` in another terminal. It serves on the embedded
default (``forerunner.db`` in the current directory and an in-memory queue) on port
2718, or on ``$PORT``, until Ctrl-C.
"""

from __future__ import annotations

import os

from forerunner import Job, Manager


def print_result(job: Job) -> None:
    print(f"complete: {job.type} {job.id} -> {job.result}", flush=True)


def main() -> None:
    manager = Manager(port=int(os.environ.get("PORT", "2718")))
    manager.on_complete("ping", print_result)
    for number in range(3):
        manager.assign_job("ping", {"foo": "bar", "n": number})
    print(f"manager listening on {manager.url}", flush=True)
    manager.serve()


if __name__ == "__main__":
    main()
