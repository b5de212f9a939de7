"""Receivers on 127.0.0.1 for the tests: OTLP over HTTP (protobuf) and gRPC, decoded with the
official opentelemetry-proto classes, helpers that read the decoded requests, and a JSON webhook."""

from __future__ import annotations

import gzip
import json
import socket
import sys
import threading
from collections.abc import Callable
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, Self

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as pb_grpc
from opentelemetry.proto.metrics.v1 import metrics_pb2

from fluxstack_otel._internal.metrics.catalog import HTTP_REQUEST_DURATION, HTTP_REQUESTS

DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
Request = pb.ExportMetricsServiceRequest


class _QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a line per request is noise in test output

    def otlp_body(self) -> bytes:
        """The request body as an OTLP/HTTP exporter sent it, gunzipped where it was gzipped."""
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return body

    def reply_protobuf(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (an export timed out, a shutdown abandoned it) is no failure of
        # the receiver; anything else still prints its traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Loopback:
    """A threaded HTTP server on 127.0.0.1 for one handler class, started and stopped by its owner."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Served:
    """A receiver behind one ``_Loopback`` server, serving between ``__enter__`` and ``__exit__``."""

    _http: _Loopback

    @property
    def base_url(self) -> str:
        return self._http.base_url

    def __enter__(self) -> Self:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()


class Received:
    """What a receiver accepted, with a condition to wait on."""

    def __init__(self, failures: int = 0) -> None:
        self.requests: list[Request] = []
        self.metadata: list[dict[str, str]] = []
        self.attempts = 0
        self.failures = failures  # the first N exports are refused
        self.cond = threading.Condition()

    def accept(self, request: Request, metadata: dict[str, str]) -> bool:
        with self.cond:
            self.attempts += 1
            self.cond.notify_all()
            if self.attempts <= self.failures:
                return False
            self.requests.append(request)
            self.metadata.append(metadata)
            self.cond.notify_all()
            return True

    def wait_for(self, predicate: Callable[[Received], bool], timeout: float = 10.0) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: predicate(self), timeout)
        assert ok, f"receiver: timed out ({self.attempts} attempts, {len(self.requests)} accepted)"


class HttpReceiver(_Served, Received):
    """OTLP/HTTP (protobuf) on 127.0.0.1: POST /v1/metrics; refusals answer 500."""

    def __init__(
        self, failures: int = 0, path: str = "/v1/metrics", hold: threading.Event | None = None
    ) -> None:
        super().__init__(failures)
        receiver = self

        class Handler(_QuietHandler):
            def do_POST(self) -> None:
                if hold is not None:  # a stuck backend, until the test releases it
                    hold.wait(30)
                request = Request()
                request.ParseFromString(self.otlp_body())
                ok = self.path == path and receiver.accept(
                    request, {k.lower(): v for k, v in self.headers.items()}
                )
                payload = pb.ExportMetricsServiceResponse().SerializeToString() if ok else b""
                self.reply_protobuf(200 if ok else 500, payload)

        self._http = _Loopback(Handler)


class TraceHttpReceiver(_Served):
    """OTLP/HTTP (protobuf) traces on 127.0.0.1: POST /v1/traces, decoded; every span kept."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as tpb

        self.spans: list[Any] = []
        self.cond = threading.Condition()
        receiver = self

        class Handler(_QuietHandler):
            def do_POST(self) -> None:
                request = tpb.ExportTraceServiceRequest()
                request.ParseFromString(self.otlp_body())
                with receiver.cond:
                    for resource in request.resource_spans:
                        for scope in resource.scope_spans:
                            receiver.spans.extend(scope.spans)
                    receiver.cond.notify_all()
                self.reply_protobuf(200, tpb.ExportTraceServiceResponse().SerializeToString())

        self._http = _Loopback(Handler)

    def wait_for(self, predicate: Callable[[list[Any]], bool], timeout: float = 10.0) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: predicate(self.spans), timeout)
        assert ok, f"trace receiver: timed out with {len(self.spans)} spans"


class GrpcReceiver(Received):
    """OTLP/gRPC on 127.0.0.1 (plaintext); refusals answer INTERNAL (not retried)."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__(failures)
        receiver = self

        class Servicer(pb_grpc.MetricsServiceServicer):  # type: ignore[misc]
            def Export(self, request: Request, context: grpc.ServicerContext) -> Any:
                metadata = dict(context.invocation_metadata())
                if not receiver.accept(request, metadata):
                    context.abort(grpc.StatusCode.INTERNAL, "refused by the test")
                return pb.ExportMetricsServiceResponse()

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_MetricsServiceServicer_to_server(Servicer(), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> GrpcReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None).wait(5)


class Post(NamedTuple):
    path: str
    headers: dict[str, str]
    body: bytes
    status: int | None  # None: the receiver never answered


class JsonReceiver(_Served):
    """A webhook on 127.0.0.1 that records every POST and answers with scripted statuses.

    Args:
        statuses: Statuses for the first requests, then 200. ``None`` in the list means hang
            (read the request, never answer until the receiver closes).
        delay: Seconds to wait, after recording a request, before answering it.
    """

    def __init__(self, statuses: list[int | None] | None = None, delay: float = 0.0) -> None:
        self.posts: list[Post] = []
        self.delay = delay
        self.cond = threading.Condition()
        self._statuses = list(statuses or [])
        self._release = threading.Event()
        receiver = self

        class Handler(_QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.cond:
                    status = receiver._statuses.pop(0) if receiver._statuses else 200
                    receiver.posts.append(Post(self.path, dict(self.headers), body, status))
                    receiver.cond.notify_all()
                if status is None:
                    receiver._release.wait(30)
                    return
                receiver._release.wait(receiver.delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._http = _Loopback(Handler)

    @property
    def url(self) -> str:
        return self.base_url + "/hook"

    def _posts(self, accepted: bool = False) -> list[Post]:
        with self.cond:
            posts = list(self.posts)
        if accepted:
            return [p for p in posts if p.status is not None and 200 <= p.status < 300]
        return posts

    @property
    def attempts(self) -> int:
        return len(self._posts())

    @property
    def requests(self) -> list[tuple[str, dict[str, str], Any]]:
        """Every POST, answered or not: its path, headers and body read as JSON."""
        return [(p.path, p.headers, json.loads(p.body)) for p in self._posts()]

    @property
    def bodies(self) -> list[bytes]:
        """The bodies of the POSTs answered with a 2xx."""
        return [p.body for p in self._posts(accepted=True)]

    @property
    def headers(self) -> list[dict[str, str]]:
        """The headers of the POSTs answered with a 2xx."""
        return [p.headers for p in self._posts(accepted=True)]

    @property
    def documents(self) -> list[Any]:
        """The bodies of the POSTs answered with a 2xx, read as JSON."""
        return [json.loads(b) for b in self.bodies]

    def wait_for(self, predicate: Callable[[JsonReceiver], bool], timeout: float = 10.0) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: predicate(self), timeout)
        assert ok, f"receiver: timed out ({len(self.posts)} POSTs)"

    def __exit__(self, *exc: object) -> None:
        self._release.set()  # a hanging request lets go, or the server cannot stop
        super().__exit__(*exc)


# --- decoding ----------------------------------------------------------------------------


def metrics_of(request: Request) -> dict[str, metrics_pb2.Metric]:
    out = {}
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out[m.name] = m
    return out


def resource_of(request: Request) -> dict[str, Any]:
    (rm,) = request.resource_metrics
    return {kv.key: kv.value.string_value for kv in rm.resource.attributes}


def requests_total(request: Request) -> tuple[float, int]:
    """The sum of http_requests_total over its series, and its temporality."""
    m = metrics_of(request).get(HTTP_REQUESTS.name)
    if m is None:
        return 0, 0
    return sum(p.as_int for p in m.sum.data_points), m.sum.aggregation_temporality


def durations_count(request: Request) -> int:
    m = metrics_of(request).get(HTTP_REQUEST_DURATION.name)
    return 0 if m is None else sum(p.count for p in m.histogram.data_points)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


RECEIVERS: dict[str, type[HttpReceiver] | type[GrpcReceiver]] = {
    "http/protobuf": HttpReceiver,
    "grpc": GrpcReceiver,
}
