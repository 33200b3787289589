"""Log output of the ``forerunner`` commands: one line per record, as logfmt or JSON.

The library only logs (``logging.getLogger(__name__)``, with an ``extra`` dict of stable
fields such as ``action`` and ``job_id``); the command line entry points choose the
output here. Both formats put every field of a record on one line, the ``extra`` fields
included, so that a log shipper can index them without a pattern:

* ``plain`` is logfmt (``key=value``, values quoted when they hold a space, a quote or an
  ``=``), which people read and tools such as Loki, Vector or ``hl`` parse;
* ``json`` is one JSON object per line.

A traceback stays on its record's line, escaped, so a multi-line record never splits.

Every line has its secrets masked last: the messages forerunner writes mask the URLs they
name, but a driver's error, a task's error message or a traceback may quote a connection
string, and a log is copied far and kept long. A record's line is searched for URL
passwords, ``password=`` values and bearer tokens (:func:`forerunner.urls.mask_secrets`);
a line the job log makes itself, thousands a second, for URL passwords only, which costs
one search for ``@`` on a line without one (:func:`forerunner.urls.mask_url_passwords`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import re
import sys
import time
from typing import TYPE_CHECKING, Any, Final, Literal

import msgspec

from forerunner.urls import mask_secrets, mask_url_passwords

if TYPE_CHECKING:
    import argparse
    from typing import TextIO

__all__ = [
    "FORMATS",
    "LEVELS",
    "JsonFormatter",
    "LineHandler",
    "LogfmtFormatter",
    "add_logging_arguments",
    "configure_from_arguments",
    "configure_logging",
    "direct_handler",
    "record_fields",
    "timestamp",
]

LogFormat = Literal["plain", "json"]

#: The values of ``--log-format``.
FORMATS: Final = ("plain", "json")
#: The values of ``--log-level``.
LEVELS: Final = ("debug", "info", "warning", "error")
#: The name of the handler :func:`configure_logging` installs, so a second call replaces it.
HANDLER_NAME: Final = "forerunner"

#: Attributes every LogRecord has; anything else on a record came in through ``extra``.
_STANDARD: Final = frozenset(
    {
        *vars(logging.LogRecord("", 0, "", 0, "", None, None)),
        "message",
        "asctime",
        "taskName",
    }
)
#: Extras some libraries add that repeat another field: uvicorn's message with colours.
_DROPPED: Final = frozenset({"color_message"})
#: Loggers of libraries that say every request at INFO.
_CHATTY: Final = ("httpx", "httpcore")


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields of one record, in output order: time, level, logger, message, extras.

    ``exception`` holds the formatted traceback when the record carries one.
    """
    fields: dict[str, Any] = {
        "time": timestamp(record.created),
        "level": record.levelname.lower(),
        "logger": record.name,
        "message": record.getMessage(),
    }
    for key, value in record.__dict__.items():
        if key not in _STANDARD and key not in _DROPPED and not key.startswith("_"):
            fields[key] = value
    if record.exc_info:
        fields["exception"] = logging.Formatter().formatException(record.exc_info)
    elif record.exc_text:
        fields["exception"] = record.exc_text
    if record.stack_info:
        fields["stack"] = record.stack_info
    return fields


def timestamp(created: float) -> str:
    """RFC 3339 UTC with milliseconds; the seconds part is formatted once per second."""
    global _second_text
    second = int(created)
    cached = _second_text
    if cached[0] != second:
        cached = _second_text = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{int((created - second) * 1000):03d}Z"


#: The last second formatted and its text, replaced whole so that threads never mix them.
_second_text: tuple[int, str] = (-1, "")


def _fallback(value: Any) -> str:
    return str(value)


_json: Final = msgspec.json.Encoder(enc_hook=_fallback)


class JsonFormatter(logging.Formatter):
    """One JSON object per record; extras keep their JSON types, other values become text."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(self.format_fields(record_fields(record)))

    def format_fields(self, fields: dict[str, Any]) -> str:
        """The line of a record whose fields are ``fields`` (:func:`record_fields`' order)."""
        try:
            line = _json.encode(fields).decode()
        except (TypeError, ValueError, msgspec.EncodeError):
            line = _json.encode({key: _plain(value) for key, value in fields.items()}).decode()
        return mask_url_passwords(line)


def _plain(value: Any) -> Any:
    """``value`` itself when it is a JSON scalar, else its text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


class LogfmtFormatter(logging.Formatter):
    """One ``key=value`` line per record; ``message`` is written ``msg``, None is left out."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(self.format_fields(record_fields(record)))

    def format_fields(self, fields: dict[str, Any]) -> str:
        """The line of a record whose fields are ``fields`` (:func:`record_fields`' order)."""
        parts = []
        for key, value in fields.items():
            if value is None:
                continue
            name = "msg" if key == "message" else key
            kind = type(value)
            if kind is str:
                parts.append(f"{name}={_logfmt_text(value)}")
            elif kind is int or kind is float:
                parts.append(f"{name}={value!r}")
            else:
                parts.append(f"{name}={_logfmt_value(value)}")
        return mask_url_passwords(" ".join(parts))


@functools.lru_cache(maxsize=4096)
def _logfmt_text(text: str) -> str:
    """:func:`_logfmt_value` of a string, remembered: the job log writes the same levels,
    messages, types and worker ids on every line, and each job's id three times."""
    return _logfmt_value(text)


def _logfmt_value(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        return repr(value)
    elif isinstance(value, dt.datetime):
        # As the JSON format writes it (and the HTTP API): UTC with a Z.
        text = value.isoformat().replace("+00:00", "Z")
    else:
        try:
            text = _json.encode(value).decode()
        except (TypeError, ValueError, msgspec.EncodeError):
            text = str(value)
    if _BARE.fullmatch(text):
        return text
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


#: A value written as it is: printable ASCII without a space, a quote, ``=`` or ``\``.
_BARE: Final = re.compile(r"[!#-<>-\[\]-~]+")


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure_logging` installs; it also takes lines made elsewhere.

    A busy manager logs thousands of job events a second, and a record through
    ``logging`` costs 30 to 50 µs (the caller's frame, the record, the formatter, one
    write and flush per line): more than the job itself. The job log therefore makes
    its lines with this handler's formatter and hands them over a batch at a time, one
    write for the batch (:func:`direct_handler`).
    """

    formatter: JsonFormatter | LogfmtFormatter

    def __init__(self, stream: TextIO, formatter: JsonFormatter | LogfmtFormatter) -> None:
        super().__init__(stream)
        self.set_name(HANDLER_NAME)
        self.setFormatter(formatter)
        self.formatter = formatter

    def line(self, fields: dict[str, Any]) -> str:
        return self.formatter.format_fields(fields)

    def write_lines(self, lines: list[str]) -> None:
        if not lines:
            return
        text = "\n".join(lines) + "\n"
        with self.lock or contextlib.nullcontext():
            try:
                self.stream.write(text)
                self.flush()
            except Exception:  # as Handler.handleError: a log never raises
                sys.stderr.write(f"--- logging error: could not write {len(lines)} line(s)\n")


def direct_handler(logger: logging.Logger, level: int = logging.INFO) -> LineHandler | None:
    """The :class:`LineHandler` every ``level`` record of ``logger`` would reach, alone.

    None unless the record would go to that one handler and nowhere else, unfiltered:
    when a program or a test installed its own handlers or filters, records must go
    through ``logging`` so that they see every record as usual.
    """
    if not logger.isEnabledFor(level):
        return None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        if current.handlers:
            [handler, *others] = current.handlers
            if (
                others
                or current.parent is not None
                or not isinstance(handler, LineHandler)
                or handler.filters
                or handler.level > level
            ):
                return None
            return handler
        if not current.propagate:
            return None
        current = current.parent
    return None


def configure_logging(
    format: LogFormat = "plain", level: str | int = "info", *, stream: TextIO | None = None
) -> None:
    """Send every log record to ``stream`` (stderr) in ``format``, from ``level`` up.

    For the command line entry points only: a library never configures logging. Like
    ``logging.basicConfig``, it leaves alone a program whose root logger already has
    handlers (a test run's capture, an embedding application), except for the handler a
    previous call installed, which it replaces.
    """
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if handler.get_name() == HANDLER_NAME]
    if len(ours) != len(root.handlers):
        return
    for handler in ours:
        root.removeHandler(handler)
    handler = LineHandler(
        stream if stream is not None else sys.stderr,
        JsonFormatter() if format == "json" else LogfmtFormatter(),
    )
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def add_logging_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``--log-format`` and ``--log-level``, which every long-running command takes."""
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        default="plain",
        help="plain: key=value (logfmt) lines; json: one JSON object per line (default: plain)",
    )
    parser.add_argument(
        "--log-level",
        choices=LEVELS,
        default="info",
        help="the least severe records written (default: info)",
    )


def configure_from_arguments(args: argparse.Namespace) -> None:
    """:func:`configure_logging` as :func:`add_logging_arguments`' options ask."""
    configure_logging(args.log_format, args.log_level)
