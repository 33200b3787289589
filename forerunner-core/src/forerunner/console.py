"""What every operator command shares: exit codes, common options, and output with rich.

The commands are used two ways, by a person at a terminal and by a script, and must
behave the same way for both in every command, so the rules live here once:

- ``--json`` puts one JSON document on stdout and nothing else; prompts, progress and
  errors go to stderr, so ``forerunner jobs list --json | jq`` always parses.
- Human output is drawn with rich on a terminal (colours, boxes, the terminal's width),
  and degrades when stdout is a pipe or a file: no colour codes, no box lines, no
  wrapping at an assumed 80 columns, no trailing blanks, so ``grep`` and ``cut`` see
  one row per line.
- ``--manager`` defaults to ``$FORERUNNER_MANAGER``, then to the manager's default
  address, so an operator sets the address once per shell. Beside it every command
  that talks to a manager takes ``--token-file`` (default ``$FORERUNNER_TOKEN``) and
  ``--ca-file`` (default ``$FORERUNNER_CA_FILE``): a token is never a flag's value,
  which ``ps`` would show to every user of the machine.
- Exit codes (below) say what happened without parsing any text.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
from typing import TYPE_CHECKING, Any, Final

import msgspec
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from forerunner.client import DEFAULT_URL, Client
from forerunner.credentials import CA_FILE_ENV, TOKEN_ENV, load_token
from forerunner.errors import ConfigurationError, ValidationError
from forerunner.model import JobState

if TYPE_CHECKING:
    import argparse
    import datetime as dt
    from collections.abc import Callable, Iterator, Sequence
    from typing import TextIO

    from rich.console import RenderableType

__all__ = [
    "EXIT_DENIED",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_DONE",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "MANAGER_ENV",
    "Output",
    "add_json_option",
    "add_manager_option",
    "confirm",
    "format_age",
    "format_ago",
    "manager_url",
    "open_client",
    "parse_duration",
    "print_json",
    "progress",
    "sparkline",
    "state_text",
    "table",
]

#: The command did what was asked.
EXIT_OK: Final = 0
#: The command ran but the asked-for outcome did not happen: a job failed under
#: ``--wait``, a job could not be cancelled or retried, the operator declined a prompt.
EXIT_NOT_DONE: Final = 1
#: A usage or configuration error (argparse's own code for bad arguments): nothing ran.
EXIT_USAGE: Final = 2
#: The manager did not answer, or answered that its store or queue is unavailable;
#: trying again later may work.
EXIT_UNREACHABLE: Final = 3
#: A job named on the command line does not exist.
EXIT_NOT_FOUND: Final = 4
#: The manager refused the caller: no token, an unknown token (401), or a token whose
#: role may not do this (403). Another token may work; trying again as is will not.
EXIT_DENIED: Final = 5
#: Interrupted with Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED: Final = 130

#: The environment variable that sets the default of ``--manager``.
MANAGER_ENV: Final = "FORERUNNER_MANAGER"

#: Columns a table may take when stdout is not a terminal: wide enough that no row wraps.
_PIPE_WIDTH: Final = 100_000
#: Seconds per unit of ``parse_duration``.
_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_SPARKS: Final = "▁▂▃▄▅▆▇█"
_STATE_STYLES: Final = {
    JobState.SCHEDULED: "cyan",
    JobState.QUEUED: "blue",
    JobState.RUNNING: "yellow",
    JobState.SUCCEEDED: "green",
    JobState.FAILED: "bold red",
    JobState.CANCELLED: "magenta",
}


def add_manager_option(parser: argparse.ArgumentParser) -> None:
    """``--manager URL``, ``--token-file PATH`` and ``--ca-file PATH``.

    Read them with :func:`open_client` (or :func:`manager_url`), which apply the defaults.
    """
    parser.add_argument(
        "--manager",
        default=None,
        metavar="URL",
        help=f"the manager's address (default: ${MANAGER_ENV}, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--token-file",
        default=None,
        metavar="PATH",
        help=f"a file holding the token to show the manager (default: ${TOKEN_ENV})",
    )
    parser.add_argument(
        "--ca-file",
        default=None,
        metavar="PATH",
        help="a PEM file of CAs to trust for an https:// manager, beside the system's "
        f"(default: ${CA_FILE_ENV})",
    )


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document on stdout, for scripts, instead of tables",
    )


def manager_url(args: argparse.Namespace) -> str:
    """``--manager`` if given, else ``$FORERUNNER_MANAGER`` if set and not empty, else the default.

    Read when the command runs, not when the parser is built, so that the environment of
    the call is the one that counts.
    """
    given: str | None = args.manager
    return given or os.environ.get(MANAGER_ENV) or DEFAULT_URL


def open_client(args: argparse.Namespace) -> Client:
    """A client of the manager the options of :func:`add_manager_option` name.

    An unreadable token file or CA file is a configuration error before anything is sent.
    """
    return Client(manager_url(args), token=load_token(args.token_file), ca_file=args.ca_file)


def print_json(document: Any, out: TextIO | None = None) -> None:
    """Write ``document`` (JSON values, msgspec Structs, datetimes) as indented JSON."""
    stream = out if out is not None else sys.stdout
    stream.write(msgspec.json.format(msgspec.json.encode(document), indent=2).decode())
    stream.write("\n")


class Output:
    """Human output on one stream, rich on a terminal and plain text elsewhere.

    Markup is off: job ids, error messages and tracebacks are printed as they are, and
    a ``[bold]`` in a task's error message stays text.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.console = Console(
            file=stream if stream is not None else sys.stdout,
            markup=False,
            highlight=False,
            emoji=False,
        )
        self.terminal = self.console.is_terminal
        if not self.terminal:
            self.console.width = _PIPE_WIDTH

    @classmethod
    def stderr(cls) -> Output:
        return cls(sys.stderr)

    def print(self, *renderables: RenderableType) -> None:
        """Print on the terminal, or as plain lines without trailing blanks elsewhere."""
        if self.terminal:
            self.console.print(*renderables)
            return
        with self.console.capture() as captured:
            self.console.print(*renderables)
        lines = [line.rstrip() for line in captured.get().splitlines()]
        self.console.file.write("".join(f"{line}\n" for line in lines))
        self.console.file.flush()

    def heading(self, title: str) -> None:
        self.print(Text(title, style="bold"))

    def table(self, *headers: str, title: str | None = None) -> Table:
        """A table that draws a rule under the header on a terminal and nothing in a pipe."""
        return table(*headers, title=title, boxed=self.terminal)


@contextlib.contextmanager
def progress(total: int, what: str) -> Iterator[Callable[[int], None]]:
    """Count ``total`` things on stderr; the caller advances the count by what it did.

    On a terminal, a rich progress bar that moves. Elsewhere (a CI log, a file) a bar
    cannot move, so each step prints one plain line, ``what done/total``: the log then
    shows how far the command got, even when it stops with an error.
    """
    errors = Output.stderr()
    if errors.terminal:
        with Progress(
            TextColumn(what),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=errors.console,
        ) as bar:
            task = bar.add_task(what, total=total)
            yield lambda count: bar.advance(task, count)
        return
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        errors.print(f"{what} {done}/{total}")

    yield advance


def table(*headers: str, title: str | None = None, boxed: bool = True) -> Table:
    """A table with these column headers; the first column (an id or a name) never wraps."""
    made = Table(
        box=box.SIMPLE_HEAD if boxed else None,
        title=title,
        title_justify="left",
        title_style="bold",
        header_style="bold",
        pad_edge=False,
        show_edge=False,
    )
    for index, header in enumerate(headers):
        made.add_column(header, no_wrap=index == 0, overflow="fold")
    return made


def state_text(state: JobState | str) -> Text:
    """A job state, coloured by what it asks of the operator (red: failed)."""
    known = JobState(state)
    return Text(known.value, style=_STATE_STYLES[known])


def confirm(question: str, *, yes: bool, refusal: str) -> bool:
    """Ask ``question`` on stderr and read the answer; True for yes.

    ``--yes`` answers for the operator. Without it, a command that cannot ask (stdin is
    not a terminal: a script, a cron job, a pipe) refuses with ``refusal`` as a usage
    error, because a destructive command must not run on an answer nobody gave.
    """
    if yes:
        return True
    if not sys.stdin.isatty():
        raise ConfigurationError(refusal)
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: ``90``, ``45s``, ``30m``, ``12h``, ``7d``, ``2w`` or ``1d12h``."""
    cleaned = text.strip().lower()
    try:
        seconds = float(cleaned)
    except ValueError:
        parts = _DURATION.findall(cleaned)
        if not parts or "".join(f"{n}{u}" for n, u in parts) != cleaned:
            raise ValidationError(
                f"{text!r} is not a duration; write seconds (3600) or a number with a unit "
                "s, m, h, d or w (30m, 12h, 7d, 1d12h)",
                field="duration",
            ) from None
        seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValidationError(f"{text!r} is not a duration of zero or more seconds")
    return seconds


def format_age(seconds: float) -> str:
    """A short, rounded-down length of time: ``4.2s``, ``3m12s``, ``2h05m``, ``3d04h``."""
    if seconds < 60:
        return f"{max(seconds, 0.0):.1f}s"
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def format_ago(moment: dt.datetime | None, now: dt.datetime) -> str:
    """``3m12s ago`` (``in 40s`` for a future moment), or ``-`` for none."""
    if moment is None:
        return "-"
    seconds = (now - moment).total_seconds()
    if seconds < 0:
        return f"in {format_age(-seconds)}"
    return f"{format_age(seconds)} ago"


def sparkline(values: Sequence[int]) -> str:
    """One character per value, its height relative to the largest; blanks when all are 0."""
    top = max(values, default=0)
    if top <= 0:
        return " " * len(values)
    last = len(_SPARKS) - 1
    return "".join(
        " " if value <= 0 else _SPARKS[max(0, math.ceil(value / top * last))] for value in values
    )
