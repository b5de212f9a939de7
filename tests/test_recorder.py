"""The hot-path recorder: exact counts, bucket placement, projections, eviction, cardinality cap."""

from __future__ import annotations

import logging
import threading

import pytest
from opentelemetry.sdk.metrics.export import Histogram

from fluxstack_otel._internal.http.recorder import OVERFLOW, HttpRecorder
from fluxstack_otel._internal.metrics import catalog as cat
from support.clocks import FakeClock
from support.metricdata import by_name, points


def test_projects_one_exchange_onto_the_six_metrics() -> None:
    """One errored exchange appears in all six metrics with the right label sets and values."""
    rec = HttpRecorder(duration_buckets=(0.1, 1.0), size_buckets=(10.0, 100.0), clock=lambda: 0.0)
    rec.record("GET", "/a/{id}", 500, "RuntimeError", 0.5, 20, 150, 0.0)
    m = by_name(rec.to_metrics())
    assert set(m) == {spec.name for spec in cat.HTTP_METRICS}
    mr = frozenset({("method", "GET"), ("route", "/a/{id}")})
    mrs = mr | {("status_code", "500")}
    assert points(m["http_requests_total"])[mr].value == 1
    assert points(m["http_responses_total"])[mrs].value == 1
    err = points(m["http_errors_total"])[mrs | {("error_type", "RuntimeError")}]
    assert err.value == 1
    dur = points(m["http_request_duration_seconds"])[mrs]
    assert dur.bucket_counts == [0, 1, 0]
    assert dur.sum == pytest.approx(0.5)
    req = points(m["http_request_size_bytes"])[mr]
    assert req.bucket_counts == [0, 1, 0]
    assert req.sum == 20
    resp = points(m["http_response_size_bytes"])[mrs]
    assert resp.bucket_counts == [0, 0, 1]
    assert resp.sum == 150


def test_bucket_bounds_are_inclusive_like_prometheus_le() -> None:
    """A value equal to a bound lands in that bound's bucket (Prometheus ``le``)."""
    rec = HttpRecorder(duration_buckets=(0.1, 1.0), size_buckets=(10.0,), clock=lambda: 0.0)
    rec.record("GET", "/", 200, None, 0.1, 10, 10, 0.0)
    dur = points(by_name(rec.to_metrics())["http_request_duration_seconds"])
    (p,) = dur.values()
    assert p.bucket_counts == [1, 0, 0]


@pytest.mark.parametrize("bounds", [(10.0, 100.0), (10, 100), (9.5, 100.0)])
def test_size_buckets_whole_or_not_count_alike(bounds: tuple[float, ...]) -> None:
    """Whole-number size bounds are compared as ints, others as floats: same buckets, float
    bounds in the exported points either way."""
    rec = HttpRecorder(duration_buckets=(1.0,), size_buckets=bounds, clock=lambda: 0.0)
    for size in (0, 9, 10, 11, 100, 101):
        rec.record("POST", "/", 200, None, 0.1, size, size, 0.0)
    (req,) = points(by_name(rec.to_metrics())["http_request_size_bytes"]).values()
    (resp,) = points(by_name(rec.to_metrics())["http_response_size_bytes"]).values()
    low = 2 if bounds[0] == 10 else 1  # 9 and 10 fit under 10; only 9 under 9.5
    assert req.bucket_counts == resp.bucket_counts == [1 + low, 4 - low, 1]
    assert list(req.explicit_bounds) == [float(b) for b in bounds]
    assert all(type(b) is float for b in resp.explicit_bounds)
    assert (req.sum, resp.sum) == (231, 231)


def test_request_without_response_counts_as_request_only() -> None:
    """A request that ended without a response is in requests_total but not responses_total."""
    rec = HttpRecorder(clock=lambda: 0.0)
    rec.record("POST", "/up", None, None, 0.2, 100, 0, 0.0)
    m = by_name(rec.to_metrics())
    assert [p.value for p in m["http_requests_total"].data.data_points] == [1]
    assert list(m["http_responses_total"].data.data_points) == []
    assert list(m["http_response_size_bytes"].data.data_points) == []
    (dur,) = m["http_request_duration_seconds"].data.data_points
    assert "status_code" not in dur.attributes


def test_requests_total_sums_over_statuses() -> None:
    """http_requests_total is per method and route, whatever the status."""
    rec = HttpRecorder(clock=lambda: 0.0)
    for status in (200, 200, 404, 500):
        rec.record("GET", "/x", status, None, 0.01, 0, 1, 0.0)
    (p,) = by_name(rec.to_metrics())["http_requests_total"].data.data_points
    assert p.value == 4


def test_concurrent_threads_lose_no_counts() -> None:
    """Eight threads recording at once produce exact totals."""
    rec = HttpRecorder(clock=lambda: 0.0)

    def work() -> None:
        for _ in range(5000):
            rec.record("GET", "/t", 200, None, 0.001, 1, 1, 0.0)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    m = by_name(rec.to_metrics())
    (p,) = m["http_requests_total"].data.data_points
    assert p.value == 40_000
    (h,) = m["http_request_duration_seconds"].data.data_points
    assert h.count == 40_000
    assert sum(h.bucket_counts) == 40_000


def test_idle_series_are_evicted_after_the_retention_period() -> None:
    """A series with no request for retention_period seconds disappears; a fresh one restarts."""
    clock = FakeClock()
    wall = iter(range(1, 100))
    rec = HttpRecorder(retention_period=60.0, clock=clock, wall_clock_ns=lambda: next(wall))
    rec.record("GET", "/old", 200, None, 0.01, 0, 0, clock.now)
    clock.now += 30
    rec.record("GET", "/live", 200, None, 0.01, 0, 0, clock.now)
    clock.now += 31
    routes = {p.attributes["route"] for p in rec.to_metrics()[0].data.data_points}
    assert routes == {"/live"}
    rec.record("GET", "/old", 200, None, 0.01, 0, 0, clock.now)
    (old,) = [p for p in rec.to_metrics()[0].data.data_points if p.attributes["route"] == "/old"]
    assert old.value == 1


def test_cardinality_cap_folds_new_series_into_overflow(caplog: pytest.LogCaptureFixture) -> None:
    """Beyond the cap new label sets fold into one overflow series within the cap, warned once."""
    rec = HttpRecorder(max_series=10, clock=lambda: 0.0)
    with caplog.at_level(logging.WARNING, logger="fluxstack_otel"):
        for i in range(100):
            rec.record("GET", f"/r{i}", 200, None, 0.01, 0, 0, 0.0)
    assert len(rec) == 10
    pts = rec.to_metrics()[0].data.data_points
    total = sum(p.value for p in pts)
    assert total == 100
    overflow = [p for p in pts if p.attributes["route"] == OVERFLOW]
    assert overflow[0].value == 91
    assert sum("cardinality cap" in r.getMessage() for r in caplog.records) == 1


def test_projection_of_named_metrics_only() -> None:
    """to_metrics(names) builds just the named metrics, with the points of the full projection."""
    rec = HttpRecorder(clock=lambda: 0.0, wall_clock_ns=lambda: 5)
    rec.record("GET", "/a", 200, None, 0.02, 0, 10, 0.0)
    rec.record("POST", "/b", 503, "503", 0.2, 30, 5, 0.0)
    full = by_name(rec.to_metrics())
    wanted = ["http_errors_total", "http_request_duration_seconds", "not_a_metric"]
    some = by_name(rec.to_metrics(wanted))
    assert set(some) == {"http_errors_total", "http_request_duration_seconds"}
    for name, metric in some.items():
        assert points(metric) == points(full[name])


def test_histogram_sums_are_floats() -> None:
    """Every histogram sum is a float, as HistogramDataPoint declares, byte sizes included."""
    rec = HttpRecorder(clock=lambda: 0.0)
    rec.record("POST", "/a", 200, None, 0.02, 512, 100, 0.0)
    rec.record("POST", "/a", 201, None, 0.02, 512, 100, 0.0)  # merged into one request point
    for metric in rec.to_metrics():
        if isinstance(metric.data, Histogram):
            for point in metric.data.data_points:
                assert type(point.sum) is float, (metric.name, point.sum)
