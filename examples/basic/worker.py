"""The seed's basic example, worker side: answer ping jobs until Ctrl-C.

Start ``python manager.py`` first. The worker asks http://localhost:2718 for work, or
port ``$PORT`` when that is set, and keeps retrying while the manager is down.
"""

from __future__ import annotations

import os
from typing import Any

from forerunner import Worker


def ping(job_id: str, data: Any) -> dict[str, Any]:
    print(f"ping {job_id}: {data}", flush=True)
    return {"pong": data}


def main() -> None:
    worker = Worker(concurrency=2)
    worker.register_job_handler("ping", ping)
    worker.start(f"http://localhost:{os.environ.get('PORT', '2718')}")


if __name__ == "__main__":
    main()
