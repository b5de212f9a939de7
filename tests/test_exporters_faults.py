"""Isolation: backends that are down, failing or hanging never reach the app's requests.

A benchmark-style comparison rather than a timed unit test: the same app under real uvicorn is
driven with the same sequential requests, bare and wrapped with every exporter pointed at a
broken backend, in interleaved rounds so drift on the machine hits both alike. The assertion
allows generous noise; what it catches is an exporter that blocks or slows requests (a hanging
export on the request path would add its whole timeout to requests).
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from fluxstack_otel import configure_monitoring
from fluxstack_otel._internal.runtime.failures import failure_counts
from receivers import HttpReceiver, closed_port, requests_total
from servers import serve_asgi, wait_until
from support.asgi import ok_app as app

pytestmark = pytest.mark.slow  # real servers or subprocesses: left out of make unit-fast

ROUNDS = 3
REQUESTS = 300
INTERVAL = 0.1
SHUTDOWN_TIMEOUT = 1.0


@contextmanager
def hanging_backend() -> Iterator[str]:
    """Accepts connections, reads what comes, never answers; yields http://127.0.0.1:PORT."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.05)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conn.setblocking(False)
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


class Backends:
    """Every kind of broken backend, plus one healthy OTLP receiver and one healthy file."""

    def __init__(self, stack: ExitStack, tmp_path: Path) -> None:
        self.hanging = stack.enter_context(hanging_backend())
        self.failing = stack.enter_context(HttpReceiver(failures=10**9))  # always 500
        self.healthy = stack.enter_context(HttpReceiver())
        self.down = f"http://127.0.0.1:{closed_port()}"
        blocker = tmp_path / "blocker"
        blocker.write_text("a file where a directory should be")
        self.unwritable = str(blocker / "metrics.prom")
        self.good_file = tmp_path / "good" / "metrics.prom"

    def config(self) -> dict[str, Any]:
        otlp = {"type": "otlp", "interval": INTERVAL}
        return {
            "system_metrics": False,
            "exporters": [
                {"type": "prometheus"},
                {**otlp, "endpoint": self.hanging, "timeout": 3.0},
                {**otlp, "endpoint": self.failing.base_url},
                {**otlp, "endpoint": self.down, "protocol": "grpc", "temporality": "delta"},
                {"type": "json", "url": self.hanging + "/hook", "interval": INTERVAL},
                {"type": "json", "url": self.down + "/hook", "interval": INTERVAL},
                {"type": "file", "file_path": self.unwritable, "interval": INTERVAL},
                {"type": "file", "file_path": str(self.good_file), "interval": INTERVAL},
                {**otlp, "endpoint": self.healthy.base_url},
            ],
        }


def drive(base: str, n: int) -> list[float]:
    latencies = []
    with httpx.Client(base_url=base, timeout=30) as client:
        client.get("/warmup")
        for _ in range(n):
            t0 = time.perf_counter()
            client.get("/work")
            latencies.append(time.perf_counter() - t0)
    return latencies


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


@pytest.mark.slow
def test_broken_backends_do_not_slow_requests_or_stop_the_healthy_exporters(
    tmp_path: Path,
) -> None:
    """Latency within noise of the bare app; healthy exporters deliver; shutdown stays bounded."""
    bare: list[float] = []
    faulty: list[float] = []
    shutdowns: list[float] = []
    with ExitStack() as stack:
        backends = Backends(stack, tmp_path)
        for round_index in range(ROUNDS):
            variants = ["bare", "faulty"] if round_index % 2 == 0 else ["faulty", "bare"]
            for variant in variants:
                if variant == "bare":
                    with serve_asgi(app) as base:
                        bare += drive(base, REQUESTS)
                    continue
                monitoring = configure_monitoring(backends.config())
                try:
                    with serve_asgi(monitoring.instrument(app)) as base:
                        faulty += drive(base, REQUESTS)
                        # The healthy exporters keep up while the broken ones fail or hang.
                        wait_until(
                            lambda: any(
                                requests_total(q)[0] == REQUESTS + 1
                                for q in backends.healthy.requests[-3:]
                            ),
                            timeout=10,
                            message="the healthy OTLP receiver to see every request",
                        )
                        wait_until(
                            lambda: f"}} {REQUESTS + 1}\n" in _read(backends.good_file),
                            timeout=10,
                            message="the healthy file to hold every request",
                        )
                finally:
                    t0 = time.monotonic()
                    monitoring.shutdown(SHUTDOWN_TIMEOUT)
                    shutdowns.append(time.monotonic() - t0)

    failures = failure_counts()
    assert failures.get(f"exporting OTLP to {backends.failing.base_url}", 0) > 0
    assert failures.get(f"exporting OTLP to {backends.down}", 0) > 0
    assert failures.get(f"writing the file exporter's {backends.unwritable!r}", 0) > 0

    b50, f50 = statistics.median(bare), statistics.median(faulty)
    b99, f99 = quantile(bare, 0.99), quantile(faulty, 0.99)
    report = (
        f"bare p50 {b50 * 1e3:.3f} ms p99 {b99 * 1e3:.3f} ms max {max(bare) * 1e3:.1f} ms | "
        f"faulty p50 {f50 * 1e3:.3f} ms p99 {f99 * 1e3:.3f} ms max {max(faulty) * 1e3:.1f} ms | "
        f"shutdowns {', '.join(f'{s:.2f}s' for s in shutdowns)}"
    )
    print(report)
    # An export on the request path would add the hanging backend's whole 3 s timeout to requests:
    # no request may come near it. The median may move by 50 % plus 0.5 ms of noise. The tail is
    # not asserted: exporting ten times a second shares the GIL with requests, faults or not, and
    # on a loaded machine that alone puts the faulty p99 past any fixed multiple of the bare one
    # (docs/exporters.md gives the measured figures; benchmarks/ holds the timing claims).
    assert max(faulty) < 1.0, report
    assert f50 < b50 * 1.5 + 0.0005, report
    # Nine sinks stop side by side, so the hanging ones cost the bound once, not once each.
    assert all(s < SHUTDOWN_TIMEOUT + 0.5 for s in shutdowns), report


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
