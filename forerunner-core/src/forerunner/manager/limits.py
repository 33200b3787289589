"""How much one caller may ask of a manager: the sizes and counts it refuses beyond.

A manager shared by many teams must not let one caller's mistake (a 2 GB payload, a
thousand open polls, a client that sends a byte a minute) take it from everyone else.
Every limit answers with a clear error (413, 408, 429) and changes nothing.
"""

from __future__ import annotations

from typing import Final

import attrs

__all__ = ["DEFAULT_LIMITS", "Limits"]

KIB: Final = 1024
MIB: Final = 1024 * KIB


@attrs.frozen(kw_only=True)
class Limits:
    """The manager's limits; every field has the default an operator most likely wants."""

    #: Largest request body, in bytes (413 ``too_large``). A batch of 1,000 small jobs
    #: fits; a worker splits its reports to stay under it.
    max_body: int = attrs.field(default=MIB, validator=attrs.validators.ge(1024))
    #: Largest job data, as JSON bytes (413 ``too_large``, naming the job).
    max_data: int = attrs.field(default=512 * KIB, validator=attrs.validators.ge(1))
    #: Largest result (or progress value), as JSON bytes. A bigger result is recorded as
    #: a failed attempt of type ``ResultTooLarge``; a bigger progress value is dropped.
    max_result: int = attrs.field(default=512 * KIB, validator=attrs.validators.ge(1))
    #: Requests one token may have in flight at once (429 ``too_many_requests``).
    max_in_flight: int = attrs.field(default=256, validator=attrs.validators.ge(1))
    #: Seconds a client has to send a request's headers, and then its body; a slower
    #: client (slowloris) has its connection closed (headers) or gets 408 (body).
    header_timeout: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    body_timeout: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    #: Largest request head (request line and headers), in bytes (431, or the
    #: connection closed).
    max_header_bytes: int = attrs.field(default=16 * KIB, validator=attrs.validators.ge(1024))


DEFAULT_LIMITS: Final = Limits()
