"""Push and pop throughput of the Redis queue, next to redis-benchmark on the same server.

For each batch size (1, 10, 100 by default) one thread pushes ``--entries`` entries in
batches of that size (one ``push`` call, one script, one round trip per batch), then pops
them all with ``count`` equal to the batch size. In the same run, ``redis-benchmark``
sends LPUSH and then RPOP to the same server from one client, pipelining as many
commands per round trip as the batch size (``-c 1 -P BATCH``): the fastest a single
client can move the same number of list elements. The ratio says how much of that our
queue, with its priorities, idempotency, receipts and wake-ups, keeps.

Run: ``.venv/bin/python bench/redis_queue.py [--url redis://127.0.0.1:6379/15]
[--entries 20000] [--batches 1,10,100]``. It works under a prefix of its own and
clears only that; redis-benchmark uses the key ``mylist`` of the same database, which
its RPOPs leave empty. This is a measurement, never a test: numbers are printed, not
asserted.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit

from forerunner.model import QueueEntry
from forerunner_redis_queue import open_redis_queue


def measure_queue(url: str, entries: int, batch: int) -> tuple[float, float]:
    """Entries per second through ``push`` and through ``pop``, one thread each in turn."""
    separator = "&" if "?" in url else "?"
    queue = open_redis_queue(f"{url}{separator}prefix=bench-{uuid.uuid4().hex[:12]}")
    try:
        pushed = [QueueEntry(job_id=f"job-{n:08d}", type="bench") for n in range(entries)]
        queue.size()  # connect before the clock starts
        start = time.perf_counter()
        for first in range(0, entries, batch):
            queue.push(pushed[first : first + batch])
        push_rate = entries / (time.perf_counter() - start)

        popped = 0
        start = time.perf_counter()
        while popped < entries:
            got = queue.pop(["bench"], batch, 0.0)
            if not got:
                raise RuntimeError(f"the queue ran dry after {popped} of {entries} entries")
            popped += len(got)
        pop_rate = entries / (time.perf_counter() - start)
        return push_rate, pop_rate
    finally:
        queue.clear()
        queue.close()


def measure_redis_benchmark(url: str, entries: int, batch: int) -> dict[str, float]:
    """redis-benchmark's requests per second for LPUSH and RPOP, one client, ``-P batch``."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        raise SystemExit("redis-benchmark is not installed (Debian: apt-get install redis-tools)")
    parts = urlsplit(url)
    db = (parts.path or "/0").strip("/") or "0"
    result = subprocess.run(
        [
            binary,
            "-h",
            parts.hostname or "127.0.0.1",
            "-p",
            str(parts.port or 6379),
            "--dbnum",
            db,
            "-t",
            "lpush,rpop",
            "-n",
            str(entries),
            "-c",
            "1",
            "-P",
            str(batch),
            "-q",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    rates = {}
    for line in result.stdout.replace("\r", "\n").splitlines():
        found = re.match(r"^(LPUSH|RPOP): ([\d.]+) requests per second", line.strip())
        if found:
            rates[found.group(1)] = float(found.group(2))
    if set(rates) != {"LPUSH", "RPOP"}:
        raise RuntimeError(f"could not read redis-benchmark's output:\n{result.stdout}")
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--batches", default="1,10,100")
    args = parser.parse_args()
    batches = [int(size) for size in args.batches.split(",")]

    try:
        import hiredis  # noqa: F401

        parser_name = "hiredis"
    except ImportError:
        parser_name = "the pure-Python parser (install hiredis for the C one)"
    print(f"Redis queue at {args.url}, {args.entries} entries per run, redis-py with {parser_name}")
    print("redis-benchmark: -c 1 -P <batch> -t lpush,rpop on the same server, same run\n")
    header = (
        f"{'batch':>5}  {'push/s':>9}  {'LPUSH/s':>10}  {'ratio':>5}  "
        f"{'pop/s':>9}  {'RPOP/s':>10}  {'ratio':>5}"
    )
    print(header)
    print("-" * len(header))
    for batch in batches:
        push_rate, pop_rate = measure_queue(args.url, args.entries, batch)
        reference = measure_redis_benchmark(args.url, args.entries, batch)
        print(
            f"{batch:>5}  {push_rate:>9,.0f}  {reference['LPUSH']:>10,.0f}  "
            f"{push_rate / reference['LPUSH']:>5.2f}  {pop_rate:>9,.0f}  "
            f"{reference['RPOP']:>10,.0f}  {pop_rate / reference['RPOP']:>5.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
