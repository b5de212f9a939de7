"""The one standalone HTTP server: endpoints on a host and port of their own, away from the app.

Two things use it: ``endpoint_server.port`` (``/metrics``, the JSON endpoint and the dashboard are
not served through the middleware at all, so the app never sees or shadows those paths) and a
Prometheus exporter entry with a ``port`` (its exposition alone). A small threaded HTTP server from
the standard library serves them on the configured host (default ``127.0.0.1``), for example on an
interface only the scraper can reach. The endpoints are the same ASGI callables the middleware
would call, run on an event loop of the server's own thread, so the answers (content
negotiation, gzip, HEAD, the one 405 of ``sinks/base.py``) are byte for byte the same, and the
``auth`` rules apply as they would on the app; an unknown path is judged by them too before it
gets its 404, so a refused client cannot probe which paths exist. Every method reaches that path
(none gets the standard library's 501 page), and no answer carries a ``Server`` banner.

The server is a sink: it starts with the other sinks and stops within the shutdown bound.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import threading
from collections.abc import Callable, Mapping, MutableMapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from fluxstack_otel._internal.http.paths import match_endpoint
from fluxstack_otel.errors import ConfigError

if TYPE_CHECKING:
    from fluxstack_otel._internal.sinks.auth import Guard
    from fluxstack_otel._internal.sinks.base import Endpoint

__all__ = ["AddressInUseError", "EndpointServer"]

_log = logging.getLogger("fluxstack_otel")

_MAX_BODY = 64 * 1024  # the endpoints read no body; a bigger one is not read into memory
_ANSWER_TIMEOUT = 30.0  # seconds an endpoint may take before the client gets a 503
_SHUTDOWN_POLL = 0.1  # seconds: the longest shutdown() waits for the serving loop


class AddressInUseError(ConfigError):
    """The address is valid but another socket holds it (``EADDRINUSE``)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        routes: dict[str, Endpoint],
        guard: Guard | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.routes = routes
        self.guard = guard
        self.loop = loop
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def __getattr__(self, name: str) -> Callable[[], None]:
        # Every method, known or not, is served by _serve: the endpoint answers 405 itself
        # (after the guard), instead of the standard library's 501 page.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        server = self.server
        path, _, query = self.path.partition("?")
        scope = self._scope(path, query)
        endpoint = match_endpoint(server.routes, scope)  # as on the app (http/paths.py)
        if endpoint is None:
            guard = server.guard
            denial = guard.check(self.client_address[0], self.headers["Authorization"]) if guard else None  # fmt: skip
            if denial is not None:
                self._answer(denial.status, list(denial.headers), denial.body)
            else:
                self._answer(404, [(b"content-length", b"9")], b"Not Found")
            return
        messages: list[MutableMapping[str, Any]] = []
        future = asyncio.run_coroutine_threadsafe(
            _run(endpoint, scope, self._body(), messages), server.loop
        )
        try:
            future.result(_ANSWER_TIMEOUT)
        except Exception:
            future.cancel()
            _log.exception("serving %s on the endpoint server failed", path)
            self._answer(503, [(b"content-length", b"0")], b"")
            return
        start = next((m for m in messages if m["type"] == "http.response.start"), None)
        if start is None:
            self._answer(500, [(b"content-length", b"0")], b"")
            return
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        headers = list(start.get("headers", []))
        if not any(k.lower() == b"content-length" for k, _ in headers):  # a streamed body
            headers.append((b"content-length", str(len(body)).encode()))
        self._answer(start["status"], headers, body)

    def _scope(self, path: str, query: str) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": self.command,
            "scheme": "http",
            "path": unquote(path),
            "raw_path": path.encode("latin-1", "replace"),
            "root_path": "",
            "query_string": query.encode("latin-1", "replace"),
            "headers": [
                (k.lower().encode("latin-1"), v.encode("latin-1", "replace"))
                for k, v in self.headers.items()
            ],
            "client": (self.client_address[0], self.client_address[1]),
            "server": tuple(self.connection.getsockname()[:2]),
        }

    def _body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return self.rfile.read(length) if 0 < length <= _MAX_BODY else b""

    def _answer(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers:
            self.send_header(key.decode("latin-1"), value.decode("latin-1"))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_response(self, code: int, message: str | None = None) -> None:
        # As the standard library's, without the Server header (the version banner).
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Requests that cannot be parsed (400, 414, 431, 505): plain text, no HTML, no banner.
        body = (message or self.responses.get(code, ("Error",))[0]).encode("latin-1", "replace")
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if getattr(self, "command", None) != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # scrapes are not worth a log line each


class EndpointServer:
    """Serves endpoints on their own address (a sink).

    Args:
        endpoints: Path -> ASGI endpoint, as the middleware would serve them (already guarded).
        host: The address to bind.
        port: The port to bind (0 picks a free one; see ``port``).
        guard: The ``auth`` rules, applied to unknown paths before their 404.
        key: The configuration section a bind failure names: ``<key>.host`` when the host
            does not resolve or is not an interface of this machine, ``<key>.port`` otherwise.
        what: What is served, for the error message.
        in_use_hint: Said after a taken address, in the error message.
        name: The name of the server's threads.

    Raises:
        AddressInUseError: Another socket holds the address (a ``ConfigError``).
        ConfigError: The address cannot be bound otherwise (not an interface of this host, a
            name that does not resolve).
    """

    def __init__(
        self,
        endpoints: Mapping[str, Endpoint],
        *,
        host: str,
        port: int,
        guard: Guard | None,
        key: str = "endpoint_server",
        what: str = "the endpoints",
        in_use_hint: str = "another process holds it",
        name: str = "fluxstack-otel-endpoints",
    ) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._server = _Server((host, port), dict(endpoints), guard, self._loop)
        except (OSError, OverflowError) as exc:
            self._loop.close()
            raise _bind_error(exc, host, port, key, what, in_use_hint) from None
        self._threads = [
            threading.Thread(target=self._loop.run_forever, name=f"{name}-loop", daemon=True),
            threading.Thread(target=self._serve, name=name, daemon=True),
        ]

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    def endpoints(self) -> dict[str, Endpoint]:
        return {}

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def _serve(self) -> None:
        # The poll bounds how long shutdown() waits for the loop to notice (the default 0.5 s
        # held every process exit that long); ten idle wake-ups a second cost nothing measurable.
        self._server.serve_forever(poll_interval=_SHUTDOWN_POLL)

    def shutdown(self, timeout: float) -> None:
        if self._threads[1].is_alive():
            self._server.shutdown()
        self._server.server_close()
        if self._threads[0].is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._threads[0].join(timeout)
        if not self._threads[0].is_alive():
            self._loop.close()

    stop = shutdown


def _bind_error(
    exc: OSError | OverflowError, host: str, port: int, key: str, what: str, hint: str
) -> ConfigError:
    """The ConfigError for a failed bind, naming the key at fault."""
    code = getattr(exc, "errno", None)
    reason = getattr(exc, "strerror", None) or str(exc)
    message = f"cannot serve {what} on {host!r} port {port}: {reason}"
    if code == errno.EADDRINUSE:
        return AddressInUseError(f"{message} ({hint})", path=f"{key}.port")
    if isinstance(exc, socket.gaierror) or code == errno.EADDRNOTAVAIL:
        return ConfigError(
            f"{message}; the host must be an address or name of this machine", path=f"{key}.host"
        )
    return ConfigError(message, path=f"{key}.port")


async def _run(
    endpoint: Endpoint, scope: dict[str, Any], body: bytes, out: list[MutableMapping[str, Any]]
) -> None:
    delivered = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        out.append(message)

    await endpoint(scope, receive, send)
