"""The queue on a real three-node Redis Cluster that the ``cluster`` fixture starts.

The whole conformance suite runs against the cluster in a subprocess, exactly as a
stranger would run it, and the tests below check what makes it work: every key of a
queue sits in the one slot of its hash tag, so each script runs on one node, and
queues with other prefixes spread over the other nodes.
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import redis
import redis.cluster
from redis.crc import key_slot

from forerunner.model import QueueEntry

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from forerunner_redis_queue import RedisQueue


def test_the_conformance_suite_passes_on_a_cluster(
    cluster: str, tmp_path: Path, unique_prefix: Callable[[str], str]
) -> None:
    # Given a queue URL on the three-node cluster, under a prefix of its own
    url = f"{cluster}?prefix={unique_prefix('suite')}"

    # When the queue suite runs against it as a stranger would run it
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "forerunner_queue_tests",
            "--forerunner-queue",
            url,
            "-p",
            "no:cacheprovider",
            "-rs",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    # Then every clause passes; only the random-ordering clause is skipped, for fifo
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, f"the suite failed on {url}:\n{result.stdout}{result.stderr}"
    assert " failed" not in summary
    assert "1 skipped" in summary, result.stdout
    assert "the clause is for 'random'" in result.stdout


def test_every_key_of_a_queue_lives_in_one_slot_of_one_node(
    cluster: str, open_queue: Callable[[str], RedisQueue], unique_prefix: Callable[[str], str]
) -> None:
    # Given a queue on the cluster with entries of several types, one popped by a waiter
    prefix = unique_prefix("slot")
    queue = open_queue(f"{cluster}?prefix={prefix}")
    queue.push(
        [
            QueueEntry(job_id=f"job-{n}", type=job_type, priority=n % 3)
            for n, job_type in enumerate(["alpha", "beta", "タスク", "with space", "a{b}c"] * 4)
        ]
    )
    assert len(queue.pop(["alpha", "beta"], 3, 1.0)) == 3

    # When the cluster's nodes are asked which keys they hold
    host, port = cluster.removeprefix("redis+cluster://").split(",")[0].split(":")
    client = redis.cluster.RedisCluster(host=host, port=int(port), decode_responses=True)
    try:
        primaries: list[redis.cluster.ClusterNode] = client.get_primaries()  # type: ignore[no-untyped-call]
        found = {
            node.name: [str(key) for key in client.keys(f"{{{prefix}}}:*", target_nodes=node)]
            for node in primaries
        }
    finally:
        client.close()

    # Then one node holds them all, and they share the slot of the prefix's hash tag
    holders = {name: keys for name, keys in found.items() if keys}
    assert len(holders) == 1, holders
    [keys] = holders.values()
    assert {key_slot(key.encode()) for key in keys} == {key_slot(prefix.encode())}
    assert f"{{{prefix}}}:queue:タスク" in keys


def test_queues_with_other_prefixes_share_a_cluster_without_seeing_each_other(
    cluster: str, open_queue: Callable[[str], RedisQueue], unique_prefix: Callable[[str], str]
) -> None:
    # Given queues under several prefixes on one cluster
    queues = [open_queue(f"{cluster}?prefix={unique_prefix('spread')}") for _ in range(6)]

    # When each gets an entry
    for n, queue in enumerate(queues):
        queue.push([QueueEntry(job_id=f"job-{n}", type="alpha")])

    # Then each sees and pops only its own
    for n, queue in enumerate(queues):
        assert queue.size() == 1
        assert queue.pop(["alpha"], 10, 0.0) == [QueueEntry(job_id=f"job-{n}", type="alpha")]
