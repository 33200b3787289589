"""Tasks that make files: ``fetch`` downloads URLs, ``targz`` archives a directory.

Both write to a temporary name beside the destination and rename it into place, so a
failed or retried attempt never leaves a truncated file under the final name, and a
retry of the same job overwrites rather than piles up copies.
"""

from __future__ import annotations

import contextlib
import os
import re
import tarfile
import tempfile
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from forerunner.errors import ValidationError
from forerunner.tasks._data import mapping, optional_number, required_str
from forerunner.tasks._web import DEFAULT_TIMEOUT, http_url, new_client, read_capped

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["DEFAULT_MAX_BYTES", "fetch", "safe_filename", "targz"]

#: The largest download ``fetch`` accepts per URL unless the job's ``max_bytes`` says more.
DEFAULT_MAX_BYTES: Final = 100 * 1024 * 1024
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME: Final = 200


def fetch(job_id: str, data: Any) -> list[dict[str, Any]]:
    """Download ``origin`` (a URL or a list of URLs) into the directory ``destination``.

    Optional ``max_bytes`` (per URL, default 100 MiB) and ``timeout`` (seconds, default
    30). Every URL is checked before anything is downloaded. Returns one
    ``{"url", "path", "status", "bytes"}`` per URL, in order; a URL answering with an
    HTTP error fails the job (the worker's retry policy then applies).
    """
    given = mapping(data, "fetch")
    origin = given.get("origin")
    if isinstance(origin, str):
        urls = [http_url(origin, "origin", "fetch")]
    elif isinstance(origin, list) and origin:
        urls = [http_url(url, f"origin.{i}", "fetch") for i, url in enumerate(origin)]
    else:
        raise ValidationError(
            f"fetch needs 'origin': a URL or a non-empty list of URLs, got {origin!r}",
            field="origin",
        )
    destination = Path(required_str(given, "destination", "fetch"))
    max_bytes = int(optional_number(given, "max_bytes", DEFAULT_MAX_BYTES, "fetch", integer=True))
    timeout = optional_number(given, "timeout", DEFAULT_TIMEOUT, "fetch")
    destination.mkdir(parents=True, exist_ok=True)

    results: list[dict[str, Any]] = []
    taken: set[str] = set()
    with new_client(timeout) as client:
        for url in urls:
            path = destination / _unique(safe_filename(url), taken)
            with client.stream("GET", url) as response:
                response.raise_for_status()
                with _replacing(path) as out:
                    size = 0
                    for chunk in read_capped(response, max_bytes, "max_bytes"):
                        out.write(chunk)
                        size += len(chunk)
            results.append(
                {"url": url, "path": str(path), "status": response.status_code, "bytes": size}
            )
    return results


def safe_filename(url: str) -> str:
    """A file name for ``url`` that cannot leave the destination directory.

    The last path segment, percent-decoded, with everything but letters, digits, ``.``,
    ``_`` and ``-`` replaced by ``_``; ``index.html`` when the URL names a directory.
    Leading dots are dropped so no download becomes hidden or is named ``..``.
    """
    segment = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    name = _UNSAFE.sub("_", segment).lstrip(".")[-_MAX_NAME:]
    return name or "index.html"


def targz(job_id: str, data: Any) -> dict[str, Any]:
    """Archive the directory ``origin`` as the gzipped tarball ``destination``.

    Members are named relative to ``origin`` and added in sorted order, so the same tree
    gives the same member list. Symbolic links are never followed: a link whose target
    lies inside ``origin`` is stored as a link, and one pointing outside is left out
    and listed in ``skipped``, so an archive never carries files from elsewhere on the
    worker. Returns ``{"path", "files", "bytes", "skipped"}``.
    """
    given = mapping(data, "targz")
    origin = Path(required_str(given, "origin", "targz"))
    destination = Path(required_str(given, "destination", "targz"))
    if not origin.is_dir():
        raise ValidationError(f"targz: origin {str(origin)!r} is not a directory", field="origin")
    if not destination.name.endswith((".tar.gz", ".tgz")):
        raise ValidationError(
            f"targz: destination {str(destination)!r} must end in .tar.gz or .tgz",
            field="destination",
        )
    root = origin.resolve()
    destination.parent.mkdir(parents=True, exist_ok=True)
    final = destination.resolve()
    files = 0
    skipped: list[str] = []
    with _replacing(destination) as out, tarfile.open(fileobj=out, mode="w:gz") as archive:
        # The archive being written may itself lie inside origin.
        excluded = {final, Path(out.name).resolve()}
        for path in _walk(root):
            name = path.relative_to(root).as_posix()
            if path.is_symlink():
                if not _inside(root, path.resolve()):
                    skipped.append(name)
                    continue
            elif path.resolve() in excluded or not (path.is_file() or path.is_dir()):
                continue
            elif path.is_file():
                files += 1
            archive.add(path, arcname=name, recursive=False)
    return {
        "path": str(destination),
        "files": files,
        "bytes": destination.stat().st_size,
        "skipped": skipped,
    }


def _walk(root: Path) -> Iterator[Path]:
    """Everything under ``root`` in sorted order, descending into real directories only."""
    for top, dirs, names in os.walk(root, followlinks=False):
        dirs.sort()
        base = Path(top)
        for name in sorted([*dirs, *names]):
            yield base / name


def _inside(root: Path, target: Path) -> bool:
    return target == root or root in target.parents


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``stem-2.ext`` and so on when two URLs of one job share a name."""
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        stem, dot, suffix = name.partition(".")
        candidate = f"{stem}-{number}{dot}{suffix}"
    taken.add(candidate)
    return candidate


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[Any]:
    """A binary file that becomes ``path`` only if the block completes."""
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed and renamed below
        dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False
    )
    try:
        with handle:
            yield handle
        os.replace(handle.name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(handle.name)
        raise
