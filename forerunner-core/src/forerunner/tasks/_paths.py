"""Where the builtin file tasks may read and write: only under one root directory.

``fetch`` and ``targz`` take paths that anyone allowed to submit a job chose, and run
with the worker's rights. Without a bound, a job could archive ``/etc`` or ``~/.ssh``
into a file it then fetches, or download over any file the worker can write. So every
path they use must lie under the root the worker's operator chose,
``FORERUNNER_FILES_ROOT`` (read from the worker's environment each time a task runs;
default: the worker's working directory). Relative paths are taken under the root.

A path is judged once its symbolic links are resolved, parents' included, so a link
inside the root that leads out of it does not lead a task out. The directories a task
then uses are opened one name at a time from a handle on the root, never following a
link (and created the same way when missing), and files are made through those
handles: a directory swapped for a link after the check is refused, not followed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Final

from forerunner.errors import ConfigurationError, ValidationError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from io import BufferedWriter

__all__ = ["FILES_ROOT_ENV", "files_root", "open_directory", "replacing", "within_root"]

#: Worker setting: the directory the builtin file tasks may read and write under.
FILES_ROOT_ENV: Final = "FORERUNNER_FILES_ROOT"

_DIRECTORY_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def files_root(environ: Mapping[str, str] | None = None) -> Path:
    """The resolved root the worker's environment (or ``environ``) sets.

    An empty or absent setting means the worker's working directory. A root that is not
    an existing directory is the operator's mistake, not the job's: ConfigurationError.
    """
    env = os.environ if environ is None else environ
    setting = env.get(FILES_ROOT_ENV, "")
    root = Path(setting or os.getcwd()).resolve()
    if not root.is_dir():
        raise ConfigurationError(
            f"{FILES_ROOT_ENV}={setting!r} is not a directory; the builtin file tasks "
            "read and write only under it"
        )
    return root


def within_root(root: Path, value: str, field: str, task: str) -> Path:
    """``value`` resolved under ``root`` (links and ``..`` included), if it stays inside.

    Parts that do not exist yet are taken as they are written, so a missing directory
    followed by ``..`` cannot climb out either.
    """
    if "\0" in value:
        raise ValidationError(f"{task}: {field} must not contain a NUL character", field=field)
    resolved = Path(os.path.realpath(root / value))
    if not resolved.is_relative_to(root):
        raise ValidationError(
            f"{task}: {field} {value!r} lies outside {root}; the builtin file tasks read "
            f"and write only under {FILES_ROOT_ENV} (set in the worker's environment; "
            "default: the worker's working directory)",
            field=field,
        )
    return resolved


@contextlib.contextmanager
def open_directory(
    root: Path, path: Path, field: str, task: str, *, create: bool = False
) -> Iterator[int]:
    """A handle on the directory ``path`` (resolved, inside ``root``), opened name by name.

    Each name is opened from its parent's handle without following a link, and made
    first when ``create`` is set and it is missing; so a directory that became a link
    after :func:`within_root` judged the path is refused rather than followed out.
    """
    handle = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in path.relative_to(root).parts:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, dir_fd=handle)
            try:
                child = os.open(name, _DIRECTORY_FLAGS, dir_fd=handle)
            except OSError as error:
                raise ValidationError(
                    f"{task}: {field} {str(path)!r} is not a directory under {FILES_ROOT_ENV} "
                    f"({name!r}: {error.strerror}; links are not followed here)",
                    field=field,
                ) from error
            os.close(handle)
            handle = child
        yield handle
    finally:
        os.close(handle)


@contextlib.contextmanager
def replacing(directory: int, name: str) -> Iterator[BufferedWriter]:
    """A binary file that becomes ``name`` in ``directory`` only if the block completes.

    Written under a temporary name beside it and renamed into place, so a failed or
    retried attempt never leaves a truncated file under the final name; the rename
    replaces a link of that name rather than writing through it.
    """
    temporary = f".{name}.{secrets.token_hex(6)}.part"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    handle = os.open(temporary, flags, 0o600, dir_fd=directory)
    try:
        with os.fdopen(handle, "wb") as file:
            yield file
        os.replace(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=directory)
        raise
