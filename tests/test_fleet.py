"""A fleet: three instances (processes standing for hosts) into one OTLP receiver and one Prometheus.

Every series carries ``service.name`` and a distinct ``service.instance.id`` (``instance`` in
Prometheus), and the fleet totals per route equal the requests sent, exactly.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as pb

from servers import PrometheusServer, wait_until

APPS = Path(__file__).parent / "apps"
# Requests per instance, per route: distinct, so a lost or doubled instance shows.
SENT = [{"/a": 120, "/b": 7}, {"/a": 45, "/b": 30}, {"/a": 301, "/b": 1}]
EXPECTED = {route: sum(s[route] for s in SENT) for route in ("/a", "/b")}


@dataclass
class Receiver:
    """An OTLP/HTTP metrics receiver decoding with opentelemetry-proto; keeps the latest values."""

    latest: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accept(self, request: pb.ExportMetricsServiceRequest) -> None:
        with self.lock:
            for rm in request.resource_metrics:
                attrs = {a.key: a.value.string_value for a in rm.resource.attributes}
                self.names.add(attrs.get("service.name", ""))
                instance = attrs["service.instance.id"]
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        if metric.name != "http_requests_total":
                            continue
                        for p in metric.sum.data_points:
                            labels = {a.key: a.value.string_value for a in p.attributes}
                            key = (instance, labels["route"])
                            seen = self.latest.get(key)
                            if seen is None or p.time_unix_nano >= seen[0]:
                                self.latest[key] = (p.time_unix_nano, int(p.as_int))

    def totals(self) -> dict[str, int]:
        with self.lock:
            out: dict[str, int] = {}
            for (_, route), (_, value) in self.latest.items():
                out[route] = out.get(route, 0) + value
            return out

    def instances(self) -> set[str]:
        with self.lock:
            return {instance for instance, _ in self.latest}


def _serve(receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            receiver.accept(pb.ExportMetricsServiceRequest.FromString(body))
            reply = pb.ExportMetricsServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Fleet:
    receiver: Receiver
    ports: list[int]
    instances: list[str]


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    """Three instance processes pushing to one receiver, each serving its own /metrics."""
    receiver = Receiver()
    server = _serve(receiver)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    processes = [
        subprocess.Popen(
            [sys.executable, str(APPS / "fleet_instance.py"), url, str(s["/a"]), str(s["/b"])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        for s in SENT
    ]
    try:
        started = []
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline()  # the instance prints once its requests are done
            assert line, f"instance exited with {process.wait(5)}"
            started.append(json.loads(line))
        yield Fleet(receiver, [s["port"] for s in started], [s["instance"] for s in started])
    finally:
        for process in processes:
            if process.stdin is not None:
                process.stdin.close()  # the instance shuts down, pushing once more
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            if process.stdout is not None:
                process.stdout.close()
        server.shutdown()
        server.server_close()


def test_otlp_fleet_totals_are_exact(fleet: Fleet) -> None:
    """Summed over the instances, the receiver's latest cumulative values equal the requests sent."""
    wait_until(lambda: fleet.receiver.totals() == EXPECTED, timeout=10,
               message=lambda: f"OTLP totals {fleet.receiver.totals()} == {EXPECTED}")  # fmt: skip
    assert fleet.receiver.instances() == set(fleet.instances)
    assert len(set(fleet.instances)) == 3
    assert fleet.receiver.names == {"fleet-app"}


@pytest.mark.slow
def test_prometheus_fleet_totals_are_exact(fleet: Fleet, prometheus: Any) -> None:
    """One real Prometheus scraping the three: ``sum by (route)`` equals the requests sent."""
    prom: PrometheusServer = prometheus(
        [f"127.0.0.1:{port}" for port in fleet.ports], scrape_interval=0.5
    )

    def exact(result: list[dict[str, Any]]) -> bool:
        got = {r["metric"].get("route"): int(float(r["value"][1])) for r in result}
        return got == EXPECTED

    prom.wait_for("sum by (route) (http_requests_total)", exact, timeout=30)
    per_instance = prom.query("count by (instance) (http_requests_total)")
    assert len(per_instance) == 3
    assert {r["metric"]["job"] for r in prom.query("http_requests_total")} == {"app"}
