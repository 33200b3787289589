"""The one error hierarchy of forerunner.

Every error forerunner raises on purpose is a :class:`ForerunnerError`, so callers can
catch one class. Each class's docstring is its default message (as in procrastinate):
``raise JobNotFound()`` says something useful, ``raise JobNotFound("job 'x' ...")``
says more. Messages name the thing, the rule that was broken and the way out.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BackendError",
    "BackendUnavailable",
    "ConfigurationError",
    "ForerunnerError",
    "InvalidTransition",
    "JobNotFound",
    "PermissionDenied",
    "PluginError",
    "StepFailed",
    "UnknownBackendError",
    "ValidationError",
]


class ForerunnerError(Exception):
    """Something went wrong in forerunner."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip().splitlines()[0])

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigurationError(ForerunnerError):
    """forerunner is set up wrongly; nothing was run."""


class UnknownBackendError(ConfigurationError):
    """No installed plugin provides a backend for that URL's scheme."""

    def __init__(
        self, message: str | None = None, *, scheme: str = "", known: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        #: The scheme that was asked for.
        self.scheme = scheme
        #: The schemes that are installed, sorted.
        self.known = known


class PluginError(ConfigurationError):
    """A plugin failed to load or broke the hook contract."""

    def __init__(
        self, message: str | None = None, *, plugin: str = "", distribution: str | None = None
    ) -> None:
        super().__init__(message)
        #: The plugin's name (its entry-point name).
        self.plugin = plugin
        #: The distribution that installed it, when known.
        self.distribution = distribution


class BackendError(ForerunnerError):
    """A store or queue failed; the driver's error is chained as ``__cause__``."""


class BackendUnavailable(BackendError):
    """A store or queue could not be reached; retrying later may work."""


class AuthenticationError(ForerunnerError):
    """The manager did not accept the credentials; set FORERUNNER_TOKEN or --token-file."""


class PermissionDenied(ForerunnerError):
    """The manager knows the caller, but the caller's role may not do this."""


class JobNotFound(ForerunnerError):
    """No job with that id exists."""


class InvalidTransition(ForerunnerError):
    """The job is not in a state that allows this operation."""


class ValidationError(ForerunnerError, ValueError):
    """The input is not valid; nothing was changed."""

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        super().__init__(message)
        #: The field at fault, dotted for nested input (``"jobs.3.priority"``), when known.
        self.field = field


class StepFailed(ForerunnerError):
    """A step of a composed task failed; the step's own error is chained as ``__cause__``."""

    def __init__(self, message: str | None = None, *, step: int = 0, step_name: str = "") -> None:
        super().__init__(message)
        #: The failing step's index in the list given to ``compose`` (markers count).
        self.step = step
        #: The task name, or the callable's qualified name, of the failing step.
        self.step_name = step_name
