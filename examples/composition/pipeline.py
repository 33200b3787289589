"""A composed task: pluck headlines from local HTML, rename, count their words.

One script runs everything in-process: a manager on an in-memory store and queue, a
worker on a background thread, one job of the composed task ``headline_words``. The
steps run in series on one worker, each taking the previous one's result; the
``progress:`` markers show up on the manager as the job's progress.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from forerunner import Client, Job, Manager, Worker
from forerunner.compose import compose

PAGE = """
<html><body>
  <h2 class="headline">Workers claim jobs by lease</h2>
  <h2 class="headline">A lost worker's job runs again</h2>
  <p class="byline">forerunner</p>
</body></html>
"""


def headlines_as_text(job_id: str, plucked: dict[str, Any]) -> str:
    """Join the plucked headlines into the text that ``word_count`` reads."""
    return "\n".join(plucked["headlines"])


def pluck_request(job_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """Turn the job's ``{"page": html}`` into what ``pluck_data`` takes, via ``key_map``."""
    renamed: dict[str, Any] = dict(data)
    renamed["selectors"] = {"headlines": "h2.headline"}
    return renamed


def slow_work(job_id: str, data: Any) -> Any:
    """Stand in for real work (a download, a parse): long enough for progress to show.

    Progress is latest-wins, and the worker sends it at most a few times a second, so
    a pipeline that runs through in a blink shows only its last marker.
    """
    time.sleep(0.3)
    return data


headline_words = compose(
    [
        lambda job_id, data: {"data": data, "map": {"page": "html"}},
        "key_map",
        "progress:renamed",
        slow_work,
        pluck_request,
        "pluck_data",
        "progress:plucked",
        slow_work,
        headlines_as_text,
        "word_count",
    ],
    name="headline_words",
)


def print_progress(job: Job) -> None:
    print(f"progress: {job.progress}", flush=True)


def main() -> None:
    manager = Manager("memory://", "memory://", port=int(os.environ.get("PORT", "0")))
    manager.on_progress("headline_words", print_progress)
    manager.start()
    worker = Worker(concurrency=1)
    worker.register_job_handler("headline_words", headline_words)
    thread = threading.Thread(target=worker.start, args=(manager.url,))
    thread.start()
    try:
        with Client(manager.url) as client:
            job = client.submit("headline_words", {"page": PAGE})
            done = client.wait(job.id, timeout=30)
        print(f"{done.type} {done.state}: {done.result or done.error}", flush=True)
    finally:
        worker.stop()
        thread.join()
        manager.stop()


if __name__ == "__main__":
    main()
