"""The embedded backends of forerunner-core: ``memory://`` and ``sqlite://``."""
