"""``python -m forerunner``: the CLI without its console script.

Batch mode starts its workers this way, so they run on the same interpreter and
environment as the command that spawned them, whatever ``PATH`` holds.
"""

from __future__ import annotations

import sys

from forerunner.cli import main

sys.exit(main())
