"""MonitoringMiddleware: the six HTTP metrics for any ASGI app, plus the monitoring endpoints.

Per request it times the exchange, counts body bytes as they pass through ``receive`` and
``send`` (so chunked uploads and streamed responses are measured, not read from
``Content-Length``), notes the status, and after the app returns hands one record to the HTTP
recorder. No OpenTelemetry call happens on this path.

Rules:
- ``http_requests_total`` counts every request that entered, also those that end without a
  response (client gone, cancelled).
- Duration runs from entry until the final response body message (``more_body`` false, or a
  ``pathsend``) is handed to the server, so Starlette background tasks are excluded and
  streaming is included, as starlette-exporter measures it. The server's own write of that last
  message is not timed: waiting for it would take a coroutine per request (about 0.1 µs, a
  twentieth of the middleware's cost), and every earlier chunk's write, flow control included,
  is inside the duration. When no final body message is sent, it runs until the app returns.
- An unhandled ``Exception`` is recorded as status 500 (when no response had started) with
  ``error_type`` = the exception's class name, and re-raised unchanged. Its response size is what
  reaches the client: the bytes sent when the response had started (``instrument()`` outside
  Starlette's error middleware), else the 21-byte ``Internal Server Error`` body that uvicorn and
  Starlette's ``ServerErrorMiddleware`` send (``add_middleware``, which sits inside it). A response with status
  >= ``error_status_threshold`` (default 500) is an error with ``error_type`` = the status code.
  Cancellation (``BaseException`` that is not an ``Exception``) is not an error: the request is
  counted, with a status only if one was sent.
- WebSocket and lifespan scopes pass through untouched.
- Paths (endpoints, ``excluded_paths``) are matched below ``root_path`` (``_paths.py``).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Awaitable
from time import perf_counter
from typing import TYPE_CHECKING, Protocol

from fluxstack_otel._internal.asgi_types import ASGIApp, Message, Receive, Scope, Send
from fluxstack_otel._internal.http.options import OptionWiring, RequestOptions, warn_shadowed
from fluxstack_otel._internal.http.paths import local_path
from fluxstack_otel._internal.http.recorder import DRAIN_AT
from fluxstack_otel._internal.http.routes import (
    KNOWN_METHODS,
    OTHER_METHOD,
    PLAIN_ROUTE_TYPES,
    cached_template,
    mounted_at,
    own_routes_of,
    resolve_route,
)
from fluxstack_otel._internal.http.tracing import traced
from fluxstack_otel._internal.runtime.failures import report_failure

if TYPE_CHECKING:
    from collections.abc import Mapping

    from opentelemetry.trace import TracerProvider

    from fluxstack_otel._internal.http.recorder import HttpRecorder, Pending
    from fluxstack_otel._internal.runtime.looplag import LoopLagProbe
    from fluxstack_otel._internal.sinks.base import Endpoint

__all__ = ["ASGIApp", "MonitoringMiddleware", "Receive", "Scope", "Send", "Wired"]


class MiddlewareWiring(OptionWiring, Protocol):
    """What the middleware reads from a monitoring's wiring, once, when it is built."""

    @property
    def endpoints(self) -> Mapping[str, Endpoint]: ...
    @property
    def endpoint_keys(self) -> Mapping[str, str]: ...
    @property
    def recorder(self) -> HttpRecorder | None: ...
    @property
    def error_status(self) -> int: ...
    @property
    def loop_probe(self) -> LoopLagProbe | None: ...


class Wired(Protocol):
    """The handle the middleware is given: anything that hands out its wiring (a ``Monitoring``).

    A protocol, so the request path does not import the handle that builds it, not even for
    types: imports flow one way, from the handle down to the middleware.
    """

    def _wiring(self) -> MiddlewareWiring: ...


# The body of the 500 that uvicorn, Hypercorn and Starlette's ServerErrorMiddleware send when an
# app raises before starting a response: b"Internal Server Error".
SERVER_ERROR_BODY_SIZE = 21

# The error_type of an error status, made once: no new string (and hash) per failing request.
_STATUS_TEXT = {code: str(code) for code in range(100, 600)}


class MonitoringMiddleware:
    """Wraps an ASGI app with HTTP metrics and serves the monitoring endpoints.

    Use ``monitoring.instrument(app)``, or with Starlette/FastAPI
    ``app.add_middleware(MonitoringMiddleware, monitoring=monitoring)``.

    Args:
        app: The ASGI app to wrap.
        monitoring: The handle returned by ``configure_monitoring``.
        tracer_provider: With ``tracing: true``, where the server spans go (default: the global
            ``TracerProvider``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        monitoring: Wired,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._monitoring = monitoring
        wiring = monitoring._wiring()
        # tracing: true puts OpenTelemetry's own middleware inside this one (_tracing.py).
        self.app = traced(app, tracer_provider) if wiring.tracing else app
        self._endpoints = wiring.endpoints
        self._recorder = wiring.recorder
        self._queue: deque[Pending] = deque() if self._recorder is None else self._recorder.queue
        self._excluded = wiring.exclusions.path
        self._error_status = wiring.error_status
        self._probe = wiring.loop_probe
        self._routes = own_routes_of(app)
        warn_shadowed(self._routes, wiring.endpoint_keys)
        # Everything optional per request (labels, route exclusions, in-progress, tracing, the
        # slow-request log) hangs off one object, so the default configuration pays one check.
        self._options = RequestOptions.from_wiring(wiring, self._routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        probe = self._probe
        if probe is not None and not probe.active:
            probe.ensure_started()
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        try:  # a subscript, not scope.get(): no method call, and the try costs nothing in 3.11+
            root_path = scope["root_path"]
        except KeyError:  # optional in ASGI
            root_path = ""
        mounted = None
        if root_path:  # --root-path or a Mount: match below the prefix (paths.py)
            path = local_path(path, root_path)
            mounted = mounted_at(scope)
        endpoint = self._endpoints.get(path)
        if endpoint is not None:
            await endpoint(scope, receive, send)
            return
        recorder = self._recorder
        if recorder is None or (self._excluded is not None and self._excluded(path)):
            await self.app(scope, receive, send)
            return

        # Filled in here rather than by an __init__: calling a class that has one goes through a
        # C-level slot that looks __init__ up and runs it in a fresh interpreter frame.
        exchange = _Exchange()
        exchange._receive = receive
        exchange._send = send
        exchange.received = exchange.sent = 0
        exchange.status = None
        exchange.end = 0.0
        exchange.start = perf_counter()
        options = self._options
        if options is not None:
            options.enter(scope, root_path, mounted)
        error_type: str | None = None
        app = self.app  # a local: ``self.app(...)`` would be a method lookup that never specialises
        try:
            await app(scope, exchange.receive, exchange.send)
        except Exception as exc:
            error_type = type(exc).__name__
            if exchange.status is None:
                # No response started: the server (or Starlette's ServerErrorMiddleware outside
                # add_middleware) answers 500 with its standard body, which is what reaches the
                # client.
                exchange.status = 500
                exchange.sent = SERVER_ERROR_BODY_SIZE
            raise
        finally:
            # The end of the exchange: when the final body message was handed over, else now.
            now = exchange.end or perf_counter()
            status = exchange.status
            try:
                if error_type is None and status is not None and status >= self._error_status:
                    error_type = _STATUS_TEXT.get(status) or str(status)
                try:  # a subscript, not scope.get(): cheaper, and the try costs nothing in 3.11+
                    method = scope["method"]
                except KeyError:  # ASGI requires it; a scope without it reads as a GET
                    method = "GET"
                if method not in KNOWN_METHODS:
                    method = OTHER_METHOD
                # An unmounted route's template inline (routes.cached_route): its own path_format
                # when its class is known to keep it there, else the cache of routes seen before.
                # Under a root path the mounts above add theirs, which resolve_route knows.
                route_obj = scope.get("route")
                route = None
                if route_obj is not None and not root_path and not scope.get("root_path"):
                    route = (
                        route_obj.path_format
                        if type(route_obj) in PLAIN_ROUTE_TYPES
                        else cached_template(id(route_obj))
                    )
                if route is None:
                    route = resolve_route(scope, root_path, status, mounted, self._routes)
                if options is None:
                    # recorder.record() inline: a call with eight arguments is a good part of
                    # what queueing one record costs.
                    queue = self._queue
                    queue.append(
                        (
                            (method, route, status, error_type),
                            now - exchange.start,
                            exchange.received,
                            exchange.sent,
                            now,
                        )
                    )
                    if len(queue) >= DRAIN_AT:
                        recorder.drain_ready()
                else:
                    options.finish(
                        recorder, scope, method, route, status, error_type, exchange, now
                    )
            except Exception:  # monitoring must never fail a request
                report_failure("recording an HTTP request")
                if options is not None:
                    options.abandon(scope)


class _Exchange:
    """One request's measurements, filled in as messages pass through ``receive`` and ``send``."""

    __slots__ = ("_receive", "_send", "end", "received", "sent", "start", "status")

    _receive: Receive
    _send: Send
    received: int
    sent: int
    status: int | None
    end: float
    start: float

    async def receive(self) -> Message:
        receive = self._receive
        message = await receive()
        body = message.get("body")
        if body:
            self.received += len(body)
        return message

    def send(self, message: Message) -> Awaitable[None]:
        # A plain function that returns the server's awaitable: no coroutine of its own per
        # message. The final body message ends the duration when it is handed to the server.
        # Subscripts and ``in`` over dict.get(): no method call (the try costs nothing in 3.11+).
        kind = message["type"]
        if kind == "http.response.body":
            try:
                body = message["body"]
            except KeyError:
                body = None
            if body:
                self.sent += len(body)
            if "more_body" not in message or not message["more_body"]:
                self.end = perf_counter()
        elif kind == "http.response.start":
            self.status = message["status"]
        elif kind == "http.response.pathsend":
            self.sent += _file_size(message.get("path"))
            self.end = perf_counter()
        send = self._send  # as in __call__: a slot read, not a method lookup
        return send(message)


def _file_size(path: object) -> int:
    try:
        return os.stat(path).st_size if isinstance(path, str) else 0
    except OSError:
        return 0
