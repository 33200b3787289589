"""The five distributions build, pass ``twine check``, and work installed from their wheels.

Editable installs hide packaging mistakes: a module or ``.sql`` file left out of the
wheel, a missing ``py.typed``, a broken entry point or console script. So this builds a
wheel and an sdist of each distribution with ``python -m build`` (isolated, as a
release would), checks their metadata with twine, installs the five wheels into a
clean virtual environment (dependencies from PyPI), and uses them there: every package
imports, ``forerunner plugins`` lists every plugin with its distribution, and the
SQLite store opens, which reads its SQL files from the installed package.
"""

from __future__ import annotations

import json
import sys
import textwrap
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable

    from conftest import Venv

REPO: Final = Path(__file__).resolve().parents[1]
VERSION: Final = "0.1.0"

#: Distribution (and directory) -> the package it installs.
DISTRIBUTIONS: Final = {
    "forerunner-core": "forerunner",
    "forerunner-queue-tests": "forerunner_queue_tests",
    "forerunner-store-tests": "forerunner_store_tests",
    "forerunner-redis-queue": "forerunner_redis_queue",
    "forerunner-postgres-store": "forerunner_postgres_store",
}

#: Entry-point plugin name -> the distribution that declares it.
PLUGINS: Final = {
    "builtin": "forerunner-core",
    "redis": "forerunner-redis-queue",
    "postgresql": "forerunner-postgres-store",
}


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory,
    run_command: Callable[..., subprocess.CompletedProcess[str]],
) -> dict[str, list[Path]]:
    """Distribution -> its wheel and sdist, built once for the module, two builds at a time."""
    dist = tmp_path_factory.mktemp("dist")

    def build(name: str) -> None:
        run_command([sys.executable, "-m", "build", "--outdir", dist / name, REPO / name], cwd=dist)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(build, DISTRIBUTIONS))
    return {name: sorted((dist / name).iterdir()) for name in DISTRIBUTIONS}


def wheel_of(built: dict[str, list[Path]], name: str) -> Path:
    [wheel] = [path for path in built[name] if path.suffix == ".whl"]
    return wheel


@pytest.mark.slow
def test_each_distribution_builds_a_wheel_and_an_sdist(built: dict[str, list[Path]]) -> None:
    for name, files in built.items():
        stem = name.replace("-", "_")
        assert [path.name for path in files] == [
            f"{stem}-{VERSION}-py3-none-any.whl",
            f"{stem}-{VERSION}.tar.gz",
        ]


@pytest.mark.slow
def test_twine_check_passes(
    built: dict[str, list[Path]],
    run_command: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    files = [path for paths in built.values() for path in paths]

    result = run_command([sys.executable, "-m", "twine", "check", "--strict", *files], cwd=REPO)

    assert result.stdout.count("PASSED") == len(files), result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_wheel_holds_the_package_and_marks_it_typed(
    built: dict[str, list[Path]], name: str
) -> None:
    package = DISTRIBUTIONS[name]

    with zipfile.ZipFile(wheel_of(built, name)) as wheel:
        names = set(wheel.namelist())

    assert f"{package}/__init__.py" in names
    assert f"{package}/py.typed" in names
    assert not any(n.startswith(("tests/", "src/")) for n in names), "only the package ships"


@pytest.mark.slow
def test_core_wheel_ships_its_sql_files(built: dict[str, list[Path]]) -> None:
    with zipfile.ZipFile(wheel_of(built, "forerunner-core")) as wheel:
        names = set(wheel.namelist())

    assert "forerunner/backends/sql/sqlite/schema.sql" in names
    assert "forerunner/backends/sql/sqlite/queries.sql" in names
    dashboard = "forerunner/manager/dashboard"
    assert {f"{dashboard}/index.html", f"{dashboard}/static/app.js"} <= names


@pytest.mark.slow
def test_backend_wheels_ship_their_sql_and_lua_files(built: dict[str, list[Path]]) -> None:
    with zipfile.ZipFile(wheel_of(built, "forerunner-postgres-store")) as wheel:
        postgres = set(wheel.namelist())
    with zipfile.ZipFile(wheel_of(built, "forerunner-redis-queue")) as wheel:
        redis = set(wheel.namelist())

    sql = "forerunner_postgres_store/sql"
    assert {f"{sql}/schema.sql", f"{sql}/queries.sql", f"{sql}/migrations/0001_initial.sql"} <= (
        postgres
    )
    lua = "forerunner_redis_queue/lua"
    assert {f"{lua}/{name}.lua" for name in ("push", "pop", "remove", "clear", "size")} <= redis


@pytest.mark.slow
def test_installed_wheels_work_in_a_clean_environment(
    built: dict[str, list[Path]], make_venv: Callable[[str], Venv], tmp_path: Path
) -> None:
    # Given a clean virtual environment with the five wheels installed
    venv = make_venv("wheels")
    venv.pip("install", "--quiet", *(wheel_of(built, name) for name in DISTRIBUTIONS))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    # Then every package imports from the environment, not from this checkout
    imports = ", ".join(DISTRIBUTIONS.values())
    located = venv.run(
        venv.python,
        "-c",
        f"import {imports}; print(forerunner.__file__)",
        cwd=elsewhere,
    )
    assert located.stdout.strip().startswith(str(venv.path))

    # And forerunner plugins lists every plugin with its distribution
    listed = venv.run("forerunner", "plugins", "--json", cwd=elsewhere)
    report = json.loads(listed.stdout)
    assert {p["name"]: (p["distribution"], p["version"]) for p in report["plugins"]} == {
        name: (distribution, VERSION) for name, distribution in PLUGINS.items()
    }
    assert {"scheme": "sqlite", "plugin": "builtin"} in report["stores"]
    assert report["conflicts"] == []

    # And the embedded backends open from the installed package
    venv.run(
        venv.python,
        "-c",
        textwrap.dedent(
            """
            import forerunner
            store = forerunner.open_store("sqlite:///jobs.db")
            store.add([forerunner.Job(id=forerunner.new_id(), type="ping")])
            assert sum(store.counts().values()) == 1
            store.close()
            queue = forerunner.open_queue("memory://")
            queue.close()
            """
        ),
        cwd=elsewhere,
    )

    # And a manager serves the dashboard from the installed package's files
    venv.run(
        venv.python,
        "-c",
        textwrap.dedent(
            """
            import httpx
            import forerunner
            manager = forerunner.Manager("memory://", port=0).start()
            try:
                page = httpx.get(manager.url + "/")
                script = httpx.get(manager.url + "/static/app.js")
            finally:
                manager.stop()
            assert page.status_code == 200 and "<html" in page.text, page
            assert script.status_code == 200 and script.text, script
            """
        ),
        cwd=elsewhere,
    )
