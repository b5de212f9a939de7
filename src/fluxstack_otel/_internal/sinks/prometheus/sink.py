"""The Prometheus exporter: ``/metrics`` served by the middleware, or on a port of its own.

The exposition itself (text 0.0.4 and OpenMetrics, content negotiation) is rendered by
``_exposition``; its names are re-exported here. Rendering runs in the loop's default executor,
so a large scrape never stalls requests, and the body is gzip-compressed when the client accepts
it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.metrics.export import MetricsData

from fluxstack_otel._internal.sinks.prometheus.exposition import (
    CONTENT_TYPE_OPENMETRICS,
    CONTENT_TYPE_TEXT,
    DEFAULT_OPTIONS,
    RenderOptions,
    negotiate,
    render,
)

if TYPE_CHECKING:
    from fluxstack_otel._internal.config.model import PrometheusExporterConfig
    from fluxstack_otel._internal.sinks.auth import Guard
    from fluxstack_otel._internal.sinks.base import Endpoint, SinkContext
    from fluxstack_otel._internal.sinks.prometheus.server import PrometheusServer

__all__ = [
    "CONTENT_TYPE_OPENMETRICS",
    "CONTENT_TYPE_TEXT",
    "PrometheusEndpoint",
    "PrometheusSink",
    "RenderOptions",
    "negotiate",
    "render",
]

_log = logging.getLogger("fluxstack_otel")

# --- serving ---------------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class PrometheusEndpoint:
    """The ``/metrics`` handler served by the middleware (an ASGI app for one path).

    Rendering runs in the loop's default executor, so a large scrape never stalls requests.

    Args:
        collect: Returns the stream's current cumulative data.
        options: What the exposition includes.
        allow_openmetrics: Whether OpenMetrics may be negotiated.
        allow_gzip: Whether the body may be gzip-compressed when the client accepts it.
    """

    def __init__(
        self,
        collect: Callable[[], MetricsData],
        *,
        options: RenderOptions = DEFAULT_OPTIONS,
        allow_openmetrics: bool = True,
        allow_gzip: bool = True,
    ) -> None:
        self._collect = collect
        self._options = options
        self._allow_om = allow_openmetrics
        self._allow_gzip = allow_gzip

    def respond(
        self, accept: str | None, accept_encoding: str | None
    ) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """Render a scrape response body and its headers for the given request headers."""
        openmetrics, content_type = negotiate(accept, allow_openmetrics=self._allow_om)
        body = render(self._collect(), openmetrics=openmetrics, options=self._options)
        headers = [(b"content-type", content_type.encode()), (b"vary", b"accept, accept-encoding")]
        if self._allow_gzip and accept_encoding and "gzip" in accept_encoding.lower():
            body = _gzip(body)
            headers.append((b"content-encoding", b"gzip"))
        headers.append((b"content-length", str(len(body)).encode()))
        return body, headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            await _plain(send, 405, b"Method Not Allowed", [(b"allow", b"GET, HEAD")])
            return
        accept = accept_encoding = None
        for key, value in scope.get("headers", ()):
            if key == b"accept":
                accept = value.decode("latin-1")
            elif key == b"accept-encoding":
                accept_encoding = value.decode("latin-1")
        import asyncio  # loaded already: a scrape through the app runs on its event loop

        loop = asyncio.get_running_loop()
        try:
            body, headers = await loop.run_in_executor(None, self.respond, accept, accept_encoding)
        except Exception:
            _log.exception("rendering the Prometheus exposition failed")
            await _plain(send, 500, b"metrics collection failed", [])
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


def _gzip(body: bytes) -> bytes:
    import gzip  # imported on the first compressed scrape, not with the package

    return gzip.compress(body, compresslevel=3)


async def _plain(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class PrometheusSink:
    """A Prometheus exporter entry: ``/metrics`` through the middleware, or its own server.

    Args:
        exporter: The entry's configuration.
        context: The monitoring's sink context.
    """

    def __init__(self, exporter: PrometheusExporterConfig, context: SinkContext) -> None:
        self._config = exporter
        self._endpoint = PrometheusEndpoint(
            context.stream.collect,
            options=RenderOptions(
                target_info=exporter.target_info, scope_labels=exporter.scope_labels
            ),
            allow_openmetrics=exporter.openmetrics,
            allow_gzip=exporter.gzip,
        )
        self._server: PrometheusServer | None = None
        self._guard: Guard | None = None
        if context.config.auth.restricts:
            from fluxstack_otel._internal.sinks.auth import Guard

            self._guard = Guard.from_config(context.config.auth)

    @property
    def server(self) -> PrometheusServer | None:
        """The standalone server, when the entry has a ``port``."""
        return self._server

    def endpoints(self) -> dict[str, Endpoint]:
        if self._config.port is not None:
            return {}
        return {self._config.endpoint: self._endpoint}

    def start(self) -> None:
        if self._config.port is not None:
            from fluxstack_otel._internal.sinks.prometheus.server import PrometheusServer

            self._server = PrometheusServer(
                self._endpoint,
                path=self._config.endpoint,
                host=self._config.host or "127.0.0.1",
                port=self._config.port,
                guard=self._guard,
            )
            self._server.start()

    def shutdown(self, timeout: float) -> None:
        if self._server is not None:
            self._server.stop(timeout)
