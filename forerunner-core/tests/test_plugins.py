"""The plugin registry: how plugins provide backends and tasks, and how it names the culprit.

Covers each hook's happy path (``test_hook_<name>_...``), the errors a user meets (an
unknown scheme lists the installed ones; a scheme or task claimed twice names both
distributions; a plugin that fails to import, raises, returns ``None``, a non-callable
or a bad scheme is named), job events (a raising hook is logged, the others still run),
and the wrapping of backend factories (foreign exceptions become ``PluginError``,
forerunner's own pass through). Most tests build a registry from in-test plugin objects
with ``Registry.from_plugins``; the entry-point tests install made-up distributions in
a temporary site directory, for this process and for a subprocess.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import types
from typing import TYPE_CHECKING, Any

import pytest

from forerunner import hookimpl
from forerunner.errors import (
    BackendUnavailable,
    ConfigurationError,
    PluginError,
    UnknownBackendError,
)
from forerunner.model import Job
from forerunner.plugins import PluginInfo, Registry
from forerunner.urls import mask_password

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import FakeSite


def info(name: str, distribution: str | None = None, version: str = "1.0") -> PluginInfo:
    return PluginInfo(
        name=name,
        module=f"tests.{name}",
        distribution=distribution,
        version=version if distribution else None,
    )


class Backends:
    """A plugin object providing whatever its hooks are given."""

    def __init__(
        self,
        stores: Any = None,
        queues: Any = None,
        tasks: Any = None,
    ) -> None:
        self._stores = stores if stores is not None else {}
        self._queues = queues if queues is not None else {}
        self._tasks = tasks if tasks is not None else {}

    @hookimpl
    def forerunner_store_backends(self) -> Any:
        return self._stores

    @hookimpl
    def forerunner_queue_backends(self) -> Any:
        return self._queues

    @hookimpl
    def forerunner_tasks(self) -> Any:
        return self._tasks


def plugin_with(hook: str, answer: Callable[[], Any]) -> object:
    """A plugin implementing only ``hook``, which returns (or raises) what ``answer`` does."""

    def impl() -> Any:
        return answer()

    return types.SimpleNamespace(**{hook: hookimpl(impl)})


class Events:
    """Records the job events it is called with."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    @hookimpl
    def forerunner_job_event(self, event: str, job: Job) -> None:
        self.seen.append((event, job.id))


class RaisingEvents:
    @hookimpl
    def forerunner_job_event(self, event: str, job: Job) -> None:
        raise RuntimeError(f"cannot handle {event}")


def registry(*plugins: tuple[PluginInfo, object], builtin: bool = False) -> Registry:
    return Registry.from_plugins(plugins, builtin=builtin)


class FakeQueue:
    """Stands for a queue: the registry hands back whatever the factory makes."""

    def __init__(self, url: str) -> None:
        self.url = url


def make_queue(url: str) -> FakeQueue:
    return FakeQueue(url)


def raise_error(error: BaseException) -> Callable[..., Any]:
    def raiser(*args: object) -> Any:
        raise error

    return raiser


# The hooks, each through its happy path


def test_hook_forerunner_store_backends_opens_a_store_by_scheme() -> None:
    opened: list[str] = []

    def factory(url: str) -> object:
        opened.append(url)
        return "a store"

    plugins = registry((info("things", "forerunner-things"), Backends(stores={"thing": factory})))

    store = plugins.open_store("THING://host/db?x=1")

    assert store == "a store"
    assert opened == ["THING://host/db?x=1"], "the factory gets the whole URL, as given"
    assert plugins.stores.by_name["thing"][0].plugin.distribution == "forerunner-things"


def test_hook_forerunner_queue_backends_opens_a_queue_by_scheme() -> None:
    plugins = registry((info("things"), Backends(queues={"thing": make_queue})))

    queue = plugins.open_queue("thing://")

    assert isinstance(queue, FakeQueue)


def test_hook_forerunner_tasks_provides_handlers_by_name() -> None:
    def shout(job_id: str, data: Any) -> str:
        return str(data).upper()

    plugins = registry((info("things"), Backends(tasks={"shout": shout})))

    assert plugins.task("shout") is shout
    assert [p.name for p in plugins.tasks.unique().values()] == ["shout"]


def test_hook_forerunner_job_event_reaches_every_plugin() -> None:
    first, second = Events(), Events()
    plugins = registry((info("first"), first), (info("second"), second))
    job = Job(id="job-1", type="ping")

    plugins.emit_job_event("created", job)

    assert first.seen == [("created", "job-1")]
    assert second.seen == [("created", "job-1")]


def test_hook_forerunner_job_event_that_raises_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a plugin whose event hook raises, between two that work
    before, after = Events(), Events()
    plugins = registry(
        (info("before"), before),
        (info("broken", "forerunner-broken"), RaisingEvents()),
        (info("after"), after),
    )
    job = Job(id="job-2", type="ping")

    # When an event is emitted
    with caplog.at_level(logging.ERROR, logger="forerunner.plugins"):
        plugins.emit_job_event("succeeded", job)

    # Then the others saw it, and the failure is logged naming the plugin
    assert before.seen == after.seen == [("succeeded", "job-2")]
    [record] = caplog.records
    assert "'broken' (forerunner-broken 1.0)" in record.getMessage()
    assert "succeeded" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def test_hook_forerunner_job_event_implementation_may_take_fewer_arguments() -> None:
    seen: list[str] = []

    class OnlyJob:
        @hookimpl
        def forerunner_job_event(self, job: Job) -> None:
            seen.append(job.id)

    class NoArguments:
        @hookimpl
        def forerunner_job_event(self) -> None:
            seen.append("called")

    plugins = registry((info("only-job"), OnlyJob()), (info("none"), NoArguments()))

    plugins.emit_job_event("failed", Job(id="job-3", type="ping"))

    assert seen == ["job-3", "called"]


def test_builtin_plugin_is_registered_unless_declined() -> None:
    with_builtin = Registry.from_plugins([])
    without = Registry.from_plugins([], builtin=False)

    assert [p.name for p in with_builtin.plugins()] == ["builtin"]
    assert {"memory", "sqlite"} <= set(with_builtin.stores.by_name)
    assert {"memory", "memory+random"} <= set(with_builtin.queues.by_name)
    assert "ping" in with_builtin.tasks.by_name
    assert without.plugins() == []
    assert without.queues.by_name == {}


# Unknown names


def test_unknown_scheme_lists_the_installed_ones() -> None:
    plugins = registry(
        (info("a"), Backends(queues={"alpha": make_queue, "beta+x": make_queue})),
    )

    with pytest.raises(UnknownBackendError) as caught:
        plugins.open_queue("gamma://host")

    error = caught.value
    assert error.scheme == "gamma"
    assert error.known == ("alpha", "beta+x")
    assert "'gamma'" in str(error)
    assert "alpha, beta+x" in str(error)


def test_unknown_store_scheme_with_nothing_installed_says_none() -> None:
    with pytest.raises(UnknownBackendError, match="installed: none"):
        registry().open_store("sqlite:///x.db")


def test_unknown_task_lists_the_installed_ones() -> None:
    plugins = registry((info("a"), Backends(tasks={"ping": print, "pong": print})))

    with pytest.raises(UnknownBackendError, match=r"'pingg'.*installed: ping, pong"):
        plugins.task("pingg")


def test_url_without_scheme_is_a_configuration_error_that_masks_the_password() -> None:
    with pytest.raises(ConfigurationError, match="has no scheme") as caught:
        registry().open_queue("user:secret@host")

    assert "secret" not in str(caught.value)


def test_unknown_scheme_message_masks_the_password() -> None:
    with pytest.raises(UnknownBackendError) as caught:
        registry().open_store("nosuch://user:hunter2@host/db")

    assert "hunter2" not in str(caught.value)
    assert "user:***@host" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@host:6379/0", "redis://:***@host:6379/0"),
        (
            "postgresql://me:hunter2@db/jobs?sslmode=require",
            "postgresql://me:***@db/jobs?sslmode=require",
        ),
        ("me:hunter2@db/jobs", "me:***@db/jobs"),
        ("postgresql://me@db/jobs", "postgresql://me@db/jobs"),
        ("sqlite:///tmp/a:b@c.db", "sqlite:///tmp/a:b@c.db"),
        ("memory://", "memory://"),
    ],
)
def test_urls_in_messages_hide_the_password(url: str, shown: str) -> None:
    assert mask_password(url) == shown


# Names claimed twice


@pytest.mark.parametrize(
    ("kind", "lookup"),
    [
        ("stores", lambda r: r.open_store("thing://")),
        ("queues", lambda r: r.open_queue("thing://")),
        ("tasks", lambda r: r.task("thing")),
    ],
)
def test_name_claimed_by_two_plugins_names_both_distributions(
    kind: str, lookup: Callable[[Registry], object]
) -> None:
    # Given two plugins from two distributions that both provide "thing"
    plugins = registry(
        (info("one", "forerunner-one", "1.0"), Backends(**{kind: {"thing": make_queue}})),
        (info("two", "forerunner-two", "2.5"), Backends(**{kind: {"thing": make_queue}})),
    )

    # When "thing" is used
    with pytest.raises(PluginError) as caught:
        lookup(plugins)

    # Then the error names both, and neither shadows the other
    message = str(caught.value)
    assert "forerunner-one 1.0" in message
    assert "forerunner-two 2.5" in message
    assert "'thing'" in message
    assert caught.value.plugin in {"one", "two"}
    assert set(getattr(plugins, kind).conflicts()) == {"thing"}
    assert getattr(plugins, kind).unique() == {}


def test_claimed_scheme_does_not_break_other_schemes() -> None:
    plugins = registry(
        (info("one"), Backends(queues={"thing": make_queue, "mine": make_queue})),
        (info("two"), Backends(queues={"thing": make_queue})),
    )

    assert isinstance(plugins.open_queue("mine://"), FakeQueue)


# Hooks that break the contract


HOOKS = ["forerunner_store_backends", "forerunner_queue_backends", "forerunner_tasks"]
CATALOGUE = {
    "forerunner_store_backends": "stores",
    "forerunner_queue_backends": "queues",
    "forerunner_tasks": "tasks",
}


def collect(plugins: Registry, hook: str) -> object:
    """Ask the registry for what ``hook`` provides, which calls the hook."""
    return getattr(plugins, CATALOGUE[hook])


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_that_raises_names_the_plugin(hook: str) -> None:
    plugins = registry(
        (info("bad", "forerunner-bad"), plugin_with(hook, raise_error(KeyError("oops"))))
    )

    with pytest.raises(PluginError) as caught:
        collect(plugins, hook)

    assert caught.value.plugin == "bad"
    assert caught.value.distribution == "forerunner-bad"
    assert "plugin 'bad' (forerunner-bad 1.0) raised in " + hook in str(caught.value)
    assert "KeyError" in str(caught.value)
    assert isinstance(caught.value.__cause__, KeyError)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_that_returns_none_names_the_plugin(hook: str) -> None:
    plugins = registry((info("forgetful", "forerunner-forgetful"), plugin_with(hook, lambda: None)))

    with pytest.raises(PluginError, match=r"'forgetful'.*returned NoneType") as caught:
        collect(plugins, hook)

    assert caught.value.plugin == "forgetful"
    assert "return {} to provide nothing" in str(caught.value)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_that_returns_a_non_callable_names_the_plugin(hook: str) -> None:
    plugins = registry((info("odd"), plugin_with(hook, lambda: {"thing": "not callable"})))

    with pytest.raises(PluginError, match=r"plugin 'odd' returned 'thing'.*not callable"):
        collect(plugins, hook)


@pytest.mark.parametrize("scheme", ["My-Thing", "9lives", "with space", "", "a:b", "x/y"])
@pytest.mark.parametrize("hook", ["forerunner_store_backends", "forerunner_queue_backends"])
def test_hook_that_returns_a_bad_scheme_names_the_plugin(hook: str, scheme: str) -> None:
    plugins = registry((info("sloppy"), plugin_with(hook, lambda: {scheme: make_queue})))

    with pytest.raises(PluginError, match=r"plugin 'sloppy' returned") as caught:
        collect(plugins, hook)

    assert caught.value.plugin == "sloppy"


def test_task_names_need_not_be_url_schemes() -> None:
    plugins = registry((info("t"), Backends(tasks={"Word Count": print})))

    assert plugins.task("Word Count") is print


def test_hookimpl_of_a_hook_forerunner_does_not_define_names_the_plugin() -> None:
    class Typo:
        @hookimpl
        def forerunner_queue_backend(self) -> dict[str, object]:
            return {}

    with pytest.raises(PluginError, match=r"plugin 'typo' \(forerunner-typo 1.0\)") as caught:
        registry((info("typo", "forerunner-typo"), Typo()))

    assert caught.value.plugin == "typo"


def test_hookimpl_with_arguments_the_spec_lacks_names_the_plugin() -> None:
    class WrongSignature:
        @hookimpl
        def forerunner_job_event(self, event: str, job: Job, extra: int) -> None:
            pass

    with pytest.raises(PluginError, match="plugin 'wrong'") as caught:
        registry((info("wrong"), WrongSignature()))

    assert caught.value.plugin == "wrong"


# Opening a backend


@pytest.mark.parametrize("opener", ["open_store", "open_queue"])
def test_factory_that_raises_becomes_a_plugin_error_naming_the_plugin(opener: str) -> None:
    failing = raise_error(OSError("connection refused"))
    plugins = registry(
        (
            info("net", "forerunner-net", "0.3"),
            Backends(stores={"net": failing}, queues={"net": failing}),
        )
    )

    with pytest.raises(PluginError) as caught:
        getattr(plugins, opener)("net://user:pw@host")

    message = str(caught.value)
    assert "plugin 'net' (forerunner-net 0.3) failed to open" in message
    assert "OSError: connection refused" in message
    assert "pw@" not in message
    assert caught.value.plugin == "net"
    assert caught.value.distribution == "forerunner-net"
    assert isinstance(caught.value.__cause__, OSError)


@pytest.mark.parametrize("opener", ["open_store", "open_queue"])
@pytest.mark.parametrize(
    "error",
    [BackendUnavailable("the server at host:1 does not answer"), ConfigurationError("bad ?x=")],
)
def test_factory_forerunner_errors_pass_through_unwrapped(opener: str, error: Exception) -> None:
    failing = raise_error(error)
    plugins = registry((info("net"), Backends(stores={"net": failing}, queues={"net": failing})))

    with pytest.raises(type(error)) as caught:
        getattr(plugins, opener)("net://host")

    assert caught.value is error


# The entry-point path


def fake_plugin_source(scheme: str) -> str:
    """A plugin module providing the queue scheme ``scheme``."""
    return f"""
        from forerunner import hookimpl


        class FakeQueue:
            def __init__(self, url):
                self.url = url


        @hookimpl
        def forerunner_queue_backends():
            return {{{scheme!r}: FakeQueue}}
    """


def test_entry_point_plugin_is_loaded_with_its_distribution(fake_site: FakeSite) -> None:
    # Given a distribution that declares a forerunner entry point
    fake_site.add_module("fake_ep_plugin", fake_plugin_source("fake-ep"))
    fake_site.add_distribution("forerunner-fake-ep", "4.2", {"fakeep": "fake_ep_plugin"})
    fake_site.activate()

    # When the registry loads the installed entry points
    plugins = Registry.from_entry_points()

    # Then the plugin is there, named for its entry point, with its distribution
    found = {p.name: p for p in plugins.plugins()}
    assert found["fakeep"] == PluginInfo(
        name="fakeep", module="fake_ep_plugin", distribution="forerunner-fake-ep", version="4.2"
    )
    assert plugins.plugins()[0].name == "builtin", "forerunner-core's own plugin comes first"
    queue = plugins.open_queue("fake-ep://here")
    assert type(queue).__module__ == "fake_ep_plugin"
    assert queue.url == "fake-ep://here"


def test_entry_point_that_fails_to_import_names_plugin_and_distribution(
    fake_site: FakeSite,
) -> None:
    fake_site.add_module("fake_broken_plugin", "import no_such_module_anywhere\n")
    fake_site.add_distribution("forerunner-broken", "0.9", {"broken": "fake_broken_plugin"})
    fake_site.activate()

    with pytest.raises(PluginError) as caught:
        Registry.from_entry_points()

    message = str(caught.value)
    assert "plugin 'broken' (forerunner-broken 0.9) failed to import 'fake_broken_plugin'" in (
        message
    )
    assert "ModuleNotFoundError" in message
    assert caught.value.plugin == "broken"
    assert caught.value.distribution == "forerunner-broken"


def test_two_distributions_declaring_one_plugin_name_are_both_named(
    fake_site: FakeSite,
) -> None:
    fake_site.add_module("fake_twin_a", "")
    fake_site.add_module("fake_twin_b", "")
    fake_site.add_distribution("forerunner-twin-a", "1.0", {"twin": "fake_twin_a"})
    fake_site.add_distribution("forerunner-twin-b", "2.0", {"twin": "fake_twin_b"})
    fake_site.activate()

    with pytest.raises(PluginError, match="named 'twin'") as caught:
        Registry.from_entry_points()

    assert "forerunner-twin-a 1.0" in str(caught.value)
    assert "forerunner-twin-b 2.0" in str(caught.value)


def test_scheme_claimed_by_two_installed_distributions_names_both_in_a_new_process(
    fake_site: FakeSite,
) -> None:
    # Given two installed distributions that both provide the queue scheme "twice"
    fake_site.add_module("fake_first", fake_plugin_source("twice"))
    fake_site.add_module("fake_second", fake_plugin_source("twice"))
    fake_site.add_distribution("forerunner-first", "1.0", {"first": "fake_first"})
    fake_site.add_distribution("forerunner-second", "2.0", {"second": "fake_second"})

    # When a fresh process opens it through forerunner.open_queue
    code = "import forerunner; forerunner.open_queue('twice://')"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=fake_site.environ(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then it fails with a PluginError naming both distributions
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("forerunner.errors.PluginError: queue backend 'twice' is claimed by")
    assert "forerunner-first 1.0" in last
    assert "forerunner-second 2.0" in last


class _DescribedQueue:
    @classmethod
    def from_url(cls, url: str) -> Any:
        raise AssertionError("describe_backend must not open the backend")


def test_describe_backend_names_the_class_and_distribution_without_opening_it() -> None:
    # Given a plugin whose factory is a classmethod
    registry = Registry.from_plugins(
        [
            (
                info("described", "forerunner-described"),
                Backends(queues={"dq": _DescribedQueue.from_url}),
            )
        ],
        builtin=False,
    )

    # Then the description shows the class, its distribution and the plugin
    assert registry.describe_backend("queue", "dq://x") == (
        f"{__name__}._DescribedQueue (forerunner-described 1.0, plugin 'described')"
    )
    # And an unknown scheme is described, not raised
    assert registry.describe_backend("store", "dq://x").startswith(
        "not available: no store backend for scheme 'dq'"
    )
