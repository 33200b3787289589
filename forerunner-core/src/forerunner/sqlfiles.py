"""Named SQL queries kept in ``.sql`` files inside a package, in procrastinate's style.

SQL lives in files so that it reads, diffs and lints as SQL, and a reviewer sees every
statement a store runs in one place. A queries file is a sequence of blocks, each
opened by a header line naming it::

    -- name: claim_jobs
    -- Comments after the header document the query; they stay in its text.
    UPDATE forerunner_jobs SET ...;

Only comments and blank lines may precede the first header, so a statement cannot be
left nameless by mistake, and a name may not repeat, so one block cannot silently
shadow another. Both mistakes are packaging bugs found when the module loads, which is
why they raise :class:`~forerunner.errors.ConfigurationError` naming the file and line.
"""

from __future__ import annotations

import importlib.resources
import re
import types
from typing import TYPE_CHECKING, Final

from forerunner.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["load_queries", "load_script", "parse_queries"]

_HEADER: Final = re.compile(r"^--\s*name:(?P<name>.*)$")
_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def load_script(package: str, resource: str) -> str:
    """Return the text of ``resource`` (a ``/``-separated path inside ``package``)."""
    try:
        return importlib.resources.files(package).joinpath(resource).read_text(encoding="utf-8")
    except (OSError, ModuleNotFoundError) as error:
        raise ConfigurationError(
            f"SQL file {resource!r} of package {package!r} cannot be read: {error}; "
            "the package is installed incompletely, reinstall it"
        ) from error


def load_queries(package: str, resource: str) -> Mapping[str, str]:
    """Return the named queries of ``resource`` in ``package``, read-only, by name."""
    return parse_queries(load_script(package, resource), f"{package}/{resource}")


def parse_queries(text: str, source: str) -> Mapping[str, str]:
    """Split a queries file into its named blocks; ``source`` names the file in errors."""
    queries: dict[str, str] = {}
    first_line: dict[str, int] = {}
    name: str | None = None
    body: list[str] = []

    def close_block() -> None:
        if name is None:
            return
        query = "\n".join(body).strip()
        if not _has_statement(query):
            raise ConfigurationError(
                f"{source}, line {first_line[name]}: query {name!r} has no SQL after its "
                "header; write the statement or delete the header"
            )
        queries[name] = query

    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line.strip())
        if header is not None:
            close_block()
            name = header["name"].strip()
            if not _NAME.match(name):
                raise ConfigurationError(
                    f"{source}, line {number}: {name!r} is not a query name; write "
                    "'-- name: some_name' with letters, digits and underscores"
                )
            if name in first_line:
                raise ConfigurationError(
                    f"{source}, line {number}: query {name!r} is already defined on line "
                    f"{first_line[name]}; every query needs its own name"
                )
            first_line[name] = number
            body = []
        elif name is None:
            if line.strip() and not line.strip().startswith("--"):
                raise ConfigurationError(
                    f"{source}, line {number}: SQL before the first '-- name: ...' header; "
                    "start every query with a header naming it"
                )
        else:
            body.append(line)
    close_block()
    return types.MappingProxyType(queries)


def _has_statement(query: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in query.splitlines())
