"""The stream at scale, the scrape side: fresh renders against prometheus_client, the memory a
first scrape leaves, alert evaluations, and request latency while large scrapes run.

Used by ``scale.py``. Every figure for one size comes from one process of its own, side by side:

- **render**: the CPU time (``time.process_time``) of a fresh ``render_prometheus()`` (the HTTP
  scope written from the series, ``sinks/prometheus/http_text.py``) and of prometheus_client's
  ``generate_latest`` for a registry holding the same families and label sets (``_scrape.py``'s
  reference), interleaved over ``rounds``, medians; the ratio, and the cost per label set;
- **memory**: the process's RSS growth while the label sets were recorded (what the series hold,
  the C heap trimmed before and after so the feed's garbage does not count), and its growth over
  a first fresh scrape, measured after the body is dropped (no trim: what the allocator keeps);
- **alerts**: the CPU of one evaluation of the default rules (``evaluate_now``);
- **p99** (one size): the app under uvicorn on loopback (``_scale_server.py``, one process,
  pinned to one core when there are two), loaded by ``wrk --latency`` (16 connections, on the
  other core), with and without ``GET /metrics`` (gzip, as Prometheus asks) from this process
  every ``every`` seconds; the runs alternate, and each reports wrk's p50 and p99.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

from _driver import Driver, Request
from _scrape import PromReference, _series_app, label_sets
from _throughput import parse_wrk
from fluxstack_otel import configure_monitoring

HERE = Path(__file__).resolve().parent


def _monitoring(n: int) -> Any:
    return configure_monitoring(
        {
            "service_name": "bench",
            "set_global": False,
            "system_metrics": False,
            "max_series_per_metric": max(2 * n, 2000),
            "exporters": [{"type": "prometheus", "endpoint": "/metrics"}],
        }
    )


def _requests(n: int) -> list[Request]:
    return [
        Request("s", method, route, status, query=f"status={status}".encode())
        for method, route, status in label_sets(n)
    ]


async def _feed(app: Any, requests: list[Request]) -> None:
    for request in requests:
        got, _ = await Driver(app, [request]).request(0)
        if got != request.expect_status:
            raise RuntimeError(f"{request.path} answered {got}")


def _rss(trim: bool = False) -> int:
    """The process's RSS after a collection; with ``trim``, after handing the C heap's free
    pages back too (so what a later figure adds is what the measured step left)."""
    import psutil

    gc.collect()
    if trim:  # glibc's malloc_trim; elsewhere nothing to hand back this way
        import ctypes
        import ctypes.util

        with contextlib.suppress(OSError, AttributeError, TypeError):
            ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
    return int(psutil.Process().memory_info().rss)


def _streamed(endpoint: Any, encoding: str | None, keep: bool = False) -> None:
    """A scrape through the endpoint, its chunks made and dropped one by one (as a server sends
    them), rendered afresh (the kept text dropped first, unless ``keep``: an idle scrape)."""
    if not keep:
        for kept in endpoint._exposition._kept.values():
            kept._kept = None
    _, chunks = endpoint.open(None, encoding)
    for _ in chunks:
        pass


def _cpu_ms(render: Any) -> float:
    gc.collect()
    started = time.process_time()
    render()
    return (time.process_time() - started) * 1000


def render_section(sizes: list[int], rounds: int) -> dict[str, Any]:
    """Per size, in a process of its own (so no size finds the heap another one left): fresh
    render against prometheus_client, memory, alert evaluation."""
    out: dict[str, Any] = {}
    for n in sizes:
        done = subprocess.run(
            [sys.executable, __file__, str(n), str(rounds)],
            capture_output=True, text=True, check=False, timeout=1800,
        )  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"the render run for {n} label sets failed:\n{done.stderr}")
        out[str(n)] = json.loads(done.stdout.splitlines()[-1])
    return out


def _render_one(n: int, rounds: int) -> dict[str, Any]:
    from prometheus_client import disable_created_metrics

    disable_created_metrics()
    monitoring = _monitoring(n)
    try:
        app = monitoring.instrument(_series_app(-(-n // 50)))
        endpoint = next(
            s for s in monitoring._sinks if type(s).__name__ == "PrometheusSink"
        )._endpoint
        # One scrape of nothing first: the render thread, the modules a scrape imports and
        # the interpreter's caches are not the series' working set.
        _streamed(endpoint, "gzip")
        monitoring.render_prometheus()
        before = _rss(trim=True)
        asyncio.run(_feed(app, _requests(n)))
        monitoring._recorder.drain()  # the records folded: the series as a scrape finds them
        held = _rss(trim=True) - before  # the series, without the feed's garbage
        _streamed(endpoint, "gzip")  # a scrape as Prometheus makes it, chunks dropped as sent
        streamed_grown = _rss() - before - held
        first = monitoring.render_prometheus()
        size = len(first)
        del first
        grown = _rss() - before - held
        reference = PromReference(label_sets(n))
        ours, theirs = [], []
        streams: list[float] = []
        idle: list[float] = []
        for r in range(rounds):
            pair = [(ours, monitoring.render_prometheus), (theirs, reference.render),
                    (streams, partial(_streamed, endpoint, None))]  # fmt: skip
            for into, render in pair[r % 3 :] + pair[: r % 3]:
                into.append(_cpu_ms(render))
            _streamed(endpoint, "gzip")
            idle.append(_cpu_ms(partial(_streamed, endpoint, "gzip", keep=True)))
        alerts = monitoring._p.alerts
        started = time.thread_time()
        alerts.evaluate_now()
        alert_ms = (time.thread_time() - started) * 1000
    finally:
        monitoring.shutdown()
    mine, prom = statistics.median(ours), statistics.median(theirs)
    return {
        "render_cpu_ms": mine,
        "prometheus_client_cpu_ms": prom,
        "ratio": mine / prom,
        "us_per_label_set": 1000 * mine / n,
        "body_bytes": size,
        "rss_series_bytes": held,
        "rss_growth_after_first_scrape_bytes": grown,
        "rss_growth_ratio": grown / held if held > 0 else None,
        "streamed_cpu_ms": statistics.median(streams),
        "streamed_ratio": statistics.median(streams) / prom,
        "idle_gzip_scrape_cpu_ms": statistics.median(idle),
        "rss_growth_after_first_streamed_scrape_bytes": streamed_grown,
        "streamed_rss_growth_ratio": streamed_grown / held if held > 0 else None,
        "alert_evaluation_cpu_ms": alert_ms,
    }


def p99_section(n: int, seconds: float, every: float, slices: int = 4) -> dict[str, Any]:
    """wrk's request latency with and without a scrape every ``every`` seconds, at ``n`` label
    sets, over ``slices`` alternating runs of ``seconds / slices`` each."""
    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not installed (apt-get install wrk)"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    two = (os.cpu_count() or 1) >= 2
    pin = ["taskset", "-c", "0"] if two and shutil.which("taskset") else []
    server = subprocess.Popen(
        [*pin, sys.executable, str(HERE / "_scale_server.py"), f"--port={port}", f"--series={n}"]
    )
    base = f"http://127.0.0.1:{port}"
    runs: dict[str, list[dict[str, Any]]] = {"without scrapes": [], "with scrapes": []}
    scrapes = 0
    took: list[float] = []
    try:
        _wait(base + "/metrics", server, timeout=600.0)
        for i in range(2 * slices):
            mode = ("without scrapes", "with scrapes")[(i + i // 2) % 2]
            stop = threading.Event()
            done: list[float] = []

            def scrape(stop: threading.Event = stop, done: list[float] = done) -> None:
                # On a fixed period, as Prometheus scrapes: one that overran starts the next.
                due = time.monotonic() + every
                while not stop.wait(max(0.0, due - time.monotonic())):
                    started = time.monotonic()
                    _scrape(base + "/metrics")
                    done.append(time.monotonic() - started)
                    due += every

            scraper = threading.Thread(target=scrape, daemon=True)
            if mode == "with scrapes":
                scraper.start()
            length = max(1, round(seconds / slices))
            wrk = ["wrk", "-t1", "-c16", f"-d{length}s", "--latency", base + "/s0?status=200"]
            out = subprocess.run(
                (["taskset", "-c", "1"] if pin else []) + wrk,
                capture_output=True, text=True, timeout=length + 60, check=True,
            )  # fmt: skip
            stop.set()
            if scraper.is_alive():
                scraper.join(60.0)
            scrapes += len(done)
            took += done
            runs[mode].append(parse_wrk(out.stdout))
    finally:
        server.terminate()
        server.wait(30)
    out_: dict[str, Any] = {"label_sets": n, "seconds": seconds, "scrape_every": every}
    for mode, rows in runs.items():
        out_[mode] = {
            "p50_ms": statistics.median(r["p50_ms"] for r in rows),
            "p99_ms": statistics.median(r["p99_ms"] for r in rows),
            "rps": statistics.median(r["rps"] for r in rows),
            "runs": rows,
        }
    out_["scrapes"] = scrapes
    out_["scrape_seconds_median"] = statistics.median(took) if took else None
    out_["scrape_seconds_max"] = max(took) if took else None
    out_["p99_ratio"] = out_["with scrapes"]["p99_ms"] / out_["without scrapes"]["p99_ms"]
    return out_


def _scrape(url: str) -> None:
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def _wait(url: str, server: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the scale server exited with {server.returncode}")
        try:
            _scrape(url)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the scale server did not answer in time")


if __name__ == "__main__":  # one size's render figures, as JSON on the last line
    print(json.dumps(_render_one(int(sys.argv[1]), int(sys.argv[2]))))
