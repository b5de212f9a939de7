"""The Prometheus exporter: ``/metrics`` served by the middleware, or on a port of its own.

The exposition itself (text 0.0.4 and OpenMetrics, content negotiation) is rendered by
``exposition``; its names are re-exported here. Rendering runs on the package's render thread
(``runtime/background.py``, at the lowest CPU priority), so a large scrape never stalls requests,
and the body is gzip-compressed when the client accepts it. While the recorder's version holds a
scrape reuses the HTTP scope's text of the previous one; otherwise it writes that scope from the
series (``reuse.py``, ``http_text.py``). A body larger than a chunk is streamed: each chunk is
made on the render thread and sent before the next, so a scrape never holds its body whole.

With a ``port`` the exposition is served by the package's one standalone server
(``sinks/endpoint_server.py``), guarded by the ``auth`` rules like every endpoint. A port that
cannot be bound is a ``ConfigError`` naming ``exporters[i].port`` (or ``.host``), with one
exception: several workers of one host (gunicorn) with ``multiprocess`` enabled. There any
worker's exposition is the host's, so the first worker binds and serves it; a worker that finds
the port taken logs it once and stands by, trying the port again every ``collect_interval``, so
when the serving worker is recycled another one takes over (docs/deployment.md).

With a ``push_url`` the entry also pushes the text exposition to a Pushgateway every interval
(``push.py``), on the one periodic scheduler, and once more at shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator
from functools import partial
from typing import TYPE_CHECKING

from opentelemetry.sdk.metrics.export import MetricsData

from fluxstack_otel._internal.asgi_types import Receive, Scope, Send
from fluxstack_otel._internal.config.model import PrometheusExporterConfig
from fluxstack_otel._internal.http.tally import HttpSeries
from fluxstack_otel._internal.runtime import background
from fluxstack_otel._internal.sinks.base import ALLOWED_METHODS, method_not_allowed, plain_response
from fluxstack_otel._internal.sinks.prometheus.deflate import compressor
from fluxstack_otel._internal.sinks.prometheus.exposition import (
    DEFAULT_OPTIONS,
    RenderOptions,
    options_for,
    render,
)
from fluxstack_otel._internal.sinks.prometheus.negotiation import (
    CONTENT_TYPE_OPENMETRICS,
    CONTENT_TYPE_TEXT,
    OPENMETRICS,
    PROTOBUF,
    negotiate,
)
from fluxstack_otel._internal.sinks.prometheus.reuse import Exposition

if TYPE_CHECKING:
    from fluxstack_otel._internal.config.model import MonitoringConfig
    from fluxstack_otel._internal.runtime.scheduler import PeriodicWorker, Tick
    from fluxstack_otel._internal.sinks.auth import Guard
    from fluxstack_otel._internal.sinks.base import Endpoint, SinkContext
    from fluxstack_otel._internal.sinks.endpoint_server import EndpointServer

__all__ = [
    "CONTENT_TYPE_OPENMETRICS",
    "CONTENT_TYPE_TEXT",
    "PrometheusEndpoint",
    "PrometheusSink",
    "RenderOptions",
    "negotiate",
    "prometheus_options",
    "render",
]


def prometheus_options(config: MonitoringConfig) -> RenderOptions:
    """The render options ``/metrics`` uses: those of the first enabled prometheus entry."""
    for e in config.exporters:
        if isinstance(e, PrometheusExporterConfig) and e.enabled:
            return options_for(e.target_info, e.scope_labels, config.naming)
    return options_for(None, None, config.naming)


_log = logging.getLogger("fluxstack_otel")

# --- serving ---------------------------------------------------------------------------------


class PrometheusEndpoint:
    """The ``/metrics`` handler served by the middleware (an ASGI app for one path).

    Rendering runs on the package's render thread (``runtime/background.py``, low priority),
    so a large scrape never stalls requests.

    Args:
        collect: Returns the stream's current cumulative data (given the names wanted).
        options: What the exposition includes.
        version: The recorder's ``version``: while it holds, a text scrape reuses the HTTP
            scope's text of the previous one (``reuse.py``); None renders every scrape afresh.
        allow_openmetrics: Whether OpenMetrics may be negotiated.
        allow_gzip: Whether the body may be gzip-compressed when the client accepts it.
        series: The recorder's ``series``: a scrape that cannot reuse the kept text writes the
            HTTP scope from it, without building its points.
    """

    def __init__(
        self,
        collect: Callable[[Collection[str] | None], MetricsData],
        *,
        options: RenderOptions = DEFAULT_OPTIONS,
        allow_openmetrics: bool = True,
        allow_gzip: bool = True,
        version: Callable[[], int | None] | None = None,
        series: Callable[[], HttpSeries | None] | None = None,
    ) -> None:
        self._collect = collect
        self._exposition = Exposition(collect, version, options, series)
        self._options = options
        self._allow_om = allow_openmetrics
        self._allow_gzip = allow_gzip

    def respond(
        self, accept: str | None, accept_encoding: str | None
    ) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """Render a scrape response body and its headers for the given request headers."""
        headers, chunks = self.open(accept, accept_encoding)
        body = b"".join(chunks)
        headers.append((b"content-length", str(len(body)).encode()))
        return body, headers

    def open(
        self, accept: str | None, accept_encoding: str | None
    ) -> tuple[list[tuple[bytes, bytes]], Iterator[bytes]]:
        """A scrape response's headers (without a length) and its body in chunks, made as they
        are read (``Exposition.stream``), gzip-compressed as one stream when the client accepts
        it."""
        fmt, content_type = negotiate(accept, allow_openmetrics=self._allow_om, allow_protobuf=True)
        gzip = self._allow_gzip and "gzip" in (accept_encoding or "").lower()
        chunks: Iterator[bytes]
        if fmt == PROTOBUF:
            chunks = iter((self._protobuf(gzip),))
        else:
            chunks = self._exposition.stream(fmt == OPENMETRICS, gzip)
        headers = [(b"content-type", content_type.encode()), (b"vary", b"accept, accept-encoding")]
        if gzip:
            headers.append((b"content-encoding", b"gzip"))
        return headers, chunks

    def _protobuf(self, gzip: bool) -> bytes:
        from fluxstack_otel._internal.sinks.prometheus.protobuf import render_protobuf

        body = render_protobuf(self._collect(None), self._options)
        if not gzip:
            return body
        member = compressor(31)  # wbits 31: a gzip member
        return member.compress(body) + member.flush()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method", "GET")
        if method not in ALLOWED_METHODS:
            await method_not_allowed(send)
            return
        accept = accept_encoding = None
        for key, value in scope.get("headers", ()):
            if key == b"accept":
                accept = value.decode("latin-1")
            elif key == b"accept-encoding":
                accept_encoding = value.decode("latin-1")
        head = method == "HEAD"
        try:
            # Every chunk is made on the render thread; the first two before the response
            # starts, so a failed collection is still a 500 and a small body one message with
            # its length.
            headers, chunks = await background.run(partial(self.open, accept, accept_encoding))
            first = await background.run(partial(next, chunks, b""))
            second = await background.run(partial(next, chunks, None))
            if head and second is not None:  # the length of a body not sent
                rest = await background.run(partial(sum, map(len, chunks)))
                length = len(first) + len(second) + rest
                headers.append((b"content-length", str(length).encode()))
                first, second = b"", None
        except Exception:
            _log.exception("rendering the Prometheus exposition failed")
            await plain_response(send, 500, b"metrics collection failed", head=head)
            return
        if second is None:
            if not any(k == b"content-length" for k, _ in headers):
                headers.append((b"content-length", str(len(first)).encode()))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"" if head else first})
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": first, "more_body": True})
        chunk: bytes | None = second
        try:
            while chunk is not None:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                chunk = await background.run(partial(next, chunks, None))
        except Exception:
            # The response has started: left unfinished, so the server drops the connection and
            # the scraper records a failed scrape rather than a short exposition.
            _log.exception("rendering the Prometheus exposition failed")
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class PrometheusSink:
    """A Prometheus exporter entry: ``/metrics`` through the middleware, or its own server.

    Args:
        exporter: The entry's configuration.
        context: The monitoring's sink context.
    """

    def __init__(self, exporter: PrometheusExporterConfig, context: SinkContext) -> None:
        self._config = exporter
        options = options_for(exporter.target_info, exporter.scope_labels, context.config.naming)
        self._endpoint = PrometheusEndpoint(
            context.stream.collect,
            options=options,
            allow_openmetrics=exporter.openmetrics,
            allow_gzip=exporter.gzip,
            version=context.http_version,
            series=context.http_series,
        )
        self._pusher: PeriodicWorker | None = None
        if exporter.push_url is not None:
            from fluxstack_otel._internal.sinks.prometheus.push import Pusher

            interval = exporter.interval or context.config.collect_interval
            pusher = Pusher(exporter.push_url, context.stream, options, interval)
            self._pusher = pusher.worker
        self._server: EndpointServer | None = None
        self._standby: PeriodicWorker | None = None
        self._guard: Guard | None = None
        if context.config.auth.restricts:
            from fluxstack_otel._internal.sinks.auth import Guard

            self._guard = Guard.from_config(context.config.auth)
        self._host_wide = context.config.multiprocess.enabled
        self._retry_interval = context.config.collect_interval
        # The key a bind error names; an entry built apart from a configuration has no index.
        index = next((i for i, e in enumerate(context.config.exporters) if e is exporter), None)
        self._key = "exporters" if index is None else f"exporters[{index}]"

    @property
    def server(self) -> EndpointServer | None:
        """The standalone server, when the entry has a ``port`` and this process serves it."""
        return self._server

    @property
    def standing_by(self) -> bool:
        """True while another worker of the host serves the port and this one waits for it."""
        return self._server is None and self._standby is not None

    def endpoints(self) -> dict[str, Endpoint]:
        if self._config.port is not None:
            return {}
        return {self._config.endpoint: self._endpoint}

    def start(self) -> None:
        """Bind and serve the port, if the entry has one.

        Raises:
            ConfigError: The port cannot be bound (taken without ``multiprocess``, or an address
                that is not this machine's), naming ``exporters[i].port`` or ``.host``.
        """
        if self._pusher is not None:
            self._pusher.start()
        if self._config.port is None:
            return
        from fluxstack_otel._internal.sinks.endpoint_server import AddressInUseError

        try:
            self._server = self._bind(self._config.port)
        except AddressInUseError:
            if not self._host_wide:
                raise
            self._stand_by()
            return
        self._server.start()

    def shutdown(self, timeout: float) -> None:
        if self._pusher is not None:
            self._pusher.stop(timeout)  # the last push, while the data is still there
        if self._standby is not None:
            self._standby.stop(timeout)
        if self._server is not None:
            self._server.shutdown(timeout)

    def _bind(self, port: int) -> EndpointServer:
        from fluxstack_otel._internal.sinks.auth import protect
        from fluxstack_otel._internal.sinks.endpoint_server import EndpointServer

        return EndpointServer(
            protect({self._config.endpoint: self._endpoint}, self._guard),
            host=self._config.host or "127.0.0.1",
            port=port,
            guard=self._guard,
            key=self._key,
            what="the Prometheus exposition",
            in_use_hint=(
                "another process holds it; several workers of one host can share one port only "
                "with multiprocess enabled, or serve /metrics through the app without a port"
            ),
            name="fluxstack-otel-prometheus",
        )

    def _stand_by(self) -> None:
        from fluxstack_otel._internal.runtime.scheduler import PeriodicWorker

        _log.info(
            "fluxstack-otel: %s.port: %s:%s is taken, presumably by another worker of this host "
            "serving the host's metrics (multiprocess); this worker stands by and takes the port "
            "over if it comes free",
            self._key,
            self._config.host or "127.0.0.1",
            self._config.port,
        )
        self._standby = PeriodicWorker(
            f"fluxstack-otel-prometheus-standby {self._key}",
            self._retry_interval,
            self._take_over,
            flush_at_stop=False,
        )
        self._standby.start()

    def _take_over(self, tick: Tick) -> None:
        from fluxstack_otel._internal.sinks.endpoint_server import AddressInUseError

        port = self._config.port
        if self._server is not None or port is None:
            return
        try:
            server = self._bind(port)
        except AddressInUseError:
            return  # still served by another worker
        server.start()
        self._server = server
        _log.info("fluxstack-otel: %s.port %d is now served by this worker", self._key, server.port)
