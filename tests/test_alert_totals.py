"""Rules over all series read the recorder's running totals, not a snapshot of every series.

The totals (``HttpRecorder.totals``) must be the sums of the series' points, keep counting what
an eviction removes, and start again at a reset; the built-in threshold rules must fire and
resolve on them exactly as they do on every series, without taking a snapshot.
"""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import Histogram, Metric, Sum
from opentelemetry.sdk.resources import Resource

from fluxstack_otel import load_config
from fluxstack_otel._internal.http.recorder import HttpRecorder
from fluxstack_otel._internal.metrics.stream import MetricStream
from fluxstack_otel.alerts import AlertProcessor, compile_rules
from support.clocks import FakeClock
from support.configs import NO_THRESHOLDS

NOW = 1_700_000_000.0
SIX = (
    "http_requests_total",
    "http_responses_total",
    "http_errors_total",
    "http_request_duration_seconds",
    "http_request_size_bytes",
    "http_response_size_bytes",
)


def _traffic(recorder: HttpRecorder, now: float, scale: int = 1) -> None:
    """Successes, server errors, exchanges that never answered, on several routes."""
    for i in range(20 * scale):
        recorder.record("GET", f"/r{i % 7}", 200, None, 0.003 * (i % 9), i * 11, 40 + i, now)
    for i in range(6 * scale):
        recorder.record("POST", "/pay", 500, "500", 0.4 + 0.01 * i, 1200, 3, now)
    for _ in range(2 * scale):
        recorder.record("GET", "/hang", None, "TimeoutError", 2.5, 0, 0, now)


def _summed(metric: Metric) -> tuple[Any, ...]:
    """A metric's points added up: the value, or (count, buckets, rounded sum)."""
    points = list(metric.data.data_points)
    if isinstance(metric.data, Sum):
        return (sum(p.value for p in points),)
    assert isinstance(metric.data, Histogram)
    buckets = [sum(column) for column in zip(*(p.bucket_counts for p in points), strict=True)]
    return sum(p.count for p in points), buckets, round(sum(p.sum for p in points), 6)


def _by_name(metrics: list[Metric]) -> dict[str, tuple[Any, ...]]:
    return {m.name: _summed(m) for m in metrics}


@pytest.mark.parametrize("cap", [2000, 4])
def test_the_totals_are_the_sums_of_every_series(cap: int) -> None:
    """Every one of the six metrics, with and without overflow series past the cap."""
    recorder = HttpRecorder(duration_buckets=(0.01, 0.1, 1.0), max_series=cap, clock=lambda: 0.0)
    _traffic(recorder, 0.0, scale=20)  # more than a drain's batch: several folds
    totals = recorder.totals(SIX)
    assert [m.name for m in totals] == list(SIX)
    assert _by_name(totals) == _by_name(recorder.to_metrics())
    assert _by_name(totals)["http_requests_total"] == (560,)
    assert _by_name(totals)["http_errors_total"] == (160,)


def test_the_totals_leave_out_an_exponential_histogram_and_add_up_the_others() -> None:
    """With a histogram kept as exponential, its rules read the series; the rest are totals."""
    recorder = HttpRecorder(
        exponential={"http_request_duration_seconds": (160, 20)}, clock=lambda: 0.0
    )
    _traffic(recorder, 0.0, scale=3)
    totals = recorder.totals(SIX)
    assert "http_request_duration_seconds" not in {m.name for m in totals}
    full = _by_name(recorder.to_metrics())
    assert _by_name(totals) == {name: full[name] for name in _by_name(totals)}
    assert len(totals) == 5


def test_the_totals_keep_what_an_eviction_removes_and_start_again_at_a_reset() -> None:
    """Eviction drops series, not counts already made; a reset (a forked child) starts at zero."""
    clock = FakeClock(100.0)
    recorder = HttpRecorder(retention_period=10.0, clock=clock)
    recorder.record("GET", "/old", 200, None, 0.01, 0, 5, clock())
    clock.advance(11.0)
    recorder.record("GET", "/new", 200, None, 0.01, 0, 5, clock())
    assert _by_name(recorder.to_metrics(["http_requests_total"])) == {"http_requests_total": (1,)}
    (requests,) = recorder.totals(["http_requests_total"])
    assert _summed(requests) == (2,)
    started = requests.data.data_points[0].start_time_unix_nano
    recorder.reset()
    (empty,) = recorder.totals(["http_requests_total"])
    assert list(empty.data.data_points) == []  # nothing recorded since
    recorder.record("GET", "/new", 200, None, 0.01, 0, 5, clock())
    (after,) = recorder.totals(["http_requests_total"])
    assert _summed(after) == (1,)
    assert after.data.data_points[0].start_time_unix_nano >= started


class Twins:
    """Two processors with the same rules over one recorder: one reads the totals, one every
    series; and how often the recorder was snapshot while the totals one evaluated."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.clock = FakeClock(NOW)
        self.recorder = HttpRecorder(
            duration_buckets=(0.05, 0.1, 0.5, 1.0),
            clock=self.clock,
            wall_clock_ns=lambda: int(self.clock.now * 1e9),
        )
        stream = MetricStream((), self.recorder.to_metrics, Resource.create({}))
        rules = compile_rules(load_config(config))
        self.with_totals = AlertProcessor(
            rules, stream.collect, interval=30, clock=self.clock, totals=self.recorder.totals
        )
        self.every_series = AlertProcessor(rules, stream.collect, interval=30, clock=self.clock)
        self.snapshots = 0
        inner = self.recorder.snapshot

        def counting() -> Any:
            self.snapshots += 1
            return inner()

        self.recorder.snapshot = counting  # type: ignore[method-assign]

    def evaluate(self) -> list[tuple[str, str, float]]:
        """Both evaluate now; their notifications must be the same."""
        before = self.snapshots
        mine = self.with_totals.evaluate_now()
        self.read_series = self.snapshots - before
        theirs = self.every_series.evaluate_now()
        assert mine == theirs
        assert self.with_totals.alerts() == self.every_series.alerts()
        return [(a.name, a.state, round(a.value, 9)) for a in mine]


@pytest.fixture
def thresholds() -> Twins:
    return Twins(
        {
            "thresholds": {
                "response_time": 0.3,
                "error_rate": 0.1,
                "memory_usage": None,
                "cpu_usage": None,
            }
        }
    )


def test_the_threshold_rules_fire_and_resolve_as_on_every_series(thresholds: Twins) -> None:
    """Latency and error rate go up and down again; both processors say the same at every step,
    and the totals one never snapshots the series."""
    twins, recorder = thresholds, thresholds.recorder
    seen: list[tuple[str, str, float]] = []
    phases = [
        [("/a", 200, None, 0.02)] * 50,
        [("/a", 200, None, 0.02)] * 10 + [("/slow", 200, None, 0.8)] * 40,
        [("/a", 500, "500", 0.02)] * 30 + [("/a", 200, None, 0.02)] * 20,
        [("/a", 200, None, 0.02)] * 200,
        [],
        [],
    ]
    seen += twins.evaluate()
    for phase in phases:
        twins.clock.advance(30.0)
        for route, status, error, seconds in phase:
            recorder.record("GET", route, status, error, seconds, 0, 10, twins.clock.now)
        twins.clock.advance(30.0)
        seen += twins.evaluate()
        assert twins.read_series == 0
    names = {(name, state) for name, state, _ in seen}
    assert names >= {
        ("HighResponseTime", "firing"),
        ("HighResponseTime", "resolved"),
        ("HighErrorRate", "firing"),
        ("HighErrorRate", "resolved"),
    }


def test_a_rule_by_label_still_reads_its_series_beside_the_totals() -> None:
    """A configured rule on one route reads the duration series; the error rate, the totals."""
    twins = Twins(
        {
            "alerts": [
                {
                    "metric": "http_request_duration_ms",
                    "operator": ">",
                    "value": 200,
                    "name": "SlowRoute",
                    "severity": "critical",
                    "labels": {"route": "/slow"},
                    "window": "60s",
                }
            ],
            "thresholds": {**NO_THRESHOLDS, "error_rate": 0.1},
        }
    )
    twins.evaluate()
    twins.clock.advance(30.0)
    for _ in range(10):
        twins.recorder.record("GET", "/slow", 500, "500", 0.4, 0, 3, twins.clock.now)
        twins.recorder.record("GET", "/fast", 200, None, 0.01, 0, 3, twins.clock.now)
    fired = twins.evaluate()
    assert {name for name, state, _ in fired if state == "firing"} == {"SlowRoute", "HighErrorRate"}
    assert twins.read_series == 1  # the duration series, for the rule by label
