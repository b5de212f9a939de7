"""A local OTLP/HTTP sink: accepts ``POST /v1/metrics`` (any path), answers 200, counts payloads.

It lets the package's full configuration run its OTLP exporter for real without a collector; the
counts go into the report as evidence that the exporter ran during the measurement.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    server: OtlpSink

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else b""
        self.server.record(self.path, len(payload))
        self.send_response(200)
        # An empty body is a valid, empty ExportMetricsServiceResponse.
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class OtlpSink(ThreadingHTTPServer):
    """An OTLP/HTTP receiver on 127.0.0.1 that discards what it receives."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.posts: dict[str, int] = {}
        self.bytes_received = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, name="otlp-sink", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def record(self, path: str, size: int) -> None:
        with self._lock:
            self.posts[path] = self.posts.get(path, 0) + 1
            self.bytes_received += size

    def start(self) -> OtlpSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
