"""OpenTelemetry Views shape the built-ins in every sink: the profiles are view sets, users add theirs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import Histogram as SdkHistogram
from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.metrics.view import (
    DropAggregation,
    ExplicitBucketHistogramAggregation,
    LastValueAggregation,
    View,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from fluxstack_otel import ConfigError, Monitoring, configure_monitoring
from fluxstack_otel._internal.metrics import catalog as cat
from receivers import HttpReceiver, metrics_of
from servers import promtool_check_metrics, requires_promtool, serve_asgi, wait_until


def _app() -> Starlette:
    async def item(request: Request) -> PlainTextResponse:
        return PlainTextResponse("x" * int(request.path_params["n"]))

    async def boom(request: Request) -> PlainTextResponse:
        return PlainTextResponse("no", status_code=503)

    return Starlette(routes=[Route("/items/{n:int}", item), Route("/boom", boom)])


def _traffic(base: str, m: Monitoring) -> None:
    """Four requests, then wait until the recorder has counted them (a request is recorded
    when its last byte has been sent, which may be after the client read the response)."""
    with httpx.Client(base_url=base, trust_env=False, timeout=10) as client:
        for n in (1, 20, 300):
            assert client.get(f"/items/{n}").status_code == 200
        assert client.get("/boom").status_code == 503
    wait_until(lambda: _requests(m._p.stream.collect()) == 4, timeout=10)


def _requests(data: MetricsData) -> float:
    return sum(
        p.value
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == cat.HTTP_REQUESTS.name
        for p in metric.data.data_points  # type: ignore[union-attr]
    )


@pytest.fixture
def monitor() -> Iterator[Any]:
    made: list[Monitoring] = []

    def make(config: dict[str, Any] | None = None, **kwargs: Any) -> Monitoring:
        base = {"set_global": False, "system_metrics": False}
        m = configure_monitoring({**base, **(config or {})}, **kwargs)
        made.append(m)
        return m

    yield make
    for m in made:
        m.shutdown()


def _families(text: str) -> dict[str, Any]:
    return {f.name: f for f in parse_text(text)}


def _names(data: MetricsData) -> set[str]:
    return {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}


def test_the_naming_profiles_are_view_sets() -> None:
    """fluxstack needs no view; semconv is one real View per built-in, naming it as the table says."""
    plain = configure_monitoring({"set_global": False})
    semconv = configure_monitoring({"set_global": False, "naming": "semconv"})
    try:
        assert plain.views == ()
        assert all(isinstance(v, View) for v in semconv.views)
        assert len(semconv.views) == len(cat.BUILTIN_METRICS) + len(cat.OPTIONAL_METRICS)
        # Applying the profile's views to the live data gives exactly the semconv names.
        expected = {cat.SEMCONV.naming(m).name for m in cat.BUILTIN_METRICS}
        got = _names(semconv.collect()) & (expected | set(cat.METRICS_BY_NAME))
        lag = cat.SEMCONV.naming(cat.EVENT_LOOP_LAG).name  # reported once an event loop runs
        assert got | {lag} == expected
    finally:
        plain.shutdown()
        semconv.shutdown()


def test_a_view_renames_and_drops_builtins_in_every_sink(monitor: Any, tmp_path: Path) -> None:
    """Rename, description and DropAggregation reach /metrics, JSON, the file, OTLP and collect()."""
    views = [
        View(
            instrument_name="http_request_duration_seconds",
            name="http.latency",
            description="Time to the last byte",
        ),
        View(instrument_name="http_request_size_bytes", aggregation=DropAggregation()),
    ]
    file = tmp_path / "metrics.json"
    with HttpReceiver() as receiver:
        m = monitor(
            {
                "exporters": [
                    {"type": "prometheus"},
                    {"type": "json", "endpoint": "/metrics.json"},
                    {"type": "file", "file_path": str(file), "format": "json", "interval": 0.2},
                    {"type": "otlp", "endpoint": f"{receiver.base_url}/v1/metrics",
                     "protocol": "http/protobuf", "interval": 0.2},
                ]
            },
            views=views,
        )  # fmt: skip
        with serve_asgi(m.instrument(_app())) as base:
            _traffic(base, m)
            text = httpx.get(f"{base}/metrics", timeout=10, trust_env=False).text
            document = httpx.get(f"{base}/metrics.json", timeout=10, trust_env=False).json()
        receiver.wait_for(lambda r: any("http.latency" in metrics_of(q) for q in r.requests))
        wait_until(lambda: file.exists() and "http.latency" in file.read_text(), timeout=10)
        otlp = next(metrics_of(q) for q in receiver.requests if "http.latency" in metrics_of(q))
        collected = _names(m.collect())
        m.shutdown()  # while the receiver still answers the final export
    families = _families(text)
    assert "http_latency_seconds" in families
    assert families["http_latency_seconds"].documentation == "Time to the last byte"
    assert "http_request_duration_seconds" not in families
    assert "http_request_size_bytes" not in families
    assert "http_response_size_bytes" in families  # only what the views select changes
    latency = families["http_latency_seconds"]
    counts = [s.value for s in latency.samples if s.name.endswith("_count")]
    assert sum(counts) == 4
    for names in (
        {e["name"] for e in document["metrics"]},
        {e["name"] for e in json.loads(file.read_text())["metrics"]},
        set(otlp),
        collected,
    ):
        assert "http.latency" in names
        assert "http_request_size_bytes" not in names
        assert "http_request_duration_seconds" not in names
    assert otlp["http.latency"].description == "Time to the last byte"


def test_attribute_keys_merge_the_points_that_then_agree(monitor: Any) -> None:
    """attribute_keys={'method'} leaves one point per method, carrying the sum of every route."""
    m = monitor(views=[View(instrument_name="http_requests_total", attribute_keys={"method"})])
    with serve_asgi(m.instrument(_app())) as base:
        _traffic(base, m)
        text = m.render_prometheus().decode()
    samples = [s for s in _families(text)["http_requests"].samples if s.name.endswith("_total")]
    assert [(s.labels, s.value) for s in samples] == [({"method": "GET"}, 4.0)]
    # The other metrics keep their route label.
    assert any(s.labels.get("route") == "/boom" for s in _families(text)["http_responses"].samples)


def test_explicit_bucket_boundaries_from_a_view_are_exact(monitor: Any) -> None:
    """A view's bounds replace the duration buckets; a second view keeps the default buckets too."""
    bounds = [0.0001, 0.25, 60.0]
    m = monitor(
        views=[
            View(instrument_name="http_request_duration_seconds",
                 aggregation=ExplicitBucketHistogramAggregation(bounds)),
            View(instrument_name="http_request_duration_seconds", name="http.duration.default"),
        ]
    )  # fmt: skip
    with serve_asgi(m.instrument(_app())) as base:
        _traffic(base, m)
        text = m.render_prometheus().decode()
    families = _families(text)
    custom = [
        s for s in families["http_request_duration_seconds"].samples if s.name.endswith("_bucket")
    ]
    assert {s.labels["le"] for s in custom} == {"0.0001", "0.25", "60.0", "+Inf"}
    default = [
        s for s in families["http_duration_default_seconds"].samples if s.name.endswith("_bucket")
    ]
    assert {float(s.labels["le"]) for s in default} == {*cat.DEFAULT_DURATION_BUCKETS, float("inf")}
    for samples in (custom, default):
        inf = sum(s.value for s in samples if s.labels["le"] == "+Inf")
        assert inf == 4  # every request in each stream, whatever the buckets


def test_a_view_selects_a_builtin_by_the_name_it_is_exported_under(monitor: Any) -> None:
    """Under semconv, a view on http.server.request.duration keeps only http.route."""
    m = monitor(
        {"naming": "semconv"},
        views=[View(instrument_name="http.server.request.duration", attribute_keys={"http.route"})],
    )
    with serve_asgi(m.instrument(_app())) as base:
        _traffic(base, m)
        text = m.render_prometheus().decode()
    samples = _families(text)["http_server_request_duration_seconds"].samples
    scope = {"le", "otel_scope_name", "otel_scope_version"}  # semconv: the official defaults
    assert {frozenset(s.labels) - scope for s in samples} == {frozenset({"http_route"})}


def test_user_views_shape_custom_metrics_through_the_sdk(monitor: Any) -> None:
    """The same views reach the SDK: a custom histogram gets the view's buckets and name."""
    m = monitor(
        views=[
            View(instrument_type=SdkHistogram, instrument_name="orders.value", name="order.value",
                 aggregation=ExplicitBucketHistogramAggregation([1.0, 10.0]))
        ]
    )  # fmt: skip
    m.histogram("orders.value", unit="1").record(5.0)
    text = m.render_prometheus().decode()
    buckets = {
        s.labels["le"]: s.value
        for s in _families(text)["order_value"].samples
        if s.name.endswith("_bucket")
    }
    assert buckets == {"1.0": 0.0, "10.0": 1.0, "+Inf": 1.0}


def test_alerts_read_the_builtins_whatever_the_views_drop(monitor: Any) -> None:
    """A view dropping http_requests_total from the exports leaves the alert rules reading it."""
    m = monitor(
        {
            "alert_evaluation_interval": 0.05,
            "alerts": [
                {"name": "AnyTraffic", "metric": "http_requests_total", "operator": ">",
                 "value": 0, "severity": "info", "aggregation": "value"}
            ],
        },
        views=[View(instrument_name="http_requests_total", aggregation=DropAggregation())],
    )  # fmt: skip
    with serve_asgi(m.instrument(_app())) as base:
        _traffic(base, m)
        firing = wait_until(lambda: [a for a in m.alerts() if a.state == "firing"], timeout=10)
        text = m.render_prometheus().decode()
    assert "AnyTraffic" in {a.name for a in firing}
    assert "http_requests_total" not in text


@requires_promtool
def test_output_shaped_by_views_passes_promtool(monitor: Any) -> None:
    """Renamed, merged and re-bucketed families are valid exposition."""
    m = monitor(
        {"naming": "semconv"},
        views=[
            View(instrument_name="http.server.request.duration",
                 aggregation=ExplicitBucketHistogramAggregation([0.01, 1.0]),
                 attribute_keys={"http.request.method"}),
            View(instrument_name="http.server.response.count", name="responses"),
        ],
    )  # fmt: skip
    with serve_asgi(m.instrument(_app())) as base:
        _traffic(base, m)
        text = m.render_prometheus()
    assert promtool_check_metrics(text) == []


@pytest.mark.parametrize(
    ("views", "path", "words"),
    [
        (["http_requests_total"], "views[0]", "expected an opentelemetry.sdk.metrics.view.View"),
        (
            [View(instrument_name="http_request_duration_seconds",
                  aggregation=LastValueAggregation())],
            "views[0].aggregation",
            "LastValueAggregation cannot aggregate the histogram",
        ),
        (
            [View(instrument_name="nope", meter_name="fluxstack_otel.http")],
            "views[0]",
            "selects no built-in metric of meter 'fluxstack_otel.http'",
        ),
        (
            [View(instrument_name="http_request_duration_second")],
            "views[0].instrument_name",
            "did you mean 'http_request_duration_seconds'",
        ),
        (
            [View(instrument_name="http_requests_total", name="traffic"),
             View(instrument_name="http_responses_total", name="traffic")],
            "views",
            "two streams would be exported as 'traffic'",
        ),
        (
            [View(instrument_name="http_request_size_bytes",
                  aggregation=ExplicitBucketHistogramAggregation([10.0, 1.0]))],
            "views[0].aggregation",
            "must increase strictly",
        ),
    ],
)  # fmt: skip
def test_bad_views_are_refused_naming_the_entry(views: list[Any], path: str, words: str) -> None:
    """Each bad view is one ConfigError naming the entry and what is allowed."""
    with pytest.raises(ConfigError) as caught:
        configure_monitoring({"set_global": False}, views=views)
    assert caught.value.path == path
    assert words in str(caught.value)


def test_a_view_for_a_custom_metric_not_made_yet_is_accepted(monitor: Any) -> None:
    """A view that selects no built-in may be for an instrument made later: accepted, and the
    SDK applies it to that instrument when it comes (its attributes dropped here)."""
    view = View(instrument_name="db.client.*", attribute_keys=set())
    m = monitor(views=[view])
    assert m.views[-1] is view
    m.counter("db.client.calls").add(2, {"table": "orders"})
    m.counter("db.client.calls").add(3, {"table": "users"})
    samples = [
        s
        for s in _families(m.render_prometheus().decode())["db_client_calls"].samples
        if s.name.endswith("_total")
    ]
    assert [(s.labels, s.value) for s in samples] == [({}, 5.0)]
