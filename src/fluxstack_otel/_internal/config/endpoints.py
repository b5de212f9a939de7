"""The paths the monitoring endpoints take, each with the configuration key that puts it there.

Two endpoints on one path would shadow each other without a word (a dashboard at ``/metrics``
replaced the exposition with its page), so a collision is a ``ConfigError`` naming both keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from fluxstack_otel._internal.config.exporters import (
    ExporterConfig,
    JsonExporterConfig,
    PrometheusExporterConfig,
)
from fluxstack_otel.errors import ConfigError

__all__ = ["endpoint_paths"]


class _Dashboard(Protocol):
    @property
    def enabled(self) -> bool: ...
    @property
    def path(self) -> str: ...


class _Config(Protocol):
    """What the check reads of a ``MonitoringConfig`` (which imports this module)."""

    @property
    def exporters(self) -> Sequence[ExporterConfig]: ...
    @property
    def dashboard(self) -> _Dashboard: ...


def endpoint_paths(config: _Config, root: str = "") -> dict[str, str]:
    """Every path an endpoint serves (on the app, or on the endpoint server), with its key.

    Args:
        config: The configuration.
        root: The key path of the configuration in its document, for messages.

    Returns:
        Path -> the key path of the setting that serves it (``exporters[0].endpoint``).

    Raises:
        ConfigError: Two settings serve the same path; the message names both.
    """
    prefix = f"{root}." if root else ""
    taken: dict[str, str] = {}

    def claim(path: str, key: str) -> None:
        other = taken.get(path)
        if other is not None:
            raise ConfigError(
                f"serves {path!r}, as {other} does already; give one of them another path",
                path=key,
            )
        taken[path] = key

    for i, exporter in enumerate(config.exporters):
        if not exporter.enabled:
            continue
        key = f"{prefix}exporters[{i}].endpoint"
        served = None
        if (isinstance(exporter, PrometheusExporterConfig) and exporter.port is None) or isinstance(
            exporter, JsonExporterConfig
        ):
            served = exporter.endpoint
        if served is not None:
            claim(served, key)
    if config.dashboard.enabled:
        from fluxstack_otel._internal.sinks.dashboard.layout import SUBPATHS

        key = f"{prefix}dashboard.path"
        claim(config.dashboard.path, key)
        for sub in SUBPATHS:
            claim(config.dashboard.path + sub, key)
    return taken
