"""Exporter faults over time, and user callbacks that raise.

``tests/test_exporters_faults.py`` compares request latency with broken backends against the bare
app side by side, and bounds ``shutdown()``. This module covers the rest of the issue's exporter
faults: memory and threads stay bounded over 50,000 requests while every push target (OTLP, JSON
POST, alert webhook) refuses, fails with 500 or hangs, and every exporter delivers the full counts
once its target comes back. The requests go through the middleware in process (the exporters run
in their own threads either way, and 50,000 requests over uvicorn would take most of a minute on
two cores); the targets are real HTTP servers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psutil
import pytest
from opentelemetry.metrics import CallbackOptions, Observation

from fluxstack_otel import Monitoring, configure_monitoring
from fluxstack_otel._internal.runtime.failures import failure_counts
from fluxstack_otel._internal.runtime.scheduler import default_scheduler
from receivers import Request, requests_total
from servers import wait_until
from support.asgi import ok_app as app

pytestmark = pytest.mark.slow  # real servers or subprocesses: left out of make unit-fast

INTERVAL = 0.05
TIMEOUT = 0.3
MODES = ("refuse", "fail", "hang")
# An alert that fires at the first evaluation and notifies again every interval.
ALWAYS_FIRING = {
    "metric": "http_requests_total",
    "operator": ">=",
    "value": 0,
    "aggregation": "value",
    "severity": "info",
    "repeat_interval": INTERVAL,
}


def drive(monitoring: Monitoring, n: int) -> int:
    """``n`` requests through the middleware in process; returns how many answered 200."""
    wrapped = monitoring.instrument(app)
    ok = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal ok
        if message.get("status") == 200:
            ok += 1

    async def main() -> None:
        scope = {"type": "http", "method": "GET", "path": "/work", "headers": []}
        for _ in range(n):
            await wrapped(dict(scope), receive, send)

    asyncio.run(main())
    return ok


class Target:
    """An HTTP target on 127.0.0.1 that refuses (not listening), fails (500), hangs, or accepts.

    ``recover()`` makes it accept: a refusing target starts listening on its port then. Its port
    is bound from the start, so no other process can take it while the target refuses: the
    kernel answers a bound socket that does not listen with a reset, as for a closed port.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.attempts = 0
        self.bodies: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()
        self._released = threading.Event()
        self._server = self._bind()
        self.port: int = self._server.server_address[1]
        if mode != "refuse":
            self._listen()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _bind(self) -> ThreadingHTTPServer:
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with target._cond:
                    target.attempts += 1
                    mode = target.mode
                if mode == "hang":
                    target._released.wait(10)  # bounded: released at recover() or close()
                    return
                if mode == "fail":
                    self.send_error(500)
                    return
                with target._cond:
                    target.bodies.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        server.daemon_threads = True
        server.server_bind()
        return server

    def _listen(self) -> None:
        self._server.server_activate()
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()

    def recover(self) -> None:
        with self._cond:
            was, self.mode = self.mode, "ok"
        self._released.set()
        if was == "refuse":
            self._listen()

    def close(self) -> None:
        self._released.set()
        if self.mode != "refuse":
            self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def targets() -> Iterator[dict[str, dict[str, Target]]]:
    """Per kind of push (otlp, json, webhook), one target per fault mode."""
    with ExitStack() as stack:
        out: dict[str, dict[str, Target]] = {}
        for kind in ("otlp", "json", "webhook"):
            out[kind] = {}
            for mode in MODES:
                target = Target(mode)
                stack.callback(target.close)
                out[kind][mode] = target
        yield out


def config(targets: dict[str, dict[str, Target]]) -> dict[str, Any]:
    push = {"interval": INTERVAL, "timeout": TIMEOUT}
    return {
        "system_metrics": False,
        "alert_evaluation_interval": INTERVAL,
        "exporters": [
            *(
                {"type": "otlp", "endpoint": t.url + "/v1/metrics", **push}
                for t in targets["otlp"].values()
            ),
            *({"type": "json", "url": t.url + "/hook", **push} for t in targets["json"].values()),
        ],
        "alerts": [ALWAYS_FIRING],
        "notifiers": [
            {"type": "webhook", "url": t.url + "/alerts", "timeout": TIMEOUT}
            for t in targets["webhook"].values()
        ],
    }


def otlp_count(body: bytes) -> float:
    request = Request()
    request.ParseFromString(body)
    return requests_total(request)[0]


def json_count(body: bytes) -> float:
    for metric in json.loads(body)["metrics"]:
        if metric["name"] == "http_requests_total":
            return sum(float(s["value"]) for s in metric["series"])
    return 0


def delivered(target: Target, count: float, kind: str) -> bool:
    with target._cond:
        bodies = list(target.bodies)
    if kind == "webhook":
        return bool(bodies)
    read = otlp_count if kind == "otlp" else json_count
    return any(read(body) == count for _, body in bodies)


def own_threads() -> int:
    """The package's threads (the targets' server threads here are the test's own)."""
    return sum(t.name.startswith("fluxstack-otel") for t in threading.enumerate())


def failures_for(targets: list[Target]) -> bool:
    counts = failure_counts()
    return all(
        t.attempts >= 2 or any(str(t.port) in kind and n >= 2 for kind, n in counts.items())
        for t in targets
    )


@pytest.mark.slow
def test_memory_and_threads_stay_bounded_over_50000_requests_while_every_target_is_broken(
    targets: dict[str, dict[str, Target]],
) -> None:
    """50,000 requests with 9 broken push targets: RSS growth stays flat, threads stay bounded."""
    monitoring = configure_monitoring(config(targets))
    process = psutil.Process()
    everything = [t for kind in targets.values() for t in kind.values()]
    # The scheduler, at most one run thread per interval job (a run that hangs skips its job's
    # later ticks), one sender per webhook and the process's one render thread of the scrapes
    # (runtime/background.py, made by the first scrape of the session): never one per export.
    bound = 1 + len(default_scheduler().jobs) + len(targets["webhook"]) + 1
    try:
        assert drive(monitoring, 5_000) == 5_000
        wait_until(lambda: failures_for(everything), timeout=20, message="every target to fail")
        gc.collect()
        rss_before, threads_before = process.memory_info().rss, own_threads()
        samples, thread_samples = [], [threads_before]
        for _ in range(9):
            assert drive(monitoring, 5_000) == 5_000
            gc.collect()
            samples.append(process.memory_info().rss - rss_before)
            thread_samples.append(own_threads())
        threads_after = own_threads()
        text = monitoring.render_prometheus().decode()
    finally:
        t0 = time.monotonic()
        monitoring.shutdown(1.0)
        shutdown = time.monotonic() - t0
    assert 'http_requests_total{method="GET",route="<unmatched>"} 50000' in text
    growth = max(samples)
    print(
        f"RSS growth over 45,000 requests with 9 broken targets: max {growth / 2**20:.1f} MiB "
        f"(samples {[round(s / 2**20, 1) for s in samples]}); threads {thread_samples} "
        f"(bound {bound}), {threads_after} at the end; shutdown {shutdown:.2f}s"
    )
    # Nothing queues per request or per failed export: a leak of even 200 bytes per request
    # would be 9 MiB here.
    assert growth < 8 * 2**20, samples
    assert max(thread_samples) <= bound, (thread_samples, bound)
    assert shutdown < 1.5


@pytest.mark.slow
def test_every_exporter_delivers_the_full_counts_once_its_target_comes_back(
    targets: dict[str, dict[str, Target]],
) -> None:
    """Refused, failing and hanging targets recover: each then receives the final totals."""
    monitoring = configure_monitoring(config(targets))
    everything = [t for kind in targets.values() for t in kind.values()]
    try:
        assert drive(monitoring, 100) == 100
        wait_until(lambda: failures_for(everything), timeout=20, message="every target to fail")
        for target in everything:
            target.recover()
        assert drive(monitoring, 50) == 50
        for kind, by_mode in targets.items():
            for mode, target in by_mode.items():
                wait_until(
                    lambda t=target, k=kind: delivered(t, 150, k),  # type: ignore[misc]
                    timeout=20,
                    message=f"the {kind} target that used to {mode} to receive the totals",
                )
    finally:
        monitoring.shutdown(1.0)


def test_a_raising_alert_callback_is_isolated_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A callback that raises is logged and counted; the next callback still runs, every time."""
    monitoring = configure_monitoring(
        {
            "system_metrics": False,
            "alert_evaluation_interval": INTERVAL,
            "alerts": [ALWAYS_FIRING],
            "notifiers": [],
        }
    )
    seen: list[str] = []

    def broken(alert: Any) -> None:
        raise RuntimeError("callback bug")

    async def broken_async(alert: Any) -> None:
        raise ValueError("async callback bug")

    try:
        monitoring.on_alert(broken)
        monitoring.on_alert(broken_async)
        monitoring.on_alert(lambda alert: seen.append(alert.state))
        assert drive(monitoring, 10) == 10
        wait_until(lambda: len(seen) >= 3, timeout=10, message="three notifications")
        assert drive(monitoring, 10) == 10
    finally:
        monitoring.shutdown(1.0)
    counts = failure_counts()
    assert (
        counts.get(
            "alert callback test_a_raising_alert_callback_is_isolated_and_logged.<locals>.broken", 0
        )
        >= 3
    )
    assert any("broken_async" in kind for kind in counts)
    assert "callback bug" in caplog.text


def test_a_raising_observable_callback_spoils_only_its_own_metric(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An observable gauge whose callback raises: logged, and the other metrics still collected."""
    monitoring = configure_monitoring({"system_metrics": False})

    def broken(options: CallbackOptions) -> list[Observation]:
        raise RuntimeError("observable bug")

    def fine(options: CallbackOptions) -> list[Observation]:
        return [Observation(7)]

    try:
        monitoring.meter.create_observable_gauge("app_broken_gauge", callbacks=[broken])
        monitoring.meter.create_observable_gauge("app_fine_gauge", callbacks=[fine])
        assert drive(monitoring, 3) == 3
        text = monitoring.render_prometheus().decode()
    finally:
        monitoring.shutdown(1.0)
    assert "app_fine_gauge 7" in text
    assert "observable bug" in caplog.text
    assert 'http_requests_total{method="GET",route="<unmatched>"} 3' in text
