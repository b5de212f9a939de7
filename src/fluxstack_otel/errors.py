"""Exceptions raised by fluxstack-otel.

The tree::

    ValueError
     └── ConfigError          bad configuration: names the key path, the value and what is allowed
    ImportError
     └── MissingDependencyError  an optional extra is needed; the message holds the pip line

At run time (middleware, collection, exporters, alerts) nothing is raised into the host app:
failures are logged (rate-limited) and counted instead.
"""

from __future__ import annotations

__all__ = ["ConfigError", "MissingDependencyError"]


class ConfigError(ValueError):
    """A configuration value is invalid.

    Attributes:
        path: The key path of the bad value, such as ``exporters[1].type`` (empty for the root),
            or the environment variable that holds it.
        reason: The message without the path: what was received and what is allowed.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.reason = message


class MissingDependencyError(ImportError):
    """An optional dependency is not installed; the message gives the exact install command."""

    def __init__(self, feature: str, extra: str) -> None:
        super().__init__(
            f"{feature} needs an optional dependency: pip install 'fluxstack-otel[{extra}]'"
        )
        self.extra = extra
