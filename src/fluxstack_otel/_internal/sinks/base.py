"""The sink contract: everything that reads the metric stream (exporters, the alert processor).

A sink is built from its config entry and a ``SinkContext``; it may serve HTTP endpoints through
the middleware (``endpoints``), run background work between ``start`` and ``shutdown``, and must
never raise into the app at run time. ``shutdown`` flushes once and returns within its timeout.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from fluxstack_otel._internal.config.model import MonitoringConfig
    from fluxstack_otel._internal.metrics.stream import MetricSource

__all__ = ["Endpoint", "Sink", "SinkContext"]

Endpoint = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]


class Sink(Protocol):
    """A reader of the metric stream."""

    def endpoints(self) -> Mapping[str, Endpoint]:
        """Paths this sink serves through the middleware (empty for push sinks)."""
        ...

    def start(self) -> None:
        """Start background work (threads, servers). Called once."""
        ...

    def shutdown(self, timeout: float) -> None:
        """Flush once and stop, within ``timeout`` seconds, whatever the backend does."""
        ...


class SinkContext(NamedTuple):
    """What a sink may use.

    Attributes:
        config: The whole validated configuration.
        stream: The metric source it reads (``collect()``; ``DeltaView(stream)`` for deltas).
        extras: Extra sections for documents (such as the active alerts), keyed by name.
    """

    config: MonitoringConfig
    stream: MetricSource
    extras: Callable[[], Mapping[str, Any]] = dict
