"""Tasks that make files: ``fetch`` downloads URLs, ``targz`` archives a directory.

Both read and write only under the worker's files root, ``FORERUNNER_FILES_ROOT``
(default: the worker's working directory; see :mod:`forerunner.tasks._paths`): the
paths come from whoever submitted the job, who is not the worker's operator. Both write
to a temporary name beside the destination and rename it into place, so a failed or
retried attempt never leaves a truncated file under the final name, and a retry of the
same job overwrites rather than piles up copies.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import stat
import tarfile
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from forerunner.errors import ValidationError
from forerunner.tasks._data import mapping, optional_number, required_str
from forerunner.tasks._paths import (
    FILES_ROOT_ENV,
    files_root,
    open_directory,
    replacing,
    within_root,
)
from forerunner.tasks._web import (
    DEFAULT_TIMEOUT,
    check_address,
    http_url,
    new_client,
    read_capped,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from io import BufferedWriter

__all__ = ["DEFAULT_MAX_BYTES", "FILES_ROOT_ENV", "fetch", "safe_filename", "targz"]

#: The largest download ``fetch`` accepts per URL unless the job's ``max_bytes`` says more.
DEFAULT_MAX_BYTES: Final = 100 * 1024 * 1024
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME: Final = 200


def fetch(job_id: str, data: Any) -> list[dict[str, Any]]:
    """Download ``origin`` (a URL or a list of URLs) into the directory ``destination``.

    ``destination`` must lie under the worker's files root (``FORERUNNER_FILES_ROOT``,
    default its working directory); a relative one is taken under the root, and is made
    if missing. A file of the same name there is replaced, never written through.

    Optional ``max_bytes`` (per URL, default 100 MiB) and ``timeout`` (seconds per URL
    for the whole exchange, redirects included, default 30). Every URL is checked before
    anything is downloaded. Returns one ``{"url", "path", "status", "bytes"}`` per URL,
    in order; a URL answering with an HTTP error fails the job (the worker's retry
    policy then applies).

    Only http and https URLs at public addresses are fetched, and every redirect hop is
    held to the same rule: a job must not make the worker read its own network or the
    cloud metadata service. A worker meant to fetch from private addresses allows them
    in its environment: ``FORERUNNER_FETCH_ALLOW_NETWORKS=10.0.0.0/8,127.0.0.1`` (these
    networks) or ``FORERUNNER_FETCH_ALLOW_PRIVATE=1`` (every address).
    """
    given = mapping(data, "fetch")
    origin = given.get("origin")
    if isinstance(origin, str):
        fields = {"origin": http_url(origin, "origin", "fetch")}
    elif isinstance(origin, list) and origin:
        fields = {
            f"origin.{i}": http_url(url, f"origin.{i}", "fetch") for i, url in enumerate(origin)
        }
    else:
        raise ValidationError(
            f"fetch needs 'origin': a URL or a non-empty list of URLs, got {origin!r}",
            field="origin",
        )
    named = required_str(given, "destination", "fetch")
    max_bytes = int(optional_number(given, "max_bytes", DEFAULT_MAX_BYTES, "fetch", integer=True))
    timeout = optional_number(given, "timeout", DEFAULT_TIMEOUT, "fetch")
    root = files_root()
    destination = within_root(root, named, "destination", "fetch")
    for field, url in fields.items():
        check_address(url, field, "fetch")

    results: list[dict[str, Any]] = []
    taken: set[str] = set()
    with open_directory(root, destination, "destination", "fetch", create=True) as directory:
        for field, url in fields.items():
            name = _unique(safe_filename(url), taken)
            with (
                new_client(timeout, field, "fetch") as client,
                client.stream("GET", url) as response,
            ):
                response.raise_for_status()
                with replacing(directory, name) as out:
                    size = 0
                    for chunk in read_capped(response, max_bytes, "max_bytes"):
                        out.write(chunk)
                        size += len(chunk)
            path = str(destination / name)
            results.append(
                {"url": url, "path": path, "status": response.status_code, "bytes": size}
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

    Both must lie under the worker's files root (``FORERUNNER_FILES_ROOT``, default its
    working directory), links resolved; relative ones are taken under the root.

    Members are named relative to ``origin`` and added in sorted order, so the same tree
    gives the same member list. Nothing outside ``origin`` ever gets in: symbolic links
    are never followed; a link that leads to an existing file or directory inside
    ``origin`` is stored as a link, rewritten relative to itself so the archive does not
    point back at this worker's disk when unpacked elsewhere; a link that leads outside,
    loops or dangles is left out and listed in ``skipped``, and so are devices, FIFOs and
    sockets. Directories are walked by handle and files opened without following links,
    so a tree changed while it is archived cannot swap a link in. Nothing is extracted.
    Returns ``{"path", "files", "bytes", "skipped"}``.
    """
    given = mapping(data, "targz")
    named_origin = required_str(given, "origin", "targz")
    named_destination = required_str(given, "destination", "targz")
    root = files_root()
    origin = within_root(root, named_origin, "origin", "targz")
    destination = within_root(root, named_destination, "destination", "targz")
    if not origin.is_dir():
        raise ValidationError(f"targz: origin {named_origin!r} is not a directory", field="origin")
    if not destination.name.endswith((".tar.gz", ".tgz")):
        raise ValidationError(
            f"targz: destination {named_destination!r} must end in .tar.gz or .tgz",
            field="destination",
        )
    with (
        open_directory(root, origin, "origin", "targz") as origin_fd,
        open_directory(root, destination.parent, "destination", "targz", create=True) as parent,
    ):
        with replacing(parent, destination.name) as out:
            # The archive being written, and the one it replaces, may lie inside origin.
            excluded = {_identity(out.fileno())}
            with contextlib.suppress(FileNotFoundError):
                excluded.add(_identity(os.stat(destination.name, dir_fd=parent)))
            files, skipped = _archive(out, origin, origin_fd, excluded)
        size = os.stat(destination.name, dir_fd=parent).st_size
    return {"path": str(destination), "files": files, "bytes": size, "skipped": skipped}


def _archive(
    out: BufferedWriter, origin: Path, origin_fd: int, excluded: set[tuple[int, int]]
) -> tuple[int, list[str]]:
    """Write the tree under ``origin`` to ``out`` as a gzipped tarball.

    The number of files added, and the members left out.
    """
    files = 0
    skipped: list[str] = []
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for top, name, status, dir_fd in _walk(origin_fd):
            member = posixpath.normpath(posixpath.join(top, name))
            if stat.S_ISLNK(status.st_mode):
                target = _link_target(origin, origin / top, name)
                if target is None:
                    skipped.append(member)
                    continue
                info = tarfile.TarInfo(member)
                info.type, info.linkname = tarfile.SYMTYPE, target
                _copy_status(info, status)
                archive.addfile(info)
            elif stat.S_ISDIR(status.st_mode):
                info = tarfile.TarInfo(member)
                info.type = tarfile.DIRTYPE
                _copy_status(info, status)
                archive.addfile(info)
            elif stat.S_ISREG(status.st_mode):
                files += _add_file(
                    archive, member, name, dir_fd, excluded=excluded, skipped=skipped
                )
            else:
                skipped.append(member)
    return files, skipped


def _walk(origin: int) -> Iterator[tuple[str, str, os.stat_result, int]]:
    """``(directory, name, lstat, directory handle)`` under the directory handle ``origin``.

    In sorted order; ``directory`` is relative to ``origin`` (``.``, ``./sub``).
    :func:`os.fwalk` descends through directory handles and never through a link, so a
    directory swapped for a link while the walk runs is not entered.
    """
    for top, dirs, names, dir_fd in os.fwalk(".", follow_symlinks=False, dir_fd=origin):
        dirs.sort()
        for name in sorted([*dirs, *names]):
            try:
                status = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            yield top, name, status, dir_fd


def _link_target(root: Path, directory: Path, name: str) -> str | None:
    """The link's target relative to its directory, if it exists inside ``root``.

    None for a link that leads outside ``root``, dangles, or loops.
    """
    path = directory / name
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if target != root and root not in target.parents:
        return None
    return Path(os.path.relpath(target, directory.resolve())).as_posix()


def _add_file(
    archive: tarfile.TarFile,
    member: str,
    name: str,
    dir_fd: int,
    *,
    excluded: set[tuple[int, int]],
    skipped: list[str],
) -> int:
    """Add the regular file ``name`` of ``dir_fd``; 1 if it was added, else 0.

    Opened without following a link, and without blocking on a FIFO, so whatever was
    swapped in since the walk saw a regular file is refused rather than read.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        handle = os.open(name, flags, dir_fd=dir_fd)
    except OSError:
        skipped.append(member)
        return 0
    with os.fdopen(handle, "rb") as file:
        status = os.fstat(file.fileno())
        if _identity(file.fileno()) in excluded:
            return 0
        if not stat.S_ISREG(status.st_mode):
            skipped.append(member)
            return 0
        info = archive.gettarinfo(arcname=member, fileobj=file)
        archive.addfile(info, file if info.isreg() else None)
    return 1


def _identity(file: int | os.stat_result) -> tuple[int, int]:
    status = os.fstat(file) if isinstance(file, int) else file
    return status.st_dev, status.st_ino


def _copy_status(info: tarfile.TarInfo, status: os.stat_result) -> None:
    info.mode = stat.S_IMODE(status.st_mode)
    info.mtime = int(status.st_mtime)
    info.uid, info.gid = status.st_uid, status.st_gid


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``stem-2.ext`` and so on when two URLs of one job share a name."""
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        stem, dot, suffix = name.partition(".")
        candidate = f"{stem}-{number}{dot}{suffix}"
    taken.add(candidate)
    return candidate
