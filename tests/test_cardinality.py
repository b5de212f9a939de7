"""Retention and cardinality: eviction on an injected clock, the per-metric cap, bounded memory."""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
import textwrap
from collections import Counter
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics.export import Metric, MetricsData
from prometheus_client.parser import text_string_to_metric_families as parse_text

from fluxstack_otel import configure_monitoring
from fluxstack_otel._internal.http.recorder import OVERFLOW, HttpRecorder
from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.metrics.stream import DeltaView, MetricStream
from loadgen import run_load
from servers import promtool_check_metrics, requires_promtool, serve_asgi
from support.clocks import FakeClock, FakeWallClock
from support.metricdata import by_name, points

# docs/custom-metrics.md quotes these bounds. Once the cap is reached, 90,000 more requests with
# fresh label sets may grow the process's RSS by at most RSS_GROWTH_BOUND (measured: well under
# 1 MiB); the whole flood, 2,000 series per metric and scrapes included, by RSS_TOTAL_BOUND
# (measured: about 11 MiB).
RSS_GROWTH_BOUND = 8 * 1024 * 1024
RSS_TOTAL_BOUND = 32 * 1024 * 1024


GET_X = frozenset({("method", "GET"), ("route", "/x")})


def _retaining_recorder() -> tuple[HttpRecorder, FakeClock]:
    """A recorder that drops series idle for 60 s, and the clock it reads (the wall clock ticks)."""
    clock = FakeClock()
    wall = FakeWallClock(1_700_000_000_000_000_000, step=1)
    return HttpRecorder(retention_period=60.0, clock=clock, wall_clock_ns=wall), clock


def test_a_live_series_never_goes_backwards_while_part_of_it_idles() -> None:
    """A counter fed by an idle and a busy label set keeps its sum until the whole group idles."""
    rec, clock = _retaining_recorder()
    rec.record("GET", "/x", 404, None, 0.01, 0, 0, clock.now)
    for i in range(1, 6):
        clock.now += 30
        rec.record("GET", "/x", 200, None, 0.01, 0, 0, clock.now)
        (total,) = [p.value for k, p in points(rec.to_metrics()[0]).items() if k == GET_X]
        # The 404 key has idled for up to 150 s, yet requests_total{GET,/x} still counts it.
        assert total == 1 + i
    responses = points(by_name(rec.to_metrics())[cat.HTTP_RESPONSES.name])
    assert responses[GET_X | {("status_code", "404")}].value == 1


def test_an_idle_group_is_evicted_and_comes_back_with_a_new_start_time() -> None:
    """After retention_period without requests a route's series vanish; a return restarts them."""
    rec, clock = _retaining_recorder()
    for _ in range(3):
        rec.record("GET", "/x", 200, None, 0.01, 0, 0, clock.now)
    rec.record("GET", "/y", 200, None, 0.01, 0, 0, clock.now)
    (before,) = [p for k, p in points(rec.to_metrics()[0]).items() if k == GET_X]
    assert before.value == 3
    clock.now += 45
    rec.record("GET", "/y", 200, None, 0.01, 0, 0, clock.now)
    clock.now += 16  # /x idle for 61 s, /y for 16 s
    routes = {dict(k)["route"] for k in points(rec.to_metrics()[0])}
    assert routes == {"/y"}
    assert len(rec) == 1
    rec.record("GET", "/x", 200, None, 0.01, 0, 0, clock.now)
    (after,) = [p for k, p in points(rec.to_metrics()[0]).items() if k == GET_X]
    assert after.value == 1
    assert after.start_time_unix_nano > before.start_time_unix_nano


def test_delta_exporters_see_the_returning_series_as_new() -> None:
    """A delta view reports a returning series' full value, never a negative difference."""
    rec, clock = _retaining_recorder()
    stream = MetricStream((), rec.to_metrics, _resource())
    view = DeltaView(stream)
    for _ in range(4):
        rec.record("GET", "/x", 200, None, 0.01, 0, 0, clock.now)
    assert _request_values(view.collect()) == [4]
    clock.now += 61
    assert _request_values(view.collect()) == []
    rec.record("GET", "/x", 200, None, 0.01, 0, 0, clock.now)
    assert _request_values(view.collect()) == [1]


def _resource() -> Any:
    from opentelemetry.sdk.resources import Resource

    return Resource({"service.name": "t"})


def _request_values(data: MetricsData) -> list[int | float]:
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == cat.HTTP_REQUESTS.name:
                    return [p.value for p in m.data.data_points]  # type: ignore[union-attr]
    return []


METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "_OTHER"]


def _series_per_metric(metrics: list[Metric]) -> dict[str, int]:
    return {m.name: len(m.data.data_points) for m in metrics}  # type: ignore[union-attr]


def test_every_metric_stays_within_the_cap_and_counts_stay_exact(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Random methods, routes, statuses and errors: no metric exceeds the cap, nothing is lost."""
    rng = random.Random(7)
    cap = 50
    rec = HttpRecorder(max_series=cap, clock=lambda: 0.0)
    errors = 0
    with caplog.at_level(logging.WARNING, logger="fluxstack_otel"):
        for i in range(5000):
            status = rng.choice([None, rng.randint(200, 599)])
            error = "ValueError" if status is not None and rng.random() < 0.2 else None
            errors += error is not None
            rec.record(rng.choice(METHODS), f"/r/{i}", status, error, 0.01, 1, 1, 0.0)
    metrics = rec.to_metrics()
    assert all(n <= cap for n in _series_per_metric(metrics).values())
    assert len(rec) <= cap + 2
    m = by_name(metrics)
    assert sum(p.value for p in points(m[cat.HTTP_REQUESTS.name]).values()) == 5000
    assert sum(p.value for p in points(m[cat.HTTP_ERRORS.name]).values()) == errors
    overflow = [dict(k) for k in points(m[cat.HTTP_ERRORS.name]) if dict(k)["route"] == OVERFLOW]
    assert overflow == [
        {"method": OVERFLOW, "route": OVERFLOW, "status_code": OVERFLOW, "error_type": OVERFLOW}
    ]
    assert sum("cardinality cap" in r.getMessage() for r in caplog.records) == 1


keys = st.tuples(
    st.sampled_from(METHODS),
    st.text("abc/", max_size=4),
    st.one_of(st.none(), st.integers(100, 599)),
    st.one_of(st.none(), st.sampled_from(["E1", "E2"])),
)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.lists(keys, max_size=100))
def test_the_cap_holds_for_any_traffic(cap: int, traffic: list[Any]) -> None:
    """Whatever the label sets and the cap, each metric has at most cap series; totals match."""
    rec = HttpRecorder(max_series=cap, clock=lambda: 0.0)
    for method, route, status, error in traffic:
        if error is not None and status is None:
            status = 500
        rec.record(method, route, status, error, 0.01, 1, 1, 0.0)
    metrics = rec.to_metrics()
    assert all(n <= cap for n in _series_per_metric(metrics).values())
    requests = by_name(metrics)[cat.HTTP_REQUESTS.name]
    assert sum(p.value for p in points(requests).values()) == len(traffic)


def test_custom_metrics_share_the_cap() -> None:
    """SDK metrics (custom, third-party) fold label sets beyond the cap into one overflow point."""
    monitoring = configure_monitoring(
        {"system_metrics": False, "max_series_per_metric": 10, "set_global": False}
    )
    try:
        orders = monitoring.counter("shop.orders", description="Orders placed.")
        for i in range(50):
            orders.add(1, {"customer": str(i)})
        (metric,) = [
            m
            for rm in monitoring.collect().resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == "shop.orders"
        ]
    finally:
        monitoring.shutdown()
    pts = list(metric.data.data_points)  # type: ignore[union-attr]
    assert len(pts) == 10
    assert sum(p.value for p in pts) == 50
    assert sum(1 for p in pts if p.attributes.get("otel.metric.overflow")) == 1


# --- floods -----------------------------------------------------------------------------------

# Runs in a fresh interpreter, so the RSS it reports is the monitoring's and not the test runner's.
# 100,000 requests through the real middleware with random paths (each its own route template),
# methods and statuses, some raising; a scrape every 10,000.
FLOOD = textwrap.dedent(
    """
    import asyncio, gc, json, logging, random, sys
    import psutil
    from fluxstack_otel import configure_monitoring

    N, CAP = int(sys.argv[1]), int(sys.argv[2])
    warnings = []
    class Count(logging.Handler):
        def emit(self, record):
            if "cardinality cap" in record.getMessage():
                warnings.append(1)
    logging.getLogger("fluxstack_otel").addHandler(Count())
    monitoring = configure_monitoring(
        {"system_metrics": False, "max_series_per_metric": CAP, "set_global": False}
    )
    rng = random.Random(11)
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW", "M-SEARCH"]

    async def app(scope, receive, send):
        scope["path_template"] = scope["path"]
        status = scope["status"]
        if status == 0:
            raise ValueError("boom")
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"x" * (status % 7)})

    wrapped = monitoring.instrument(app)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    async def main():
        proc = psutil.Process()
        rss = [proc.memory_info().rss]
        for i in range(N):
            status = 0 if rng.random() < 0.01 else rng.randint(200, 599)
            scope = {"type": "http", "method": rng.choice(methods), "status": status,
                     "path": f"/{rng.getrandbits(64):x}", "root_path": "", "headers": []}
            try:
                await wrapped(scope, receive, send)
            except ValueError:
                pass
            if i % 10_000 == 9_999:
                monitoring.render_prometheus()
                gc.collect()
                rss.append(proc.memory_info().rss)
        return rss

    rss = asyncio.run(main())
    data = monitoring.collect()
    series = {}
    requests = 0
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                series[m.name] = len(m.data.data_points)
                if m.name == "http_requests_total":
                    requests = sum(p.value for p in m.data.data_points)
    monitoring.shutdown()
    print(json.dumps({"rss": rss, "series": series, "requests": requests,
                      "warnings": len(warnings)}))
    """
)


@pytest.mark.slow
def test_100000_random_label_sets_stay_within_the_cap_and_bounded_memory() -> None:
    """100,000 random paths, methods and statuses: every metric within the cap, RSS flat."""
    cap = 2000
    done = subprocess.run(
        [sys.executable, "-c", FLOOD, "100000", str(cap)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["requests"] == 100_000
    assert set(report["series"]) == {spec.name for spec in cat.HTTP_METRICS}
    assert all(n <= cap for n in report["series"].values()), report["series"]
    assert report["series"][cat.HTTP_REQUESTS.name] == cap
    assert report["warnings"] == 1
    rss = report["rss"]
    # rss[1] is taken after 10,000 requests, long after the cap (2,000 label sets) was reached.
    growth = max(rss[1:]) - rss[1]
    assert growth <= RSS_GROWTH_BOUND, f"RSS grew {growth / 2**20:.1f} MiB after the cap: {rss}"
    total = max(rss) - rss[0]
    assert total <= RSS_TOTAL_BOUND, f"RSS grew {total / 2**20:.1f} MiB in all: {rss}"


def flood_app_factory() -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        # A catch-all route whose template is the path itself: every request a new label set.
        path = scope["path"]
        scope["path_template"] = path
        status = int(path[2:5])
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


@requires_promtool
@pytest.mark.slow
def test_random_traffic_through_uvicorn_keeps_the_exposition_within_the_cap(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Real uvicorn, random paths, methods and statuses: /metrics stays within the cap and lints."""
    cap, n = 300, 4000
    rng = random.Random(3)
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"]
    requests = [
        (rng.choice(methods), f"/s{rng.randint(200, 599)}/{rng.getrandbits(48):x}", b"")
        for _ in range(n)
    ]
    monitoring = configure_monitoring(
        {"system_metrics": False, "max_series_per_metric": cap, "set_global": False}
    )
    try:
        with (
            caplog.at_level(logging.WARNING, logger="fluxstack_otel"),
            serve_asgi(monitoring.instrument(flood_app_factory())) as base,
        ):
            result = run_load(base, requests, connections=20, deadline=90)
            text = httpx.get(f"{base}/metrics", timeout=30, trust_env=False).text
    finally:
        monitoring.shutdown()
    assert sum(result.statuses.values()) == n
    families = {f.name: f for f in parse_text(text)}
    per_metric = Counter[str]()
    for spec in cat.HTTP_METRICS:
        family = families[spec.name.removesuffix("_total")]
        for s in family.samples:
            if s.name in (spec.name, spec.name + "_count"):
                per_metric[spec.name] += 1
    assert all(count <= cap for count in per_metric.values()), per_metric
    assert per_metric[cat.HTTP_REQUESTS.name] == cap
    total = sum(s.value for s in families["http_requests"].samples)
    assert total == n
    assert sum("cardinality cap" in r.getMessage() for r in caplog.records) == 1
    assert promtool_check_metrics(text) == []
