"""schemathesis hooks for ./dev test's API contract step (loaded from schemathesis.toml).

They change two things in every request, in every phase, just before it is sent:

- Long waits. ``/wait``'s timeout and a poll's ``wait`` may be up to 60 and 30 s, and
  a fuzzer finds the top of every range: a run would spend its time waiting. A valid
  wait is shortened to a fraction of a second (``/wait`` without one gets one, since
  its default is 30 s); an invalid one is sent as generated, so the manager is still
  seen refusing it.
- Whole floats. Under OpenAPI 3.1 ``2.0`` is an integer, and schemathesis sends one
  where the document says integer; the manager reads integers as JSON integer
  literals only, as its document says. A whole float is sent as the integer it spells.
"""

from __future__ import annotations

from typing import Any, Final

import schemathesis

#: The longest wait a request keeps, in seconds.
SHORT_WAIT: Final = 0.2
#: The longest valid ``/wait`` timeout and poll ``wait``, in seconds.
LONGEST_JOB_WAIT: Final = 60.0
LONGEST_POLL_WAIT: Final = 30.0


def _whole(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {key: _whole(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole(item) for item in value]
    return value


def _short(value: Any, longest: float) -> Any:
    """``value`` capped at :data:`SHORT_WAIT` if it is a valid wait, else unchanged."""
    if isinstance(value, bool):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return min(number, SHORT_WAIT) if 0 <= number <= longest else value


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: Any, kwargs: dict[str, Any]) -> None:
    path = case.operation.path
    if path.endswith("/wait"):
        query = dict(case.query or {})
        query["timeout"] = _short(query.get("timeout", SHORT_WAIT), LONGEST_JOB_WAIT)
        case.query = query
    body = case.body
    if isinstance(body, dict | list):
        body = _whole(body)
        if path == "/v1/workers/poll" and isinstance(body, dict) and "wait" in body:
            body["wait"] = _short(body["wait"], LONGEST_POLL_WAIT)
        case.body = body
