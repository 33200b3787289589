"""The files root: ``fetch`` and ``targz`` read and write only under it.

The paths come from whoever submitted the job, who is not the worker's operator. Covers:
absolute paths outside the root, ``..`` climbing out (also past a directory that does
not exist yet), a parent directory that is a link leading outside, a destination that is
a link leading outside, a directory swapped for such a link after the check, relative
paths taken under the root, the root defaulting to the working directory, and a root
setting that is not a directory. Each refusal is a ValidationError on the field, naming
``FORERUNNER_FILES_ROOT``, made before anything is fetched or written.
"""

from __future__ import annotations

import http.server
import tarfile
import threading
from typing import TYPE_CHECKING, Any

import pytest

from forerunner.errors import ConfigurationError, ValidationError
from forerunner.tasks import ALLOW_NETWORKS_ENV, ALLOW_PRIVATE_ENV, fetch, targz
from forerunner.tasks import _paths as paths
from forerunner.tasks.files import FILES_ROOT_ENV

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The worker's files root, ``tmp_path/root``, with a tree to archive in it."""
    directory = tmp_path / "root"
    (directory / "tree" / "sub").mkdir(parents=True)
    (directory / "tree" / "a.txt").write_text("alpha", encoding="utf-8")
    monkeypatch.setenv(FILES_ROOT_ENV, str(directory))
    return directory


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the root, holding a secret and a file a job must not overwrite."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "secret.txt").write_text("secret", encoding="utf-8")
    (directory / "keep.tgz").write_text("keep", encoding="utf-8")
    (directory / "page.txt").write_text("keep", encoding="utf-8")
    return directory


class Site:
    """A local server answering every path with ``page``; it records what was requested."""

    def __init__(self) -> None:
        self.requested: list[str] = []
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requested.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "4")
                self.end_headers()
                self.wfile.write(b"page")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/page.txt"


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    monkeypatch.setenv(ALLOW_NETWORKS_ENV, "127.0.0.1/32")
    served = Site()
    thread = threading.Thread(target=served.http.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield served
    served.http.shutdown()
    served.http.server_close()
    thread.join(timeout=5)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def refused(task: Callable[[str, Any], Any], data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=FILES_ROOT_ENV) as refusal:
        task("job", data)
    assert refusal.value.field == field


def test_absolute_paths_outside_the_root_are_refused(root: Path, outside: Path, site: Site) -> None:
    before = snapshot(outside)
    refused(targz, {"origin": str(outside), "destination": "x.tgz"}, "origin")
    refused(targz, {"origin": "/etc", "destination": "x.tgz"}, "origin")
    refused(targz, {"origin": "tree", "destination": str(outside / "x.tgz")}, "destination")
    refused(fetch, {"origin": site.url, "destination": str(outside)}, "destination")
    refused(fetch, {"origin": site.url, "destination": "/tmp"}, "destination")
    assert snapshot(outside) == before
    assert not (root / "x.tgz").exists()
    assert site.requested == []


@pytest.mark.parametrize(
    "climb",
    ["..", "../outside", "tree/../../outside", "missing/../../outside", "./../root/../outside"],
)
def test_dot_dot_cannot_climb_out_of_the_root(
    climb: str, root: Path, outside: Path, site: Site
) -> None:
    before = snapshot(outside)
    refused(targz, {"origin": climb, "destination": "x.tgz"}, "origin")
    refused(targz, {"origin": "tree", "destination": f"{climb}/x.tgz"}, "destination")
    refused(fetch, {"origin": site.url, "destination": climb}, "destination")
    assert snapshot(outside) == before
    assert not (root / "missing").exists()
    assert site.requested == []


def test_a_parent_directory_linked_outside_is_refused(
    root: Path, outside: Path, site: Site
) -> None:
    # Given a directory inside the root that is a link to one outside
    (root / "door").symlink_to(outside, target_is_directory=True)
    before = snapshot(outside)

    # Then reading or writing through it, or in a directory made beneath it, is refused
    refused(targz, {"origin": "door", "destination": "x.tgz"}, "origin")
    refused(targz, {"origin": "tree", "destination": "door/x.tgz"}, "destination")
    refused(targz, {"origin": "tree", "destination": "door/new/x.tgz"}, "destination")
    refused(fetch, {"origin": site.url, "destination": "door"}, "destination")
    refused(fetch, {"origin": site.url, "destination": str(root / "door" / "new")}, "destination")
    assert snapshot(outside) == before
    assert not (outside / "new").exists()
    assert site.requested == []


def test_a_destination_linked_outside_is_refused_or_replaced_never_written_through(
    root: Path, outside: Path, site: Site
) -> None:
    # Given an archive name, and a download's file name, that are links to files outside
    (root / "out.tgz").symlink_to(outside / "keep.tgz")
    (root / "downloads").mkdir()
    (root / "downloads" / "page.txt").symlink_to(outside / "page.txt")
    before = snapshot(outside)

    # When targz is asked to write the link, then it is refused
    refused(targz, {"origin": "tree", "destination": "out.tgz"}, "destination")

    # When fetch downloads a file of the link's name, then the link itself is replaced
    [result] = fetch("job", {"origin": site.url, "destination": "downloads"})
    assert result["path"] == str(root / "downloads" / "page.txt")
    assert not (root / "downloads" / "page.txt").is_symlink()
    assert (root / "downloads" / "page.txt").read_bytes() == b"page"

    # And nothing outside changed
    assert snapshot(outside) == before


def test_a_directory_swapped_for_a_link_after_the_check_is_not_followed(
    root: Path, outside: Path, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a directory that a racing process swaps for a link outside just after the
    # path was judged to lie inside the root
    (root / "later").mkdir()
    judged = paths.within_root

    def judge_then_swap(base: Path, value: str, field: str, task: str) -> Path:
        resolved = judged(base, value, field, task)
        if (root / "later").is_dir() and not (root / "later").is_symlink():
            (root / "later").rmdir()
            (root / "later").symlink_to(outside, target_is_directory=True)
        return resolved

    monkeypatch.setattr("forerunner.tasks.files.within_root", judge_then_swap)
    before = snapshot(outside)

    # Then the write is refused rather than made through the link
    with pytest.raises(ValidationError) as refusal:
        fetch("job", {"origin": site.url, "destination": "later/new"})
    assert refusal.value.field == "destination"
    assert snapshot(outside) == before
    assert not (outside / "new").exists()
    assert site.requested == []


def test_relative_paths_are_taken_under_the_root(
    root: Path, site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a working directory that is not the root
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    # When the tasks are given relative paths
    archived = targz("job", {"origin": "tree", "destination": "archives/tree.tgz"})
    [fetched] = fetch("job", {"origin": site.url, "destination": "downloads/today"})

    # Then they read and write under the root, and report absolute paths there
    assert archived["path"] == str(root / "archives" / "tree.tgz")
    with tarfile.open(root / "archives" / "tree.tgz", "r:gz") as archive:
        assert sorted(archive.getnames()) == ["a.txt", "sub"]
    assert fetched["path"] == str(root / "downloads" / "today" / "page.txt")
    assert (root / "downloads" / "today" / "page.txt").read_bytes() == b"page"
    assert list(elsewhere.iterdir()) == []


def test_a_path_with_a_nul_character_is_refused_naming_the_field(root: Path) -> None:
    with pytest.raises(ValidationError) as refusal:
        targz("job", {"origin": "tree\0/etc", "destination": "x.tgz"})
    assert refusal.value.field == "origin"


def test_a_link_that_stays_inside_the_root_is_followed(root: Path) -> None:
    (root / "alias").symlink_to(root / "tree", target_is_directory=True)
    result = targz("job", {"origin": "alias", "destination": "alias.tgz"})
    assert result["files"] == 1


def test_the_root_defaults_to_the_working_directory(
    tmp_path: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no setting, and a worker running in tmp_path/work
    monkeypatch.delenv(FILES_ROOT_ENV, raising=False)
    work = tmp_path / "work"
    (work / "tree").mkdir(parents=True)
    (work / "tree" / "a.txt").write_text("alpha", encoding="utf-8")
    monkeypatch.chdir(work)

    # Then relative paths land in the working directory, and paths beside it are refused
    result = targz("job", {"origin": "tree", "destination": "tree.tgz"})
    assert result["path"] == str(work.resolve() / "tree.tgz")
    refused(targz, {"origin": str(outside), "destination": "x.tgz"}, "origin")
    refused(targz, {"origin": "tree", "destination": "../outside/x.tgz"}, "destination")


@pytest.mark.parametrize("setting", ["missing", "file.txt"])
def test_a_root_that_is_not_a_directory_fails_the_task_naming_the_setting(
    setting: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    monkeypatch.setenv(FILES_ROOT_ENV, str(tmp_path / setting))
    with pytest.raises(ConfigurationError, match=FILES_ROOT_ENV):
        targz("job", {"origin": ".", "destination": "x.tgz"})
