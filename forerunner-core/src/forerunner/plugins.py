"""The plugin registry: a typed facade over pluggy that names the culprit.

Plugins come from the ``forerunner`` entry-point group. pluggy lets a failing import or
a raising hook propagate bare and drops ``None`` results silently; this module calls
each hook implementation on its own so that every error names the plugin and the
distribution that installed it, and so that two plugins claiming one URL scheme or task
name are reported together instead of one silently shadowing the other.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeVar

import attrs
import pluggy

from forerunner import hookspecs
from forerunner.errors import ForerunnerError, PluginError, UnknownBackendError
from forerunner.urls import is_valid_scheme, mask_password, mask_secrets, scheme_of

if TYPE_CHECKING:
    from forerunner.handlers import Handler
    from forerunner.model import Job
    from forerunner.queue import Queue
    from forerunner.store import Store

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "Provided",
    "Registry",
    "get_registry",
    "open_queue",
    "open_store",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP: Final = "forerunner"
_BUILTIN: Final = "builtin"

T = TypeVar("T")
Kind = Literal["store", "queue", "task"]


@attrs.frozen(kw_only=True)
class PluginInfo:
    """Where a registered plugin came from, for messages and ``forerunner plugins``."""

    #: The entry-point name (``builtin`` for forerunner-core's own).
    name: str
    #: The module or object registered.
    module: str
    #: The distribution that declared the entry point, when known.
    distribution: str | None = None
    version: str | None = None

    def describe(self) -> str:
        """``plugin 'x' (forerunner-x 1.0)``: how error messages name a plugin."""
        if self.distribution is None:
            return f"plugin {self.name!r}"
        return f"plugin {self.name!r} ({self.distribution} {self.version})"


@attrs.frozen(kw_only=True)
class Provided(Generic[T]):
    """One thing a plugin provides under a name: a backend factory or a task handler."""

    kind: Kind
    #: URL scheme for backends, task name for tasks.
    name: str
    value: T
    plugin: PluginInfo

    def describe(self) -> str:
        """``module.Class (distribution version, plugin 'name')``: which code answers a name.

        A factory that is a classmethod is shown as its class, since that is what a user
        recognises and what the suites' report headers promise.
        """
        owner = getattr(self.value, "__self__", self.value)
        shown = owner if isinstance(owner, type) else self.value
        module = getattr(shown, "__module__", None) or "?"
        name = getattr(shown, "__qualname__", None) or repr(shown)
        plugin = self.plugin
        origin = (
            f"{plugin.distribution} {plugin.version}" if plugin.distribution else "no distribution"
        )
        return f"{module}.{name} ({origin}, plugin {plugin.name!r})"


class _Catalogue(Generic[T]):
    """Everything of one kind the plugins provide, with the names two plugins claim."""

    def __init__(self, kind: Kind, items: Iterable[Provided[T]]) -> None:
        self.kind: Kind = kind
        self.by_name: dict[str, list[Provided[T]]] = {}
        for item in items:
            self.by_name.setdefault(item.name, []).append(item)

    def unique(self) -> dict[str, Provided[T]]:
        return {name: found[0] for name, found in sorted(self.by_name.items()) if len(found) == 1}

    def conflicts(self) -> dict[str, list[Provided[T]]]:
        return {name: found for name, found in sorted(self.by_name.items()) if len(found) > 1}

    def lookup(self, name: str, shown_as: str) -> Provided[T]:
        found = self.by_name.get(name, [])
        if len(found) == 1:
            return found[0]
        noun = "task" if self.kind == "task" else f"{self.kind} backend"
        if not found:
            known = tuple(sorted(self.by_name))
            listed = ", ".join(known) or "none"
            what = "task name" if self.kind == "task" else "scheme"
            raise UnknownBackendError(
                f"no {noun} for {what} {name!r} in {shown_as}; installed: {listed}. "
                f"Install the package that provides it, or check the spelling.",
                scheme=name,
                known=known,
            )
        claimants = " and ".join(item.plugin.describe() for item in found)
        raise PluginError(
            f"{noun} {name!r} is claimed by {claimants}; uninstall one of them",
            plugin=found[1].plugin.name,
            distribution=found[1].plugin.distribution,
        )


class Registry:
    """The plugins of one process and what they provide.

    Build it with :meth:`from_entry_points` (what :func:`get_registry` caches for the
    process) or :meth:`from_plugins` (tests, embedding). Lookups are computed once, on
    first use.
    """

    def __init__(self, manager: pluggy.PluginManager, infos: Mapping[str, PluginInfo]) -> None:
        self._pm = manager
        self._infos = dict(infos)

    @classmethod
    def from_plugins(
        cls, plugins: Iterable[tuple[PluginInfo, object]], *, builtin: bool = True
    ) -> Registry:
        """Register the given plugin objects, and forerunner-core's own unless told not to."""
        manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        manager.add_hookspecs(hookspecs)
        infos: dict[str, PluginInfo] = {}
        entries = list(plugins)
        if builtin and not any(info.name == _BUILTIN for info, _ in entries):
            from forerunner import builtin as builtin_module

            entries.insert(0, (_builtin_info(), builtin_module))
        for info, plugin in entries:
            try:
                manager.register(plugin, name=info.name)
            except (pluggy.PluginValidationError, ValueError) as error:
                raise PluginError(
                    f"{info.describe()} cannot be registered: {error}",
                    plugin=info.name,
                    distribution=info.distribution,
                ) from error
            infos[info.name] = info
        try:
            manager.check_pending()
        except pluggy.PluginValidationError as error:
            culprit = infos.get(manager.get_name(error.plugin) or "")
            described = culprit.describe() if culprit else repr(error.plugin)
            raise PluginError(
                f"{described} implements a hook forerunner does not define: {error}",
                plugin=culprit.name if culprit else "",
                distribution=culprit.distribution if culprit else None,
            ) from error
        return cls(manager, infos)

    @classmethod
    def from_entry_points(cls, group: str = ENTRY_POINT_GROUP) -> Registry:
        """Load every plugin installed under the ``forerunner`` entry-point group."""
        loaded: list[tuple[PluginInfo, object]] = []
        for entry_point in sorted(importlib.metadata.entry_points(group=group), key=_ep_key):
            dist = entry_point.dist
            info = PluginInfo(
                name=entry_point.name,
                module=entry_point.value,
                distribution=dist.name if dist is not None else None,
                version=dist.version if dist is not None else None,
            )
            if any(seen.name == info.name for seen, _ in loaded):
                raise PluginError(
                    f"two distributions declare a forerunner plugin named {info.name!r}: "
                    f"{next(s for s, _ in loaded if s.name == info.name).describe()} and "
                    f"{info.describe()}; uninstall one of them",
                    plugin=info.name,
                    distribution=info.distribution,
                )
            try:
                plugin = entry_point.load()
            except Exception as error:
                raise PluginError(
                    f"{info.describe()} failed to import {entry_point.value!r}: "
                    f"{type(error).__name__}: {error}",
                    plugin=info.name,
                    distribution=info.distribution,
                ) from error
            loaded.append((info, plugin))
        return cls.from_plugins(loaded)

    def plugins(self) -> list[PluginInfo]:
        """Every registered plugin, in registration order."""
        return list(self._infos.values())

    @functools.cached_property
    def stores(self) -> _Catalogue[Callable[[str], Store]]:
        return _Catalogue("store", self._collect("store", "forerunner_store_backends"))

    @functools.cached_property
    def queues(self) -> _Catalogue[Callable[[str], Queue]]:
        return _Catalogue("queue", self._collect("queue", "forerunner_queue_backends"))

    @functools.cached_property
    def tasks(self) -> _Catalogue[Handler]:
        return _Catalogue("task", self._collect("task", "forerunner_tasks"))

    def open_store(self, url: str) -> Store:
        """Open the store the URL's scheme names, e.g. ``sqlite:///forerunner.db``."""
        factory = self.stores.lookup(scheme_of(url), f"store URL {mask_password(url)!r}")
        return self._open(factory, url)

    def open_queue(self, url: str) -> Queue:
        """Open the queue the URL's scheme names, e.g. ``memory://``."""
        factory = self.queues.lookup(scheme_of(url), f"queue URL {mask_password(url)!r}")
        return self._open(factory, url)

    def describe_backend(self, kind: Literal["store", "queue"], url: str) -> str:
        """Say which installed code answers a URL, or why none does, without opening it.

        For report headers and diagnostics, where an exception would hide the rest.
        """
        catalogue: _Catalogue[Any] = self.stores if kind == "store" else self.queues
        try:
            return catalogue.lookup(scheme_of(url), f"{kind} URL {mask_password(url)!r}").describe()
        except ForerunnerError as error:
            return f"not available: {error}"

    def task(self, name: str) -> Handler:
        """Return the handler a plugin registered under ``name``."""
        return self.tasks.lookup(name, "the installed plugins").value

    def emit_job_event(self, event: str, job: Job) -> None:
        """Call every ``forerunner_job_event`` hook; one that raises is logged, not propagated."""
        self.emit_job_events(event, (job,))

    def emit_job_events(self, event: str, jobs: Sequence[Job]) -> None:
        """:meth:`emit_job_event` for each of ``jobs``, the implementations looked up once."""
        impls = self._pm.hook.forerunner_job_event.get_hookimpls()
        for impl in impls:
            for job in jobs:
                offered = {"event": event, "job": job}
                try:
                    # As pluggy would: an implementation may take fewer of the spec's arguments.
                    impl.function(**{name: offered[name] for name in impl.argnames})
                except Exception:
                    logger.exception(
                        "forerunner_job_event hook of %s raised on %r for job %r",
                        self._describe(impl.plugin_name),
                        event,
                        job.id,
                        extra={"action": "hook_error", "job_id": job.id, "event": event},
                    )

    def _describe(self, plugin_name: str) -> str:
        info = self._infos.get(plugin_name)
        return info.describe() if info else f"plugin {plugin_name!r}"

    def _open(self, provided: Provided[Callable[[str], T]], url: str) -> T:
        try:
            return provided.value(url)
        except ForerunnerError:
            raise
        except Exception as error:
            raise PluginError(
                f"{provided.plugin.describe()} failed to open {provided.kind} "
                f"{mask_password(url)!r}: {type(error).__name__}: {mask_secrets(str(error))}",
                plugin=provided.plugin.name,
                distribution=provided.plugin.distribution,
            ) from error

    def _collect(self, kind: Kind, hook_name: str) -> list[Provided[Any]]:
        """Call each plugin's hook on its own, in registration order.

        ``get_hookimpls()`` is in registration order (only calling the hook is LIFO),
        so listings and conflict messages name plugins as they were registered:
        forerunner-core's first, then the entry points by name.
        """
        found: list[Provided[Any]] = []
        for impl in getattr(self._pm.hook, hook_name).get_hookimpls():
            info = self._infos[impl.plugin_name]
            try:
                result = impl.function()
            except Exception as error:
                raise PluginError(
                    f"{info.describe()} raised in {hook_name}: {type(error).__name__}: {error}",
                    plugin=info.name,
                    distribution=info.distribution,
                ) from error
            if not isinstance(result, Mapping):
                raise PluginError(
                    f"{info.describe()} returned {type(result).__name__} from {hook_name}; "
                    "it must return a mapping of name to "
                    + ("handler" if kind == "task" else "factory(url)")
                    + " (return {} to provide nothing)",
                    plugin=info.name,
                    distribution=info.distribution,
                )
            for name, value in result.items():
                problem = _check_entry(kind, name, value)
                if problem:
                    raise PluginError(
                        f"{info.describe()} returned {name!r} from {hook_name}: {problem}",
                        plugin=info.name,
                        distribution=info.distribution,
                    )
                found.append(Provided(kind=kind, name=name, value=value, plugin=info))
        return found


def _check_entry(kind: Kind, name: object, value: object) -> str | None:
    if not isinstance(name, str) or not name:
        return "names must be non-empty strings"
    if kind != "task" and not is_valid_scheme(name):
        return "a URL scheme is lowercase letters, digits, '+', '-' or '.', starting with a letter"
    if not callable(value):
        return f"the value {value!r} is not callable"
    return None


def _ep_key(entry_point: importlib.metadata.EntryPoint) -> tuple[int, str]:
    return (entry_point.name != _BUILTIN, entry_point.name)


def _builtin_info() -> PluginInfo:
    try:
        version: str | None = importlib.metadata.version("forerunner-core")
    except importlib.metadata.PackageNotFoundError:
        version = None
    return PluginInfo(
        name=_BUILTIN, module="forerunner.builtin", distribution="forerunner-core", version=version
    )


@functools.cache
def get_registry() -> Registry:
    """The process's registry, built from the installed entry points on first use."""
    return Registry.from_entry_points()


def open_store(url: str) -> Store:
    """Open a store by URL through the installed plugins."""
    return get_registry().open_store(url)


def open_queue(url: str) -> Queue:
    """Open a queue by URL through the installed plugins."""
    return get_registry().open_queue(url)
