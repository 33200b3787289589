"""What psycopg raises, as forerunner errors: the one hierarchy callers catch.

The manager answers :class:`~forerunner.errors.BackendUnavailable` with "try again
later" and :class:`~forerunner.errors.ValidationError` with "your input is wrong", so
the line between them matters more than the wording: a lost connection, a server
restarting or refusing connections, and a pool that cannot hand out a connection in
time are unavailable; a value PostgreSQL cannot hold is the caller's to fix; anything
else is a :class:`~forerunner.errors.BackendError`. The driver's error is always
chained as ``__cause__``, and every message names the store's URL with its password
masked.
"""

from __future__ import annotations

from typing import Final

import psycopg
import psycopg.errors
import psycopg_pool

from forerunner.errors import BackendError, BackendUnavailable, ForerunnerError, ValidationError
from forerunner.urls import mask_secrets

__all__ = ["is_connection_failure", "is_transient_conflict", "translate"]

#: Conflicts PostgreSQL resolves by aborting one statement, which changed nothing:
#: running the statement again is safe and usually succeeds.
_TRANSIENT: Final = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


def is_transient_conflict(error: BaseException) -> bool:
    return isinstance(error, _TRANSIENT)


def is_connection_failure(error: BaseException) -> bool:
    """Whether ``error`` says the server or the connection is gone, not the statement wrong."""
    if isinstance(error, psycopg_pool.PoolTimeout):
        return True
    if isinstance(error, psycopg.errors.TransactionRollback | psycopg_pool.PoolClosed):
        return False
    return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)


def translate(error: Exception, display: str) -> ForerunnerError:
    """The forerunner error for a driver error raised by the store at ``display``."""
    if isinstance(error, ForerunnerError):
        return error
    cause = describe(error)
    if isinstance(error, psycopg_pool.PoolClosed):
        return BackendError(
            f"the PostgreSQL store {display} is closed; open it again to go on ({cause})"
        )
    if is_connection_failure(error):
        return BackendUnavailable(
            f"the PostgreSQL store {display} is unavailable: {cause}. Check that the server "
            "runs and accepts connections; the store reconnects by itself once it does"
        )
    if isinstance(error, psycopg.errors.UniqueViolation):
        constraint = error.diag.constraint_name or ""
        detail = error.diag.message_detail or ""
        if constraint.endswith("_pkey"):
            return ValidationError(
                f"a job id of the batch is already stored or repeated in the batch ({detail}); "
                "every job needs a new id (forerunner.new_id())",
                field="id",
            )
    if isinstance(error, psycopg.DataError | psycopg.IntegrityError):
        return ValidationError(
            f"PostgreSQL cannot store a value of this call: {cause}. Integers must fit in "
            "64 bits (priority) or 32 bits (attempt, max_attempts), and text fields (id, "
            "type, key, worker) cannot hold NUL characters"
        )
    if isinstance(error, UnicodeEncodeError):
        return ValidationError(
            f"a text field cannot be sent to PostgreSQL: {error}; ids, types, keys and "
            "worker names must be valid Unicode without lone surrogates"
        )
    if isinstance(error, psycopg.errors.UndefinedTable):
        return BackendError(
            f"the PostgreSQL store {display} has lost its tables ({cause}); was the schema "
            "dropped while the store was open? Open the store again to recreate it"
        )
    return BackendError(f"the PostgreSQL store {display} failed: {cause}")


def describe(error: BaseException) -> str:
    """The error's class and first line: enough to search for, short enough for one log line.

    Secrets are masked: libpq quotes parts of a connection string in some of its messages,
    and this text reaches logs and HTTP answers.
    """
    text = mask_secrets(str(error)).strip()
    first = text.splitlines()[0] if text else ""
    sqlstate = getattr(error, "sqlstate", None)
    code = f" [SQLSTATE {sqlstate}]" if sqlstate else ""
    return f"{type(error).__name__}{code}: {first}" if first else f"{type(error).__name__}{code}"
