"""The ``targz`` builtin task: archiving a directory without leaking the rest of the disk.

Covers the archive's members and the result's counts, that symbolic links are never
followed out of ``origin`` (links inside are kept as links, stored relative), that links
which loop or dangle and special files are left out and listed, that a file swapped for
a link after the walk saw it is not read through the link, that every member name and
link target stays inside the archive, that an archive written inside ``origin`` does
not contain itself, and that bad data names the field. ``targz`` only creates archives;
nothing here extracts one. The worker's files root is ``tmp_path`` (the ``root``
fixture); what lies outside it is covered by ``test_tasks_paths.py``.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
from typing import TYPE_CHECKING, Any

import pytest

from forerunner.errors import ValidationError
from forerunner.tasks import files, targz
from forerunner.tasks.files import FILES_ROOT_ENV

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The worker's files root: ``tmp_path``, so every path these tests use is inside it."""
    monkeypatch.setenv(FILES_ROOT_ENV, str(tmp_path))
    return tmp_path


@pytest.fixture
def tree(root: Path) -> Path:
    origin = root / "origin"
    (origin / "sub").mkdir(parents=True)
    (origin / "a.txt").write_text("alpha", encoding="utf-8")
    (origin / "sub" / "b.txt").write_text("beta", encoding="utf-8")
    return origin


def members(path: str) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path, "r:gz") as archive:
        return {member.name: member for member in archive.getmembers()}


def test_targz_archives_the_tree_relative_to_origin(tree: Path, root: Path) -> None:
    destination = root / "out" / "tree.tar.gz"
    result = targz("job", {"origin": str(tree), "destination": str(destination)})
    assert result == {
        "path": str(destination),
        "files": 2,
        "bytes": destination.stat().st_size,
        "skipped": [],
    }
    assert sorted(members(str(destination))) == ["a.txt", "sub", "sub/b.txt"]
    with tarfile.open(destination, "r:gz") as archive:
        extracted = archive.extractfile("sub/b.txt")
        assert extracted is not None
        assert extracted.read() == b"beta"


def test_targz_never_follows_symlinks_out_of_origin(tree: Path, root: Path) -> None:
    # Given links to a secret file and a directory outside origin, and one inside
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret", encoding="utf-8")
    (tree / "leak.txt").symlink_to(outside / "secret.txt")
    (tree / "leakdir").symlink_to(outside, target_is_directory=True)
    (tree / "sub" / "alias.txt").symlink_to(tree / "a.txt")

    # When the tree is archived
    destination = root / "tree.tgz"
    result = targz("job", {"origin": str(tree), "destination": str(destination)})

    # Then the escaping links are left out and listed, the inside link stays a link
    assert result["skipped"] == ["leak.txt", "leakdir"]
    found = members(str(destination))
    assert "leak.txt" not in found
    assert not any(name.startswith("leakdir") for name in found)
    assert found["sub/alias.txt"].issym()
    with tarfile.open(destination, "r:gz") as archive:
        contents = [
            handle.read()
            for member in archive.getmembers()
            if member.isfile() and (handle := archive.extractfile(member)) is not None
        ]
    assert b"secret" not in contents


def test_targz_leaves_out_links_that_loop_dangle_or_escape_through_another_link(
    tree: Path, root: Path
) -> None:
    # Given a loop of two links, a link to itself, a dangling link, and a link that
    # names a path inside origin which a second link leads outside
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret", encoding="utf-8")
    (tree / "loop-a").symlink_to("loop-b")
    (tree / "loop-b").symlink_to("loop-a")
    (tree / "self").symlink_to("self")
    (tree / "dangling").symlink_to("missing.txt")
    (tree / "door").symlink_to(outside, target_is_directory=True)
    (tree / "via").symlink_to("door/secret.txt")

    # When the tree is archived
    destination = root / "tree.tgz"
    result = targz("job", {"origin": str(tree), "destination": str(destination)})

    # Then none of them is in the archive, each is listed, and the rest is there
    assert result["skipped"] == ["dangling", "door", "loop-a", "loop-b", "self", "via"]
    assert sorted(members(str(destination))) == ["a.txt", "sub", "sub/b.txt"]


def test_targz_leaves_out_special_files(tree: Path, root: Path) -> None:
    os.mkfifo(tree / "pipe")
    destination = root / "tree.tgz"
    result = targz("job", {"origin": str(tree), "destination": str(destination)})
    assert result["skipped"] == ["pipe"]
    assert "pipe" not in members(str(destination))


def test_targz_stores_names_and_link_targets_that_stay_inside_the_archive(
    tree: Path, root: Path
) -> None:
    # Given links inside origin written as absolute paths, and a hard link
    (tree / "sub" / "absolute.txt").symlink_to(tree / "a.txt")
    (tree / "sub" / "up").symlink_to(tree, target_is_directory=True)
    os.link(tree / "a.txt", tree / "sub" / "hard.txt")

    destination = root / "tree.tgz"
    targz("job", {"origin": str(tree), "destination": str(destination)})

    # Then every name is relative, and every link resolves, by name alone, inside
    found = members(str(destination))
    assert found["sub/absolute.txt"].linkname == "../a.txt"
    assert found["sub/up"].linkname == ".."
    assert found["sub/hard.txt"].islnk()
    for name, member in found.items():
        assert not name.startswith("/")
        assert ".." not in name.split("/")
        if member.issym():
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
        elif member.islnk():
            target = member.linkname
        else:
            continue
        assert not member.linkname.startswith("/")
        assert target == "." or not target.startswith(".."), (name, member.linkname)


def test_targz_does_not_read_a_file_swapped_for_a_link_after_the_walk(
    tree: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a link to a secret, which the walk reports as the regular file it was a
    # moment before (the swap a racing job could make)
    outside = root / "secret.txt"
    outside.write_text("secret", encoding="utf-8")
    (tree / "swapped.txt").symlink_to(outside)
    regular = os.stat(tree / "a.txt")
    walk = files._walk

    def walk_before_the_swap(origin: int) -> Iterator[tuple[str, str, os.stat_result, int]]:
        for top, name, status, dir_fd in walk(origin):
            yield top, name, regular if name == "swapped.txt" else status, dir_fd

    monkeypatch.setattr(files, "_walk", walk_before_the_swap)

    # When the tree is archived
    destination = root / "tree.tgz"
    result = targz("job", {"origin": str(tree), "destination": str(destination)})

    # Then the file is refused rather than read through the link
    assert result["skipped"] == ["swapped.txt"]
    assert "swapped.txt" not in members(str(destination))


def test_targz_does_not_archive_itself(tree: Path) -> None:
    destination = tree / "self.tar.gz"
    targz("job", {"origin": str(tree), "destination": str(destination)})
    targz("job", {"origin": str(tree), "destination": str(destination)})
    assert not any(name.startswith(("self", ".self")) for name in members(str(destination)))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ("dir", "data"),
        ({"destination": "x.tar.gz"}, "origin"),
        ({"origin": "{missing}", "destination": "x.tar.gz"}, "origin"),
        ({"origin": "{tree}"}, "destination"),
        ({"origin": "{tree}", "destination": "archive.zip"}, "destination"),
    ],
)
def test_targz_refuses_bad_data_naming_the_field(
    data: Any, field: str, tree: Path, root: Path
) -> None:
    if isinstance(data, dict):
        data = {
            key: value.format(tree=tree, missing=root / "missing") for key, value in data.items()
        }
    with pytest.raises(ValidationError) as refused:
        targz("job", data)
    assert refused.value.field == field
