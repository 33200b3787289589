"""Fixtures shared by forerunner-core's tests.

``fake_site`` makes installed distributions without installing anything: a directory
of ``*.dist-info`` folders and modules, which ``importlib.metadata`` reads exactly as
it reads site-packages once the directory is on ``sys.path`` (this process) or on
``PYTHONPATH`` (a subprocess). It is how the tests reach the real entry-point path.
"""

from __future__ import annotations

import os
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path


class FakeSite:
    """A site-packages-like directory holding made-up distributions and their modules."""

    def __init__(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = path
        self._monkeypatch = monkeypatch
        self._modules: set[str] = set()

    def add_distribution(self, name: str, version: str, entry_points: Mapping[str, str]) -> None:
        """Declare ``name`` installed, with these ``forerunner`` entry points (name -> module)."""
        folder = self.path / f"{name.replace('-', '_')}-{version}.dist-info"
        folder.mkdir()
        (folder / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
        )
        lines = [f"{entry} = {target}" for entry, target in entry_points.items()]
        (folder / "entry_points.txt").write_text(
            "[forerunner]\n" + "\n".join(lines) + "\n", encoding="utf-8"
        )

    def add_module(self, name: str, source: str) -> None:
        """Write a top-level module; its source is dedented."""
        (self.path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        self._modules.add(name)

    def activate(self) -> None:
        """Put the site on this process's ``sys.path`` until the test ends."""
        self._monkeypatch.syspath_prepend(str(self.path))

    def environ(self) -> dict[str, str]:
        """An environment for a subprocess that sees the site, and no backend URLs."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORERUNNER_")}
        env["PYTHONPATH"] = os.pathsep.join(
            [str(self.path), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        return env

    def forget_modules(self) -> None:
        for name in self._modules:
            sys.modules.pop(name, None)


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    """An empty :class:`FakeSite`; its modules are unimported again after the test."""
    site = FakeSite(tmp_path / "site", monkeypatch)
    site.path.mkdir()
    yield site
    site.forget_modules()
