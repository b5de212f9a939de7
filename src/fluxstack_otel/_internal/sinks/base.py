"""The sink contract: everything that reads the metric stream (exporters, the alert processor).

A sink is built from its config entry and a ``SinkContext``; it may serve HTTP endpoints through
the middleware (``endpoints``), run background work between ``start`` and ``shutdown``, and must
never raise into the app at run time. ``shutdown`` flushes once and returns within its timeout.

An endpoint answers GET and HEAD; every other method gets the one 405 of ``method_not_allowed``,
and a short plain-text answer (an error) is ``plain_response``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from fluxstack_otel._internal.asgi_types import ASGIApp, Send

if TYPE_CHECKING:
    from fluxstack_otel._internal.config.model import MonitoringConfig
    from fluxstack_otel._internal.http.tally import HttpSeries
    from fluxstack_otel._internal.metrics.stream import MetricSource

__all__ = [
    "ALLOWED_METHODS",
    "Endpoint",
    "Sink",
    "SinkContext",
    "method_not_allowed",
    "plain_response",
]

Endpoint = ASGIApp
"""An endpoint is an ASGI app for one path."""

ALLOWED_METHODS = frozenset({"GET", "HEAD"})
"""The methods every endpoint answers; the others get a 405."""


async def plain_response(
    send: Send,
    status: int,
    body: bytes,
    extra: Iterable[tuple[bytes, bytes]] = (),
    *,
    head: bool = False,
) -> None:
    """Send a complete plain-text response, never cached.

    Args:
        send: The ASGI send channel.
        status: The HTTP status.
        body: The text, UTF-8.
        extra: More headers.
        head: Send the headers only (a HEAD request).
    """
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def method_not_allowed(send: Send) -> None:
    """The endpoints' one answer to a method other than GET and HEAD: 405 with ``allow``."""
    await plain_response(send, 405, b"Method Not Allowed", [(b"allow", b"GET, HEAD")])


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
        asynchronous: The asynchronous SDK instruments, as they are now.
    """

    config: MonitoringConfig
    stream: MetricSource
    extras: Callable[[], Mapping[str, Any]] = dict
    asynchronous: Callable[[], frozenset[tuple[str, str]]] = frozenset
    """(scope, name) of the asynchronous SDK instruments (``lowmemory`` keeps them cumulative)."""
    http_version: Callable[[], int | None] | None = None
    """The HTTP recorder's ``version`` when ``stream`` reads this process's recorder (None: no
    recorder, or a multiprocess host's merged stream): what a render may reuse text under."""
    http_series: Callable[[], HttpSeries | None] | None = None
    """The HTTP recorder's ``series`` when ``stream`` shows the recorder's series as they are
    (this process's recorder, and no view renames or reshapes a built-in): what an encoder may
    write the HTTP scope from directly."""
