"""The fault scenarios of tests/faults, with more jobs: the "nothing lost" table.

Runs every scenario of ``tests/faults/faultlab/scenarios.py`` (or those named with
``--scenario``) on every backend pair it applies to, with ``--jobs`` jobs each, and
prints one Markdown table: jobs submitted, succeeded, failed, lost, executions beyond
one per job (split into runs cut off mid-job and runs whose late outcome was fenced
out), and seconds. A run that broke a promise prints what it broke and makes the exit
status 1. It needs what the fault suite needs: PostgreSQL and Redis on 127.0.0.1, and
``redis-server`` and the PostgreSQL server binaries for the private servers it starts.

Run: ``.venv/bin/python bench/chaos.py [--jobs 10000] [--scenario NAME]... [--backends
sqlite+memory]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "faults"))

from faultlab.scenarios import BACKENDS, SCENARIOS, run
from faultlab.services import ServiceMissing
from faultlab.tally import render

if TYPE_CHECKING:
    from faultlab.tally import Tally


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[scenario.name for scenario in SCENARIOS],
        help="run only this scenario (repeat for several); default: all",
    )
    parser.add_argument(
        "--backends", action="append", choices=BACKENDS, help="default: every pair that applies"
    )
    args = parser.parse_args()

    tallies: list[Tally] = []
    broken = False
    for scenario in SCENARIOS:
        if args.scenario and scenario.name not in args.scenario:
            continue
        for label in scenario.backends:
            if args.backends and label not in args.backends:
                continue
            root = Path(tempfile.mkdtemp(prefix=f"forerunner-chaos-{scenario.name}-"))
            try:
                outcome = run(scenario, label, root, args.jobs)
            except ServiceMissing as missing:
                print(f"{scenario.name} on {label}: skipped: {missing}", flush=True)
                continue
            finally:
                shutil.rmtree(root, ignore_errors=True)
            tallies.append(outcome.tally)
            print(render([outcome.tally]).splitlines()[-1], flush=True)
            if outcome.tally.problems:
                broken = True
                print(outcome.explain(), flush=True)
    print()
    print(render(tallies))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
