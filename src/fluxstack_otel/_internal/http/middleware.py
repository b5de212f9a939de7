"""MonitoringMiddleware: the six HTTP metrics for any ASGI app, plus the monitoring endpoints.

Per request it times the exchange, counts body bytes as they pass through ``receive`` and
``send`` (so chunked uploads and streamed responses are measured, not read from
``Content-Length``), notes the status, and after the app returns hands one record to the HTTP
recorder. No OpenTelemetry call happens on this path.

Rules:
- ``http_requests_total`` counts every request that entered, also those that end without a
  response (client gone, cancelled).
- Duration runs from entry until the last response body byte is sent (``more_body`` false), so
  Starlette background tasks are excluded and streaming is included. When no final body message
  is sent, it runs until the app returns.
- An unhandled ``Exception`` is recorded as status 500 (when no response had started) with
  ``error_type`` = the exception's class name, and re-raised unchanged. A response with status
  >= ``error_status_threshold`` (default 500) is an error with ``error_type`` = the status code.
  Cancellation (``BaseException`` that is not an ``Exception``) is not an error: the request is
  counted, with a status only if one was sent.
- WebSocket and lifespan scopes pass through untouched.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable
from time import perf_counter
from typing import TYPE_CHECKING

from fluxstack_otel._internal.asgi_types import ASGIApp, Message, Receive, Scope, Send
from fluxstack_otel._internal.http.routes import (
    KNOWN_METHODS,
    OTHER_METHOD,
    cached_route,
    resolve_route,
)
from fluxstack_otel._internal.http.tracing import note_exemplar, traced
from fluxstack_otel._internal.runtime.failures import report_failure

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from fluxstack_otel._internal.monitoring import Monitoring

_log = logging.getLogger("fluxstack_otel")

__all__ = ["ASGIApp", "MonitoringMiddleware", "Receive", "Scope", "Send"]


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
        monitoring: Monitoring,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._monitoring = monitoring
        wiring = monitoring._wiring()
        # tracing: true puts OpenTelemetry's own middleware inside this one (_tracing.py).
        self.app = traced(app, tracer_provider) if wiring.tracing else app
        self._traced = wiring.tracing
        self._endpoints = wiring.endpoints
        self._recorder = wiring.recorder
        self._excluded = wiring.excluded_exact
        self._excluded_prefixes = wiring.excluded_prefixes
        self._error_status = wiring.error_status
        self._probe = wiring.loop_probe
        self._slow = wiring.slow_request_threshold

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        probe = self._probe
        if probe is not None and not probe.active:
            probe.ensure_started()
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        endpoint = self._endpoints.get(path)
        if endpoint is not None:
            await endpoint(scope, receive, send)
            return
        recorder = self._recorder
        if (
            recorder is None
            or path in self._excluded
            or (self._excluded_prefixes and path.startswith(self._excluded_prefixes))
        ):
            await self.app(scope, receive, send)
            return

        exchange = _Exchange(receive, send)
        entry_root_path = scope.get("root_path", "")
        error_type: str | None = None
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except Exception as exc:
            error_type = type(exc).__name__
            if exchange.status is None:
                exchange.status = 500
            raise
        finally:
            # The end of the exchange: the final body message's completion, else now.
            now = exchange.end or perf_counter()
            status = exchange.status
            if error_type is None and status is not None and status >= self._error_status:
                error_type = _STATUS_TEXT.get(status) or str(status)
            try:
                method = scope.get("method", "GET")
                if method not in KNOWN_METHODS:
                    method = OTHER_METHOD
                route = cached_route(scope, entry_root_path) or resolve_route(
                    scope, entry_root_path, status
                )
                duration = now - exchange.start
                recorder.record(
                    method,
                    route,
                    status,
                    error_type,
                    duration,
                    exchange.received,
                    exchange.sent,
                    now,
                )
                if self._traced:
                    note_exemplar(recorder, scope, method, route, status, error_type, duration)
                if self._slow is not None and duration > self._slow:
                    _log_slow_request(method, route, status, duration, self._slow)
            except Exception:  # monitoring must never fail a request
                report_failure("recording an HTTP request")


class _Exchange:
    """One request's measurements, filled in as messages pass through ``receive`` and ``send``."""

    __slots__ = ("_receive", "_send", "end", "received", "sent", "start", "status")

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self.received = 0
        self.sent = 0
        self.status: int | None = None
        self.end = 0.0
        self.start = perf_counter()

    async def receive(self) -> Message:
        message = await self._receive()
        body = message.get("body")
        if body:
            self.received += len(body)
        return message

    def send(self, message: Message) -> Awaitable[None]:
        # A plain function that returns the server's awaitable: no extra coroutine per message,
        # except for the final body message, whose completion time ends the duration.
        kind = message["type"]
        if kind == "http.response.body":
            body = message.get("body")
            if body:
                self.sent += len(body)
            if not message.get("more_body", False):
                return self._send_final(message)
        elif kind == "http.response.start":
            self.status = message["status"]
        elif kind == "http.response.pathsend":
            self.sent += _file_size(message.get("path"))
            return self._send_final(message)
        return self._send(message)

    async def _send_final(self, message: Message) -> None:
        await self._send(message)
        self.end = perf_counter()


def _log_slow_request(
    method: str, route: str, status: int | None, duration: float, threshold: float
) -> None:
    _log.warning(
        "slow request: %s %s took %.0f ms (threshold %.0f ms)",
        method,
        route,
        duration * 1000,
        threshold * 1000,
        extra={
            "method": method,
            "route": route,
            "status_code": status,
            "duration_ms": duration * 1000,
            "threshold_ms": threshold * 1000,
        },
    )


def _file_size(path: object) -> int:
    try:
        return os.stat(path).st_size if isinstance(path, str) else 0
    except OSError:
        return 0
