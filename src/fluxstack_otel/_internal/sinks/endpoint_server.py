"""The monitoring endpoints on a host and port of their own, away from the app.

With ``endpoint_server.port`` set, ``/metrics``, the JSON endpoint and the dashboard are not
served through the middleware at all (the app never sees or shadows those paths): a small
threaded HTTP server from the standard library serves them on ``endpoint_server.host`` (default
``127.0.0.1``), for example on an interface only the scraper can reach. The endpoints are the
same ASGI callables the middleware would call, run on an event loop of the server's own thread,
so the answers (content negotiation, gzip, HEAD, 405) are byte for byte the same, and the
``auth`` rules apply as they would on the app; an unknown path is judged by them too before it
gets its 404, so a refused client cannot probe which paths exist.

The server is a sink: it starts with the other sinks and stops within the shutdown bound.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping, MutableMapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from fluxstack_otel._internal.http.paths import match_endpoint
from fluxstack_otel.errors import ConfigError

if TYPE_CHECKING:
    from fluxstack_otel._internal.sinks.auth import Guard
    from fluxstack_otel._internal.sinks.base import Endpoint

__all__ = ["EndpointServer"]

_log = logging.getLogger("fluxstack_otel")

_MAX_BODY = 64 * 1024  # the endpoints read no body; a bigger one is not read into memory
_ANSWER_TIMEOUT = 30.0  # seconds an endpoint may take before the client gets a 503


class EndpointServer:
    """Serves the monitoring endpoints on their own address (a sink).

    Args:
        endpoints: Path -> ASGI endpoint, as the middleware would serve them (already guarded).
        host: The address to bind.
        port: The port to bind (0 picks a free one; see ``port``).
        guard: The ``auth`` rules, applied to unknown paths before their 404.

    Raises:
        ConfigError: The address cannot be bound (taken, or not an interface of this host).
    """

    def __init__(
        self, endpoints: Mapping[str, Endpoint], *, host: str, port: int, guard: Guard | None
    ) -> None:
        self._loop = asyncio.new_event_loop()
        loop = self._loop
        routes = dict(endpoints)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve()

            do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

            def _serve(self) -> None:
                path, _, query = self.path.partition("?")
                scope = self._scope(path, query)
                endpoint = match_endpoint(routes, scope)  # as on the app (http/paths.py)
                if endpoint is None:
                    denial = guard.check(
                        self.client_address[0], self.headers["Authorization"]
                    ) if guard else None  # fmt: skip
                    status = denial.status if denial else 404
                    body = denial.body if denial else b"Not Found"
                    headers = list(denial.headers) if denial else [(b"content-length", b"9")]
                    self._answer(status, headers, body)
                    return
                messages: list[MutableMapping[str, Any]] = []
                future = asyncio.run_coroutine_threadsafe(
                    _run(endpoint, scope, self._body(), messages), loop
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
                body = b"".join(
                    m.get("body", b"") for m in messages if m["type"] == "http.response.body"
                )
                self._answer(start["status"], list(start.get("headers", [])), body)

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

            def log_message(self, format: str, *args: Any) -> None:
                pass  # scrapes are not worth a log line each

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            self._loop.close()
            raise ConfigError(
                f"cannot serve the endpoints on {host!r} port {port}: {exc.strerror or exc}",
                path="endpoint_server",
            ) from None
        self._server.daemon_threads = True
        self._threads = [
            threading.Thread(target=self._loop.run_forever, name="fluxstack-otel-endpoints-loop",
                             daemon=True),
            threading.Thread(target=self._server.serve_forever, name="fluxstack-otel-endpoints",
                             daemon=True),
        ]  # fmt: skip

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    def endpoints(self) -> dict[str, Endpoint]:
        return {}

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def shutdown(self, timeout: float) -> None:
        if self._threads[1].is_alive():
            self._server.shutdown()
        self._server.server_close()
        if self._threads[0].is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._threads[0].join(timeout)
        if not self._threads[0].is_alive():
            self._loop.close()


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
