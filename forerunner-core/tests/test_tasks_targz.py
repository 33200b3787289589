"""The ``targz`` builtin task: archiving a directory without leaking the rest of the disk.

Covers the archive's members and the result's counts, that symbolic links are never
followed out of ``origin`` (links inside are kept as links), that an archive written
inside ``origin`` does not contain itself, and that bad data names the field.
"""

from __future__ import annotations

import tarfile
from typing import TYPE_CHECKING, Any

import pytest

from forerunner.errors import ValidationError
from forerunner.tasks import targz

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    origin = tmp_path / "origin"
    (origin / "sub").mkdir(parents=True)
    (origin / "a.txt").write_text("alpha", encoding="utf-8")
    (origin / "sub" / "b.txt").write_text("beta", encoding="utf-8")
    return origin


def members(path: str) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path, "r:gz") as archive:
        return {member.name: member for member in archive.getmembers()}


def test_targz_archives_the_tree_relative_to_origin(tree: Path, tmp_path: Path) -> None:
    destination = tmp_path / "out" / "tree.tar.gz"
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


def test_targz_never_follows_symlinks_out_of_origin(tree: Path, tmp_path: Path) -> None:
    # Given links to a secret file and a directory outside origin, and one inside
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret", encoding="utf-8")
    (tree / "leak.txt").symlink_to(outside / "secret.txt")
    (tree / "leakdir").symlink_to(outside, target_is_directory=True)
    (tree / "sub" / "alias.txt").symlink_to(tree / "a.txt")

    # When the tree is archived
    destination = tmp_path / "tree.tgz"
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
    data: Any, field: str, tree: Path, tmp_path: Path
) -> None:
    if isinstance(data, dict):
        data = {
            key: value.format(tree=tree, missing=tmp_path / "missing")
            for key, value in data.items()
        }
    with pytest.raises(ValidationError) as refused:
        targz("job", data)
    assert refused.value.field == field
