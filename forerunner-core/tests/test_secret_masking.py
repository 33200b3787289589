"""Masking secrets: in URLs forerunner shows, and in any text that reaches a log or stderr.

Every message forerunner writes masks the URL it names (``mask_password``); the log
formatters and the CLI's error line mask what others wrote (a driver's error, a plugin's
exception, a traceback) as a second line of defence (``mask_secrets``).
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from forerunner import cli, migrate_command
from forerunner.errors import ConfigurationError, PluginError
from forerunner.hookspecs import hookimpl
from forerunner.logs import JsonFormatter, LineHandler, LogfmtFormatter
from forerunner.plugins import PluginInfo, Registry
from forerunner.urls import mask_password, mask_secrets

SECRET = "s3cret-pw"
TOKEN = "tok3n-h4-0123456789abcdef"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u@h/db?password=s3cret-pw", "postgresql://u@h/db?password=***"),
        (
            "postgresql://u:s3cret-pw@h/db?schema=x&PASSWORD=s3cret-pw#f",
            "postgresql://u:***@h/db?schema=x&PASSWORD=***#f",
        ),
        (
            "postgresql://u@h/db?sslpassword=s3cret-pw&a=b",
            "postgresql://u@h/db?sslpassword=***&a=b",
        ),
        ("redis://h:6379/0?prefix=password", "redis://h:6379/0?prefix=password"),
    ],
)
def test_a_password_given_as_a_query_parameter_is_masked(url: str, shown: str) -> None:
    assert mask_password(url) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "could not open postgresql://root:s3cret-pw@db:5432/jobs: refused",
            "could not open postgresql://root:***@db:5432/jobs: refused",
        ),
        (
            "redis://:s3cret-pw@cache/0 and redis://u:s3cret-pw@other",
            "redis://:***@cache/0 and redis://u:***@other",
        ),
        (
            "a password with an at: redis://:s3cret-pw@x@cache/0",
            "a password with an at: redis://:***@cache/0",
        ),
        (
            "libpq: host=db password=s3cret-pw dbname=jobs",
            "libpq: host=db password=*** dbname=jobs",
        ),
        (
            "postgresql://u@db/jobs?password=s3cret-pw&schema=a",
            "postgresql://u@db/jobs?password=***&schema=a",
        ),
        (f"Authorization: Bearer {TOKEN}", "Authorization: Bearer ***"),
        (f"authorization: bearer {TOKEN}", "authorization: bearer ***"),
        ('{"a":"postgresql://u:s3cret-pw@h","b":"c@d"}', '{"a":"postgresql://u:***@h","b":"c@d"}'),
    ],
)
def test_secrets_in_free_text_are_masked(text: str, shown: str) -> None:
    assert mask_secrets(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "sqlite:///var/lib/a:b@c.db",
        "http://host:8080/path@x",
        "mail ops@example.com",
        "send `Authorization: Bearer TOKEN` with the request",
        "the bearer of the news",
        "job 01ABC succeeded in 0.2 s",
    ],
)
def test_text_without_secrets_is_left_as_it_is(text: str) -> None:
    assert mask_secrets(text) == text


# The log lines


def leaky_error() -> ValueError:
    try:
        raise ValueError(f"cannot reach postgresql://app:{SECRET}@db/jobs (Bearer {TOKEN})")
    except ValueError as error:
        return error


@pytest.mark.parametrize("formatter", [LogfmtFormatter(), JsonFormatter()], ids=["plain", "json"])
def test_a_log_record_is_written_with_its_secrets_masked_in_message_extras_and_traceback(
    formatter: LogfmtFormatter | JsonFormatter,
) -> None:
    stream = io.StringIO()
    logger = logging.getLogger("tests.secrets.records")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = LineHandler(stream, formatter)
    logger.addHandler(handler)
    try:
        logger.debug("opening %s", f"redis://:{SECRET}@cache/0", extra={"auth": f"Bearer {TOKEN}"})
        error = leaky_error()
        logger.error("failed", exc_info=error)
    finally:
        logger.removeHandler(handler)

    written = stream.getvalue()
    assert SECRET not in written
    assert TOKEN not in written
    assert "redis://:***@cache/0" in written
    assert "app:***@db" in written
    assert "Traceback" in written
    assert len(written.splitlines()) == 2


@pytest.mark.parametrize("formatter", [LogfmtFormatter(), JsonFormatter()], ids=["plain", "json"])
def test_a_job_log_line_masks_a_url_password_in_a_tasks_error_message(
    formatter: LogfmtFormatter | JsonFormatter,
) -> None:
    handler = LineHandler(io.StringIO(), formatter)

    line = handler.line(
        {
            "message": "job failed",
            "job_id": "j1",
            "error_message": f"could not connect to postgresql://app:{SECRET}@db/jobs",
        }
    )

    assert SECRET not in line
    assert "postgresql://app:***@db/jobs" in line
    if isinstance(formatter, JsonFormatter):
        assert json.loads(line)["job_id"] == "j1"


# Errors of plugins and the command line


class LeakyPlugin:
    """A store plugin whose factory quotes the URL it was given in its error."""

    @hookimpl
    def forerunner_store_backends(self) -> dict[str, Any]:
        def open_leaky(url: str) -> Any:
            raise ValueError(f"cannot open {url} (conninfo: password={SECRET})")

        def refuse_leaky(url: str) -> Any:
            raise ConfigurationError(f"store URL {url} is not accepted")

        return {"leaky": open_leaky, "leaky+config": refuse_leaky}


def leaky_registry() -> Registry:
    return Registry.from_plugins([(PluginInfo(name="leaky", module="tests"), LeakyPlugin())])


def test_a_plugins_error_quoting_its_url_is_reported_with_the_password_masked() -> None:
    with pytest.raises(PluginError) as raised:
        leaky_registry().open_store(f"leaky://user:{SECRET}@host/db")

    assert SECRET not in str(raised.value)
    assert "leaky://user:***@host/db" in str(raised.value)


@pytest.mark.parametrize("scheme", ["leaky", "leaky+config"])
def test_the_cli_error_line_masks_the_password_of_a_store_that_fails_to_open(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    # "leaky+config" raises a forerunner error quoting the URL, which the registry
    # passes on as it is: the CLI's own masking is what hides the password.
    monkeypatch.setattr(migrate_command, "get_registry", leaky_registry)

    code = cli.main(["migrate", "--store", f"{scheme}://user:{SECRET}@host/db"])

    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith("forerunner: error: ")
    assert f"{scheme}://user:***@host/db" in captured.err
    assert SECRET not in captured.out + captured.err
