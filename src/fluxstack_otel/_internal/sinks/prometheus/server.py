"""The Prometheus exposition on its own host and port: a small threaded HTTP server.

Imported only when an exporter entry sets ``port`` (``http.server`` is not a cost of the package).
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fluxstack_otel._internal.sinks.auth import Guard
    from fluxstack_otel._internal.sinks.prometheus.sink import PrometheusEndpoint

__all__ = ["PrometheusServer"]

_log = logging.getLogger("fluxstack_otel")


class PrometheusServer:
    """A standalone HTTP server for the exposition on its own host and port (a daemon thread).

    Args:
        endpoint: The handler whose ``respond`` renders scrapes.
        path: The path served; other paths get 404.
        host: The address to bind.
        port: The port to bind (0 picks a free one; see ``port`` after start).
        guard: Who may scrape (``auth``); checked before anything else, on every path.
    """

    def __init__(
        self,
        endpoint: PrometheusEndpoint,
        *,
        path: str,
        host: str,
        port: int,
        guard: Guard | None = None,
    ) -> None:
        respond = endpoint.respond

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve(with_body=True)

            def do_HEAD(self) -> None:
                self._serve(with_body=False)

            def _serve(self, *, with_body: bool) -> None:
                denial = guard and guard.check(
                    self.client_address[0], self.headers["Authorization"]
                )
                if denial:
                    self.send_response(denial.status)
                    for key, value in denial.headers:
                        self.send_header(key.decode(), value.decode())
                    self.end_headers()
                    if with_body:
                        self.wfile.write(denial.body)
                    return
                if self.path.split("?", 1)[0] != path:
                    self.send_error(404)
                    return
                try:
                    body, headers = respond(
                        self.headers.get("Accept"), self.headers.get("Accept-Encoding")
                    )
                except Exception:
                    _log.exception("rendering the Prometheus exposition failed")
                    self.send_error(500)
                    return
                self.send_response(200)
                for key, value in headers:
                    self.send_header(key.decode(), value.decode())
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # scrapes are not worth a log line each

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fluxstack-otel-prometheus", daemon=True
        )

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Start serving in the background."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the socket."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout)
        self._server.server_close()
