"""The ``forerunner`` command line: ``plugins``, ``migrate``, and how every command fails.

``forerunner plugins`` lists the plugins with their distributions, then the store
schemes, queue schemes and task names with the plugin providing each, and the names two
plugins claim, as one titled table per section; ``--json`` prints the same as one
document. ``forerunner migrate`` migrates a store that has a schema and says when one
has none. Any forerunner error ends the command with one line on stderr and exit code
2, never a traceback. Most tests call :func:`forerunner.cli.main` in this process,
where stdout is not a terminal, so tables come out as plain rows; two run the installed
console script.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from forerunner import __version__, cli, hookimpl
from forerunner.errors import PluginError
from forerunner.plugins import PluginInfo, Registry

if TYPE_CHECKING:
    from collections.abc import Sequence

    from conftest import FakeSite


def info(name: str, distribution: str | None = None, version: str = "1.0") -> PluginInfo:
    return PluginInfo(
        name=name,
        module=f"tests.{name}",
        distribution=distribution,
        version=version if distribution else None,
    )


class Provides:
    """A plugin that provides the given queue schemes and tasks."""

    def __init__(self, queues: Sequence[str] = (), tasks: Sequence[str] = ()) -> None:
        self._queues = list(queues)
        self._tasks = list(tasks)

    @hookimpl
    def forerunner_queue_backends(self) -> dict[str, Any]:
        return {scheme: str for scheme in self._queues}

    @hookimpl
    def forerunner_tasks(self) -> dict[str, Any]:
        return {name: print for name in self._tasks}


class RaisesOnTasks:
    @hookimpl
    def forerunner_tasks(self) -> dict[str, Any]:
        raise RuntimeError("tasks module is broken\nsee line 3")


@pytest.fixture
def use_registry(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make the command line use a registry of in-test plugins instead of the installed ones."""

    def use(*plugins: tuple[PluginInfo, object]) -> None:
        registry = Registry.from_plugins(plugins)
        monkeypatch.setattr(cli, "get_registry", lambda: registry)

    return use


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def console_script() -> str:
    """The ``forerunner`` executable installed next to this interpreter."""
    found = shutil.which("forerunner", path=str(Path(sys.executable).parent))
    assert found, f"the forerunner console script is not installed next to {sys.executable}"
    return found


def test_plugins_lists_the_installed_plugins_schemes_and_tasks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "plugins")

    assert code == 0
    assert err == ""
    lines = out.splitlines()
    rows = [line.split() for line in lines]
    assert lines[0] == "Plugins:"
    assert rows[1] == ["NAME", "DISTRIBUTION", "VERSION", "MODULE"]
    assert ["builtin", "forerunner-core", __version__, "forerunner.builtin"] in rows
    sections = [line for line in lines if line.endswith(":")]
    assert sections == ["Plugins:", "Store schemes:", "Queue schemes:", "Tasks:", "Conflicts:"]
    for provided in (["memory", "builtin"], ["sqlite", "builtin"], ["memory+random", "builtin"]):
        assert provided in rows
    assert ["ping", "builtin"] in rows
    assert lines[-1] == "  none", "no conflicts among the installed plugins"


def test_plugins_json_has_every_section(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plugins", "--json")

    assert code == 0
    report = json.loads(out)
    assert set(report) == {"plugins", "stores", "queues", "tasks", "conflicts"}
    assert report["plugins"][0] == {
        "name": "builtin",
        "distribution": "forerunner-core",
        "version": __version__,
        "module": "forerunner.builtin",
    }
    assert {"scheme": "sqlite", "plugin": "builtin"} in report["stores"]
    assert {"scheme": "memory", "plugin": "builtin"} in report["queues"]
    assert {"name": "ping", "plugin": "builtin"} in report["tasks"]
    assert report["conflicts"] == []


def test_plugins_names_both_plugins_of_a_conflict(
    capsys: pytest.CaptureFixture[str], use_registry: Any
) -> None:
    # Given two plugins that both claim the queue scheme "thing" and the task "job"
    use_registry(
        (info("one", "forerunner-one", "1.0"), Provides(queues=["thing", "only-one"])),
        (info("two", "forerunner-two", "2.0"), Provides(queues=["thing"], tasks=["job"])),
        (info("three"), Provides(tasks=["job"])),
    )

    # When the plugins are listed
    code, out, _ = run(capsys, "plugins")

    # Then the listing goes on, and the conflicts name both claimants
    assert code == 0
    assert ["only-one", "one"] in [line.split() for line in out.splitlines()]
    conflicts = out.split("Conflicts:\n")[1].splitlines()
    assert conflicts == [
        "NAME           CLAIMED BY",
        "queue 'thing'  one (forerunner-one 1.0) and two (forerunner-two 2.0)",
        "task 'job'     two (forerunner-two 2.0) and three",
    ]
    assert ["three", "-", "-", "tests.three"] in [line.split() for line in out.splitlines()]


def test_plugins_json_lists_conflicts_with_each_claimant(
    capsys: pytest.CaptureFixture[str], use_registry: Any
) -> None:
    use_registry(
        (info("one", "forerunner-one"), Provides(queues=["thing"])),
        (info("two"), Provides(queues=["thing"])),
    )

    code, out, _ = run(capsys, "plugins", "--json")

    assert code == 0
    report = json.loads(out)
    assert report["queues"] == [
        {"scheme": "memory", "plugin": "builtin"},
        {"scheme": "memory+random", "plugin": "builtin"},
    ]
    assert report["conflicts"] == [
        {
            "kind": "queue",
            "name": "thing",
            "plugins": [
                {
                    "name": "one",
                    "distribution": "forerunner-one",
                    "version": "1.0",
                    "module": "tests.one",
                },
                {"name": "two", "distribution": None, "version": None, "module": "tests.two"},
            ],
        }
    ]


def test_plugin_error_is_one_line_on_stderr_and_exit_2(
    capsys: pytest.CaptureFixture[str], use_registry: Any
) -> None:
    use_registry((info("shaky", "forerunner-shaky", "0.1"), RaisesOnTasks()))

    code, out, err = run(capsys, "plugins")

    assert code == 2
    assert out == "", "nothing is listed when the listing cannot be complete"
    assert err.count("\n") == 1
    assert err.startswith("forerunner: error: plugin 'shaky' (forerunner-shaky 0.1) raised in")
    assert "RuntimeError: tasks module is broken see line 3" in err
    assert "Traceback" not in err


def test_registry_that_cannot_be_built_is_reported_the_same_way(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_registry() -> Registry:
        raise PluginError("plugin 'x' (forerunner-x 1.0) failed to import 'x'", plugin="x")

    monkeypatch.setattr(cli, "get_registry", broken_registry)

    code, out, err = run(capsys, "plugins", "--json")

    assert (code, out) == (2, "")
    assert err == "forerunner: error: plugin 'x' (forerunner-x 1.0) failed to import 'x'\n"


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([])

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("forerunner: error: the following arguments are required: command; ")
    assert "plugins, worker, submit, jobs, status, workers" in err


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])

    assert exited.value.code == 0
    assert capsys.readouterr().out == f"forerunner {__version__}\n"


def test_installed_console_script_lists_plugins() -> None:
    result = subprocess.run(
        [console_script(), "plugins", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert {"scheme": "sqlite", "plugin": "builtin"} in json.loads(result.stdout)["stores"]


def test_installed_console_script_reports_a_plugin_that_fails_to_import(
    fake_site: FakeSite,
) -> None:
    # Given an installed plugin whose module raises on import
    fake_site.add_module("fake_cli_broken", "raise RuntimeError('half-installed')\n")
    fake_site.add_distribution("forerunner-half", "0.2", {"half": "fake_cli_broken"})

    # When the console script lists the plugins
    result = subprocess.run(
        [console_script(), "plugins"],
        env=fake_site.environ(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then it exits 2 with one line naming the plugin and its distribution
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "forerunner: error: plugin 'half' (forerunner-half 0.2) failed to import "
        "'fake_cli_broken': RuntimeError: half-installed\n"
    )


class EvolvingStore:
    """A store with a schema: only what ``forerunner migrate`` touches."""

    closed = False

    def migrate(self) -> str:
        return "schema 'jobs' migrated from version 0 to 2"

    def close(self) -> None:
        EvolvingStore.closed = True


class EvolvingPlugin:
    @hookimpl
    def forerunner_store_backends(self) -> dict[str, Any]:
        return {"evolving": lambda url: EvolvingStore()}


def test_migrate_applies_a_stores_migrations_and_prints_what_it_did(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from forerunner import migrate_command

    registry = Registry.from_plugins(
        [(PluginInfo(name="evolving", module="tests"), EvolvingPlugin())]
    )
    monkeypatch.setattr(migrate_command, "get_registry", lambda: registry)

    code, out, _ = run(capsys, "migrate", "--store", "evolving://db")

    assert (code, out) == (0, "schema 'jobs' migrated from version 0 to 2\n")
    assert EvolvingStore.closed


def test_migrate_on_a_store_without_a_schema_says_there_is_nothing_to_do(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "migrate", "--store", "memory://")

    assert (code, out) == (0, "memory://: memory stores keep no schema to migrate\n")


def test_migrate_json_says_what_was_done_and_whether_the_store_has_a_schema(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from forerunner import migrate_command

    registry = Registry.from_plugins(
        [(PluginInfo(name="evolving", module="tests"), EvolvingPlugin())]
    )
    monkeypatch.setattr(migrate_command, "get_registry", lambda: registry)

    code, out, _ = run(capsys, "migrate", "--store", "evolving://user:secret@db", "--json")
    _, plain, _ = run(capsys, "migrate", "--store", "memory://", "--json")

    assert code == 0
    assert json.loads(out) == {
        "store": "evolving://user:***@db",
        "schema": True,
        "message": "schema 'jobs' migrated from version 0 to 2",
    }
    assert json.loads(plain) == {
        "store": "memory://",
        "schema": False,
        "message": "memory://: memory stores keep no schema to migrate",
    }


def test_migrate_on_an_unknown_scheme_fails_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "migrate", "--store", "nosuch://x")

    assert code == 2
    assert "no store backend for scheme 'nosuch'" in err
    assert "Traceback" not in err
