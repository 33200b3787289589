"""The fault-injection laboratory: real manager and worker processes, real services.

Shared by the fault tests (``tests/faults``) and the longer runs of ``bench/chaos.py``:

* :mod:`faultlab.ledger`: the task module the workers run, which records every execution
  in a side table, and the reader of that table;
* :mod:`faultlab.services`: where the store and queue live (a SQLite file, the shared
  PostgreSQL and Redis under names of the run's own, or private servers to restart);
* :mod:`faultlab.lab`: the processes of one run, the faults, and the waiting;
* :mod:`faultlab.tally`: the counts a run ends with and the checks they must pass;
* :mod:`faultlab.scenarios`: the scenarios of issue 6, each a function of a lab.
"""

from __future__ import annotations
