"""A fleet: three instances (processes standing for hosts) into one OTLP receiver and one Prometheus.

Every series carries ``service.name`` and a distinct ``service.instance.id`` (``instance`` in
Prometheus), and the fleet totals per route equal the requests sent, exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from receivers import HttpReceiver
from servers import PrometheusServer, wait_until

pytestmark = pytest.mark.slow  # real servers or subprocesses: left out of make unit-fast

APPS = Path(__file__).parent / "apps"
# Requests per instance, per route: distinct, so a lost or doubled instance shows.
SENT = [{"/a": 120, "/b": 7}, {"/a": 45, "/b": 30}, {"/a": 301, "/b": 1}]
EXPECTED = {route: sum(s[route] for s in SENT) for route in ("/a", "/b")}


class Receiver(HttpReceiver):
    """The OTLP/HTTP receiver, read as the latest http_requests_total per instance and route."""

    def _latest(self) -> tuple[set[str], dict[tuple[str, str], tuple[int, int]]]:
        with self.cond:
            requests = list(self.requests)
        names: set[str] = set()
        latest: dict[tuple[str, str], tuple[int, int]] = {}
        for request in requests:
            for rm in request.resource_metrics:
                attrs = {a.key: a.value.string_value for a in rm.resource.attributes}
                names.add(attrs.get("service.name", ""))
                instance = attrs["service.instance.id"]
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        if metric.name != "http_requests_total":
                            continue
                        for p in metric.sum.data_points:
                            labels = {a.key: a.value.string_value for a in p.attributes}
                            key = (instance, labels["route"])
                            seen = latest.get(key)
                            if seen is None or p.time_unix_nano >= seen[0]:
                                latest[key] = (p.time_unix_nano, int(p.as_int))
        return names, latest

    @property
    def names(self) -> set[str]:
        return self._latest()[0]

    def totals(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (_, route), (_, value) in self._latest()[1].items():
            out[route] = out.get(route, 0) + value
        return out

    def instances(self) -> set[str]:
        return {instance for instance, _ in self._latest()[1]}


@dataclass
class Fleet:
    receiver: Receiver
    ports: list[int]
    instances: list[str]


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    """Three instance processes pushing to one receiver, each serving its own /metrics."""
    with Receiver() as receiver:
        url = receiver.base_url
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
