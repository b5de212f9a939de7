"""Exported rules under ``histograms: exponential``: PromQL that reads native or classic series."""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from fluxstack_otel import Monitoring, configure_monitoring
from fluxstack_otel._internal.config.model import load_config
from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.sinks.alerts.promql import rule_expression
from fluxstack_otel.alerts import compile_rules, rules_yaml
from servers import (
    PrometheusServer,
    promtool_check_rules,
    requires_prometheus,
    requires_promtool,
    serve_asgi,
)
from support.configs import NO_THRESHOLDS

DURATION = cat.HTTP_REQUEST_DURATION.name
LABELS = "method, route, status_code"
RULES = [
    {"name": "P50", "metric": "http_request_duration_seconds", "aggregation": "p50"},
    {"name": "P99Ms", "metric": "http_request_duration_ms", "aggregation": "p99"},
    {"name": "Mean", "metric": "http_request_duration_seconds", "aggregation": "mean"},
    {"name": "Top", "metric": "http_request_duration_seconds", "aggregation": "max_bucket"},
]


def _config(histograms: str = "exponential") -> dict[str, Any]:
    alerts = [{**r, "operator": ">", "value": 0, "severity": "info", "window": 60} for r in RULES]
    return {
        "histograms": histograms,
        "alerts": alerts,
        "thresholds": NO_THRESHOLDS,
        "alert_evaluation_interval": 1,
    }


def _expressions(histograms: str = "exponential") -> dict[str, str]:
    native = histograms == "exponential"
    rules = compile_rules(load_config(_config(histograms)))
    return {r.name: rule_expression(r, native=native) for r in rules}


def test_native_expressions_read_either_kind_of_series() -> None:
    """A quantile reads the native series first, mean and max_bucket the classic ones first."""
    span = "[60s]"
    native = f"rate({DURATION}{span})"
    assert _expressions() == {
        "P50": f"(histogram_quantile(0.5, {native}) or"
        f" histogram_quantile(0.5, rate({DURATION}_bucket{span}))) > 0",
        "P99Ms": f"((histogram_quantile(0.99, {native}) or"
        f" histogram_quantile(0.99, rate({DURATION}_bucket{span})))) * 1000 > 0",
        "Mean": f"(rate({DURATION}_sum{span}) / rate({DURATION}_count{span}) or"
        f" histogram_sum({native}) / histogram_count({native})) > 0",
        "Top": f"(histogram_quantile(1, rate({DURATION}_bucket{span})) or"
        f" histogram_quantile(1, {native})) > 0",
    }


def test_explicit_histograms_keep_the_classic_expressions() -> None:
    """Without exponential histograms the app exposes no native series: classic PromQL only."""
    expressions = _expressions("explicit")
    assert expressions["P50"] == f"histogram_quantile(0.5, rate({DURATION}_bucket[60s])) > 0"
    assert all("histogram_sum" not in e and " or " not in e for e in expressions.values())


def test_the_built_in_threshold_sums_the_native_series_per_target() -> None:
    """HighResponseTime sums away the metric's labels on both sides of the or."""
    config = load_config({"histograms": "exponential"})
    (slow,) = [r for r in compile_rules(config) if r.name == "HighResponseTime"]
    assert rule_expression(slow, native=True) == (
        f"((histogram_quantile(0.95, sum without ({LABELS}) (rate({DURATION}[60s]))) or"
        f" histogram_quantile(0.95, sum without ({LABELS}) (rate({DURATION}_bucket[60s]))))) * 1000"
        " > 1000"
    )
    assert "or histogram_quantile" in rules_yaml(config)


@requires_promtool
def test_the_native_rules_file_passes_promtool(tmp_path: Path) -> None:
    """promtool (2.42) parses every native form: or, histogram_sum, histogram_count."""
    path = tmp_path / "rules.yml"
    path.write_text(rules_yaml(load_config(_config())))
    assert "SUCCESS" in promtool_check_rules(path)


# --- a real Prometheus of each kind evaluates the exported rules ---------------------------


@pytest.fixture
def monitor() -> Iterator[Monitoring]:
    m = configure_monitoring(
        {"set_global": False, "system_metrics": False, "histograms": "exponential"}
    )
    yield m
    m.shutdown()


def _record(m: Monitoring, durations: list[float]) -> None:
    recorder = m._p.recorder
    assert recorder is not None
    now = time.perf_counter()
    for d in durations:
        recorder.record("GET", "/fast", 200, None, d, 0, 10, now)


def _firing(prom: PrometheusServer) -> dict[str, float]:
    return {
        a["labels"]["alertname"]: float(a["value"])
        for a in prom.alerts()
        if a.get("state") == "firing"
    }


@pytest.mark.slow
@requires_prometheus
def test_a_native_only_prometheus_and_a_classic_one_both_fire_the_exported_rules(
    monitor: Monitoring, prometheus: Callable[..., PrometheusServer], tmp_path: Path
) -> None:
    """Native-only ingestion has no _bucket series, yet each rule fires with the right value.

    1,000 requests at 0.5 ms and 10 at 200 ms (after one baseline request): the native p50 and
    p99 are within the scale-4 error 2 ** (1/16) - 1 (4.4 %) of 0.5 ms; the classic ones are
    interpolated inside the (0.25 ms, 0.5 ms] bucket; the mean is the true one; max_bucket is
    the classic bound above 200 ms where there are classic series, the top native bucket's upper
    bound (within 4.4 % above 200 ms) where there are not.
    """
    rules = tmp_path / "rules.yml"
    rules.write_text(rules_yaml(load_config(_config())))

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi")

    _record(monitor, [0.0005])
    with serve_asgi(monitor.instrument(Starlette(routes=[Route("/", hello)]))) as base:
        target = [base.removeprefix("http://")]
        native = prometheus(target, features=["native-histograms"], rule_files=[rules])
        classic = prometheus(target, rule_files=[rules])
        native.wait_for(f"histogram_count({DURATION}) == 1")
        classic.wait_for(f"{DURATION}_count == 1")
        _record(monitor, [0.0005] * 999 + [0.2] * 10)
        native.wait_for(f"histogram_count({DURATION}) == 1010")
        classic.wait_for(f"{DURATION}_count == 1010")
        # What the bare classic rule would have read: nothing, on the native-only server.
        assert native.query(f"rate({DURATION}_bucket[60s])") == []
        firing = f'count(ALERTS{{alertstate="firing"}}) == {len(RULES)}'
        native.wait_for(firing, timeout=30)
        classic.wait_for(firing, timeout=30)
        from_native, from_classic = _firing(native), _firing(classic)
        health = {r["health"] for g in native.rules() + classic.rules() for r in g["rules"]}
    error = 2 ** (1 / 16) - 1
    assert health == {"ok"}
    assert math.isclose(from_native["P50"], 0.0005, rel_tol=error)
    assert math.isclose(from_native["P99Ms"], 0.5, rel_tol=error)
    assert 0.00025 < from_classic["P50"] <= 0.0005
    assert 0.25 < from_classic["P99Ms"] <= 0.5
    mean = (999 * 0.0005 + 10 * 0.2) / 1009
    assert math.isclose(from_native["Mean"], mean, rel_tol=1e-6)
    # rate() extrapolates _sum and _count apart (each toward its own zero), hence 0.1 %.
    assert math.isclose(from_classic["Mean"], mean, rel_tol=1e-3)
    bounds = cat.DEFAULT_DURATION_BUCKETS
    assert from_classic["Top"] == bounds[bisect.bisect_left(bounds, 0.2)]
    assert 0.2 <= from_native["Top"] <= 0.2 * (1 + error)
