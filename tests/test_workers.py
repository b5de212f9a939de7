"""Pre-fork and spawned workers under auto-instrumentation: each worker is its own instance.

Real gunicorn (``UvicornWorker``, ``preload_app`` on and off) and ``uvicorn --workers 2``, both
under ``opentelemetry-instrument``, on ``apps/auto_workers.py``, which only uses the OpenTelemetry
API. One keep-alive connection stays on one worker, so the test holds a connection per worker
and reads each worker's ``/pid`` and ``/metrics`` through it. Exporters, from the environment:
Prometheus with ``target_info`` (the worker's ``service.instance.id``), a console text snapshot
every 0.3 s (the periodic thread, per worker), and a console JSON document with an interval of an
hour, so the only one printed is the final flush at shutdown.
"""

from __future__ import annotations

import json
import os
import re
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families as parse_text

from autoinst import (
    AUTO_MARKS,
    Server,
    auto_env,
    gunicorn_argv,
    server,
    target_info,
    uvicorn_argv,
)
from servers import wait_until

pytestmark = [
    *AUTO_MARKS,
    pytest.mark.skipif(not hasattr(os, "fork"), reason="pre-fork servers need fork"),
]

WORKERS = 2
ENV = {
    "FLUXSTACK_MONITORING_EXPORTERS": json.dumps(
        [
            {"type": "prometheus", "target_info": True},
            {"type": "console", "stream": "stdout", "format": "text"},
            {"type": "console", "stream": "stdout", "format": "json", "interval": 3600},
        ]
    ),
    "METRICS_INTERVAL": "300",
}
_HEADER = re.compile(r"^fluxstack-otel fluxstack-app (\S{8}) ", re.M)
GROW = 64 << 20


@dataclass
class Worker:
    """One worker, reached through a keep-alive connection of its own."""

    pid: int
    client: httpx.Client
    counted: int = 0
    requests: int = 1  # the /pid that found it

    def metrics(self) -> dict[str, float]:
        text = self.client.get("/metrics").text
        out = {"instance": target_info(text)["service_instance_id"]}  # type: ignore[dict-item]
        for family in parse_text(text):
            for s in family.samples:
                if not s.labels:
                    out[s.name] = s.value
        return out  # type: ignore[return-value]


def connect_workers(srv: Server, stack: ExitStack) -> list[Worker]:
    """Open connections until ``WORKERS`` distinct workers hold one each."""
    found: dict[int, Worker] = {}

    def another() -> bool:
        client = stack.enter_context(srv.client())
        pid = int(client.get("/pid").text)
        if pid in found:
            found[pid].requests += 1
            client.close()
        else:
            found[pid] = Worker(pid, client)
        return len(found) == WORKERS

    wait_until(another, timeout=30, interval=0.01, message=lambda: f"{WORKERS} workers")
    return list(found.values())


def final_documents(output: str) -> dict[str, dict[str, float]]:
    """instance id -> the unlabelled values of its final JSON document (the shutdown flush)."""
    out: dict[str, dict[str, float]] = {}
    for line in output.splitlines():
        if line.startswith("{"):
            doc = json.loads(line)
            values = {
                m["name"]: s["value"]
                for m in doc["metrics"]
                for s in m["series"]
                if not s["labels"] and "value" in s
            }
            values["http_requests"] = sum(
                s["value"]
                for m in doc["metrics"]
                if m["name"] == "http_requests_total"
                for s in m["series"]
            )
            out[doc["resource"]["instance_id"]] = values
    return out


def check_workers(srv: Server, *, boot_before: float, master_pid: int) -> None:
    """The checks every multi-worker server must pass (module docstring)."""
    with ExitStack() as stack:
        workers = connect_workers(srv, stack)
        assert master_pid not in {w.pid for w in workers}
        for w in workers:
            for _ in range(w.pid % 3 + 1):  # a different count per worker
                assert w.client.get("/count").text == "counted"
                w.counted += 1
                w.requests += 1
        views = {w.pid: w.metrics() for w in workers}
        instances = {v["instance"] for v in views.values()}
        assert len(instances) == WORKERS, views
        for w in workers:
            # Counted before the fork stays in the master; each worker counts its own.
            assert views[w.pid].get("boot_events_total", 0) == boot_before + w.counted
            # The probe runs in each worker: its first sample comes one probe interval after the
            # worker's loop started, so wait for it rather than race it.
            wait_until(
                lambda w=w: "nodejs_eventloop_lag_seconds" in w.metrics(),
                timeout=10,
                interval=0.05,
                message=lambda w=w: f"a loop-lag sample from worker {w.pid}",
            )
        # System metrics are the worker's own process: memory held by one is seen by it alone.
        big, small = workers
        before = {w.pid: w.metrics()["process_memory_rss_bytes"] for w in workers}
        assert big.client.get("/grow").text == "grown"
        big.requests += 1
        after = {w.pid: w.metrics()["process_memory_rss_bytes"] for w in workers}
        assert after[big.pid] - before[big.pid] >= GROW * 0.9
        assert abs(after[small.pid] - before[small.pid]) < GROW / 4
        # The periodic console thread runs in every worker.
        wait_until(
            lambda: {i[:8] for i in instances} <= set(_HEADER.findall(srv.output())),
            timeout=10,
            message=lambda: f"console snapshots of {instances}\n{srv.tail()}",
        )
        expected = {str(views[w.pid]["instance"]): w for w in workers}
    assert srv.stop() == 0, srv.tail()
    final = final_documents(srv.output())
    for instance, w in expected.items():
        assert instance in final, f"no final flush from worker {w.pid}:\n{srv.tail()}"
        # Every request it answered (the harness's readiness probes may add to one of them).
        assert final[instance]["http_requests"] >= w.requests
        assert final[instance].get("boot_events", 0) == boot_before + w.counted  # OTel name


@pytest.mark.parametrize("preload", [True, False], ids=["preload", "no-preload"])
def test_gunicorn_workers_each_report_their_own_series(
    entry_dir: Path | None, tmp_path: Path, preload: bool
) -> None:
    """gunicorn prefork: own instance id, pid-correct metrics, no pre-fork counts, own threads."""
    argv = gunicorn_argv("auto_workers:app", WORKERS, "--keep-alive", "30",
                         "--graceful-timeout", "10", *(["--preload"] if preload else []))  # fmt: skip
    with server(argv, auto_env(entry_dir, ENV), tmp_path / "gunicorn.log", cwd=tmp_path,
                ready_path="/pid") as srv:  # fmt: skip
        # With preload the master imports the app and counts 5 before forking: none may leak.
        check_workers(srv, boot_before=0 if preload else 5, master_pid=srv.process.pid)


def test_uvicorn_spawned_workers_each_report_their_own_series(
    entry_dir: Path | None, tmp_path: Path
) -> None:
    """uvicorn --workers 2 (spawn): every worker configures itself from the environment."""
    argv = uvicorn_argv("auto_workers:app", "--workers", str(WORKERS), "--timeout-keep-alive", "30")
    with server(argv, auto_env(entry_dir, ENV), tmp_path / "uvicorn.log", cwd=tmp_path,
                ready_path="/pid") as srv:  # fmt: skip
        check_workers(srv, boot_before=5, master_pid=srv.process.pid)
