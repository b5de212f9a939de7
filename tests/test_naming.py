"""Naming profiles (fluxstack, semconv) and the OpenTelemetry -> Prometheus name rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    Metric,
    MetricsData,
    Sum,
)
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from fluxstack_otel import configure_monitoring
from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.metrics.custom import _RESERVED_PROMETHEUS
from fluxstack_otel._internal.metrics.naming import (
    exposition_name,
    exposition_names,
    prometheus_base,
)
from servers import promtool_check_metrics, requires_promtool, serve_asgi, wait_until
from support.exposition import samples


def _sum(monotonic: bool) -> Sum:
    return Sum(
        data_points=[],
        aggregation_temporality=AggregationTemporality.CUMULATIVE,
        is_monotonic=monotonic,
    )


COUNTER, UPDOWN = _sum(True), _sum(False)
GAUGE = Gauge(data_points=[])
HISTOGRAM = Histogram(data_points=[], aggregation_temporality=AggregationTemporality.CUMULATIVE)


@pytest.mark.parametrize(
    ("name", "unit", "data", "expected"),
    [
        # The FluxStack built-ins are Prometheus names already: verbatim.
        ("http_requests_total", "1", COUNTER, "http_requests"),
        ("system_load_average_1m", "1", GAUGE, "system_load_average_1m"),
        ("process_cpu_user_seconds_total", "s", COUNTER, "process_cpu_user_seconds"),
        # Everything else: sanitised, unit suffix unless present, _total added by the renderer.
        ("http.server.request.duration", "s", HISTOGRAM, "http_server_request_duration_seconds"),
        ("http.server.request.body.size", "By", HISTOGRAM, "http_server_request_body_size_bytes"),
        ("process.cpu.time", "s", COUNTER, "process_cpu_time_seconds"),
        ("http.server.request.count", "{request}", COUNTER, "http_server_request_count"),
        ("queue.wait_seconds", "s", HISTOGRAM, "queue_wait_seconds"),
        ("jobs_total", "", COUNTER, "jobs"),
        ("jobs.total.time", "ms", COUNTER, "jobs_total_time_milliseconds"),
        ("cpu.utilization", "1", GAUGE, "cpu_utilization_ratio"),
        ("cpu.utilization", "1", UPDOWN, "cpu_utilization"),
        ("orders", "1", COUNTER, "orders"),
        ("net.throughput", "By/s", GAUGE, "net_throughput_bytes_per_second"),
        ("rate", "{packet}/s", GAUGE, "rate_per_second"),
        ("odd-name/with:colon", "", GAUGE, "odd_name_with:colon"),
        ("bananas", "banana", GAUGE, "bananas_banana"),
    ],
)
def test_prometheus_names_follow_the_opentelemetry_compatibility_rules(
    name: str, unit: str, data: Any, expected: str
) -> None:
    """Units become suffixes (once), braces drop, 1 is a ratio on gauges, counters lose _total."""
    assert exposition_name(name, unit, data) == expected


DOCS = Path(__file__).resolve().parent.parent / "docs" / "naming.md"


def semconv_table() -> list[str]:
    rows = []
    for spec in cat.BUILTIN_METRICS:
        naming = cat.SEMCONV.naming(spec)
        base = prometheus_base(
            naming.name, naming.unit, spec.kind, gauge=spec.kind is cat.Kind.GAUGE
        )
        exposed = base + "_total" if spec.kind is cat.Kind.COUNTER else base
        labels = [f"`{cat.SEMCONV.labels[key]}`" for key in spec.labels]
        constant = [f'`{key}="{value}"`' for key, value in naming.attributes]
        attributes = ", ".join(labels + constant) or "none"
        rows.append(
            f"| `{spec.name}` | `{naming.name}` | `{naming.unit}` | `{exposed}` | {attributes} |"
            f" {'yes' if naming.convention else 'no'} |"
        )
    return rows


def test_the_docs_table_matches_the_catalogue() -> None:
    """docs/naming.md lists the semconv profile exactly as the catalogue defines it."""
    text = DOCS.read_text()
    start = text.index("<!-- semconv table")
    end = text.index("<!-- end of semconv table -->")
    rows = [line for line in text[start:end].splitlines() if line.startswith("| `")]
    assert rows == semconv_table()


def test_the_catalogue_names_every_builtin_in_every_profile() -> None:
    """Both profiles present the twelve built-ins, the opt-in ones and the four labels, distinctly."""
    assert set(cat.PROFILES) == {"fluxstack", "semconv"}
    for profile in cat.PROFILES.values():
        assert set(profile.metrics) == set(cat.METRICS_BY_NAME)
        assert set(profile.labels) == {
            cat.LABEL_METHOD,
            cat.LABEL_ROUTE,
            cat.LABEL_STATUS_CODE,
            cat.LABEL_ERROR_TYPE,
        }
        assert len({n.name for n in profile.metrics.values()}) == len(cat.BUILTIN_METRICS) + len(
            cat.OPTIONAL_METRICS
        )
    assert cat.FLUXSTACK.identity
    assert not cat.SEMCONV.identity
    # The Prometheus names of the two profiles never meet.
    exposed = []
    for profile in cat.PROFILES.values():
        names: set[str] = set()
        for spec in cat.BUILTIN_METRICS:
            naming = profile.naming(spec)
            gauge = spec.kind is cat.Kind.GAUGE
            base = prometheus_base(naming.name, naming.unit, spec.kind, gauge=gauge)
            names |= exposition_names(base, spec.kind)
        exposed.append(names)
    assert not exposed[0] & exposed[1]
    assert exposed[0] | exposed[1] == set(_RESERVED_PROMETHEUS)


async def item(request: Request) -> Response:
    return PlainTextResponse("x" * 10)


async def boom(request: Request) -> Response:
    raise RuntimeError("unhandled")


def app() -> Starlette:
    return Starlette(routes=[Route("/items/{item_id}", item), Route("/boom", boom)])


def traffic(base: str) -> None:
    with httpx.Client(base_url=base, timeout=10, trust_env=False) as client:
        for i in range(3):
            assert client.get(f"/items/{i}").status_code == 200
        assert client.post("/items/9", content=b"abc").status_code == 405
    assert httpx.get(f"{base}/boom", timeout=10, trust_env=False).status_code == 500


@pytest.fixture(params=["fluxstack", "semconv"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    m = configure_monitoring(
        {
            "naming": request.param,
            "set_global": False,
            "exporters": [{"type": "prometheus"}, {"type": "json", "endpoint": "/metrics.json"}],
        }
    )
    m.histogram("shop.checkout.duration", unit="s", description="Checkout.").record(0.2)
    m.observable_gauge("shop.queue.depth", [lambda o: [Observation(3)]], description="Queue.")
    try:
        with serve_asgi(m.instrument(app())) as base:
            traffic(base)
            yield request.param, base
    finally:
        m.shutdown()


@pytest.mark.slow
@requires_promtool
def test_both_profiles_pass_promtool_and_the_openmetrics_parser(served: tuple[str, str]) -> None:
    """Each profile's exposition, built-ins and custom metrics, lints clean and parses as OM."""
    profile, base = served
    text = httpx.get(f"{base}/metrics", timeout=10, trust_env=False).text
    assert promtool_check_metrics(text) == []
    om = httpx.get(
        f"{base}/metrics",
        headers={"accept": "application/openmetrics-text"},
        timeout=10,
        trust_env=False,
    ).text
    families = {f.name for f in parse_om(om)}
    duration = (
        "http_request_duration_seconds"
        if profile == "fluxstack"
        else "http_server_request_duration_seconds"
    )
    assert {duration, "shop_checkout_duration_seconds", "shop_queue_depth"} <= families


@pytest.mark.slow
def test_semconv_names_units_and_attributes() -> None:
    """semconv: the conventions' names, units and attribute keys, status codes as integers."""
    m = configure_monitoring(
        {
            "naming": "semconv",
            "set_global": False,
            "exporters": [{"type": "prometheus"}, {"type": "json", "endpoint": "/metrics.json"}],
        }
    )
    try:
        with serve_asgi(m.instrument(app())) as base:
            traffic(base)
            text = httpx.get(f"{base}/metrics", timeout=10, trust_env=False).text
            document = httpx.get(f"{base}/metrics.json", timeout=10, trust_env=False).json()
        data = m.collect()
    finally:
        m.shutdown()
    metrics = _metrics(data)
    optional = {cat.SEMCONV.naming(spec).name for spec in cat.OPTIONAL_METRICS}
    semconv = {n.name for n in cat.SEMCONV.metrics.values()} - optional
    assert {name for name in metrics if name in cat.METRICS_BY_NAME} == set()
    http = {n for n in semconv if n.startswith("http.")}
    assert http <= set(metrics)
    duration = metrics["http.server.request.duration"]
    assert duration.unit == "s"
    (errored,) = [
        p.attributes
        for p in metrics["http.server.error.count"].data.data_points  # type: ignore[union-attr]
    ]
    assert dict(errored) == {
        "http.request.method": "GET",
        "http.route": "/boom",
        "http.response.status_code": 500,
        "error.type": "RuntimeError",
    }
    assert metrics["http.server.request.body.size"].unit == "By"
    cpu = metrics["process.cpu.time"]
    assert [dict(p.attributes) for p in cpu.data.data_points] == [{"cpu.mode": "user"}]  # type: ignore[union-attr]
    assert metrics["system.memory.limit"].unit == "By"
    # Prometheus: dotted names with their unit suffix, attributes with underscores.
    # As OpenTelemetry's own Prometheus exporter does under semconv: scope labels and target_info.
    assert 'otel_scope_name="fluxstack_otel.http"' in text
    assert "target_info{" in text
    got = {
        (name, frozenset((k, v) for k, v in labels if not k.startswith("otel_scope"))): value
        for (name, labels), value in samples(text).items()
    }
    route = {("http_request_method", "GET"), ("http_route", "/items/{item_id}")}
    assert got[("http_server_request_count_total", frozenset(route))] == 3
    ok = frozenset(route | {("http_response_status_code", "200")})
    assert got[("http_server_request_duration_seconds_count", ok)] == 3
    assert got[("process_cpu_time_seconds_total", frozenset({("cpu_mode", "user")}))] > 0
    assert "process_memory_usage_bytes" in text
    assert "http_requests_total" not in text
    # The JSON document speaks the same names.
    names = {entry["name"] for entry in document["metrics"]}
    assert semconv <= names


def _metrics(data: MetricsData) -> dict[str, Metric]:
    return {
        m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }


def test_alert_rules_keep_reading_the_builtin_names_under_semconv() -> None:
    """Alerts name FluxStack metrics whatever the profile; semconv exposition does not blind them."""
    m = configure_monitoring(
        {
            "naming": "semconv",
            "set_global": False,
            "system_metrics": False,
            "alert_evaluation_interval": 0.05,
            "alerts": [
                {
                    "name": "AnyTraffic",
                    "metric": "http_requests_total",
                    "operator": ">",
                    "value": 0,
                    "severity": "info",
                    "aggregation": "value",
                }
            ],
        }
    )
    try:
        with serve_asgi(m.instrument(app())) as base:
            traffic(base)
            firing = wait_until(
                lambda: [a for a in m.alerts() if a.name == "AnyTraffic" and a.state == "firing"],
                timeout=10,
                message="the AnyTraffic alert to fire",
            )
    finally:
        m.shutdown()
    assert firing
