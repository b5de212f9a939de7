"""The otlp exporter against receivers on 127.0.0.1 that decode with opentelemetry-proto.

Payloads are decoded with the official message classes; the tests check names, values, resource
attributes, and that cumulative and delta series add up to the requests sent, including when
some exports fail.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource

from fluxstack_otel import ConfigError, MissingDependencyError, configure_monitoring
from fluxstack_otel._internal.config.model import MonitoringConfig, OtlpExporterConfig
from fluxstack_otel._internal.metrics.catalog import HTTP_METRICS, HTTP_REQUEST_DURATION
from fluxstack_otel._internal.pipeline import make_resource
from fluxstack_otel._internal.runtime.failures import failure_counts
from fluxstack_otel._internal.sinks.otlp import OtlpSink, signal_url, with_environment
from receivers import (
    CUMULATIVE,
    DELTA,
    RECEIVERS,
    GrpcReceiver,
    HttpReceiver,
    closed_port,
    durations_count,
    metrics_of,
    requests_total,
    resource_of,
)
from support.pipeline import Pipeline

# --- fixtures ----------------------------------------------------------------------------


class OtlpPipeline(Pipeline):
    def sink(self, **config: Any) -> OtlpSink:
        return OtlpSink(OtlpExporterConfig(**config), self.context())


@pytest.fixture
def pipeline() -> Iterator[OtlpPipeline]:
    p = OtlpPipeline(instance_id="i-42")
    yield p
    p.close()


# --- tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_cumulative_export_carries_names_values_and_resource(
    pipeline: Pipeline, protocol: str
) -> None:
    """Every HTTP metric and a custom counter arrive with exact values and the resource."""
    pipeline.provider.get_meter("app").create_counter("orders", description="Orders").add(5)
    with RECEIVERS[protocol]() as receiver:
        sink = pipeline.sink(endpoint=receiver.base_url, protocol=protocol, interval=0.05)
        sink.start()
        try:
            pipeline.requests(7)
            receiver.wait_for(lambda r: any(requests_total(q)[0] == 7 for q in r.requests))
        finally:
            sink.shutdown(5.0)
    last = receiver.requests[-1]
    metrics = metrics_of(last)
    assert {spec.name for spec in HTTP_METRICS} - {"http_errors_total"} <= set(metrics)
    assert requests_total(last) == (7, CUMULATIVE)
    assert metrics["orders"].sum.data_points[0].as_int == 5
    assert metrics["orders"].description == "Orders"
    (duration,) = metrics[HTTP_REQUEST_DURATION.name].histogram.data_points
    assert duration.count == 7
    assert list(duration.bucket_counts) == [7, 0, 0]
    assert list(duration.explicit_bounds) == [0.1, 1.0]
    assert not duration.HasField("min")  # the recorder keeps none: absent, not 0
    assert not duration.HasField("max")
    attrs = {kv.key: kv.value.string_value for kv in duration.attributes}
    assert attrs == {"method": "GET", "route": "/a", "status_code": "200"}
    resource = resource_of(last)
    assert resource["service.name"] == "svc"
    assert resource["service.instance.id"] == "i-42"


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_delta_exports_sum_to_the_requests_sent(pipeline: Pipeline, protocol: str) -> None:
    """Requests sent between exports: the deltas add up exactly, nothing counted twice."""
    with RECEIVERS[protocol]() as receiver:
        sink = pipeline.sink(
            endpoint=receiver.base_url, protocol=protocol, interval=0.03, temporality="delta"
        )
        sink.start()
        try:
            for batch in (3, 4, 5):
                seen = len(receiver.requests)
                pipeline.requests(batch)
                receiver.wait_for(lambda r, seen=seen: len(r.requests) >= seen + 2)
        finally:
            sink.shutdown(5.0)
    totals = [requests_total(q) for q in receiver.requests]
    assert sum(t for t, _ in totals) == pipeline.sent == 12
    assert {temporality for t, temporality in totals if t} == {DELTA}
    assert sum(durations_count(q) for q in receiver.requests) == 12


def test_delta_temporality_keeps_up_down_counters_cumulative(pipeline: Pipeline) -> None:
    """With delta, counters send increments but an up-down counter keeps sending its level."""
    meter = pipeline.provider.get_meter("shop")
    orders = meter.create_counter("orders")
    carts = meter.create_up_down_counter("carts_open")
    with HttpReceiver() as receiver:
        sink = pipeline.sink(endpoint=receiver.base_url, interval=0.03, temporality="delta")
        sink.start()
        try:
            for added, opened in ((3, 5), (4, -2)):
                orders.add(added)
                carts.add(opened)
                seen = len(receiver.requests)
                receiver.wait_for(lambda r, seen=seen: len(r.requests) >= seen + 2)
        finally:
            sink.shutdown(5.0)
    order_points = [
        (p.as_int, m.sum.aggregation_temporality)
        for q in receiver.requests
        if (m := metrics_of(q).get("orders")) is not None
        for p in m.sum.data_points
    ]
    cart_points = [
        (p.as_int, m.sum.aggregation_temporality, m.sum.is_monotonic)
        for q in receiver.requests
        if (m := metrics_of(q).get("carts_open")) is not None
        for p in m.sum.data_points
    ]
    assert sum(v for v, _ in order_points) == 7
    assert {t for _, t in order_points} == {DELTA}
    assert {(t, monotonic) for _, t, monotonic in cart_points} == {(CUMULATIVE, False)}
    assert cart_points[-1][0] == 3  # the level: 5 opened, 2 closed
    assert {v for v, _, _ in cart_points} <= {5, 3}


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_delta_counts_of_failed_exports_are_sent_later_not_lost(
    pipeline: Pipeline, protocol: str
) -> None:
    """The first exports are refused; the next accepted delta carries their counts."""
    with RECEIVERS[protocol](failures=3) as receiver:
        sink = pipeline.sink(
            endpoint=receiver.base_url, protocol=protocol, interval=0.03, temporality="delta"
        )
        pipeline.requests(6)
        sink.start()
        try:
            receiver.wait_for(lambda r: r.attempts >= 2)
            pipeline.requests(4)
            receiver.wait_for(lambda r: sum(requests_total(q)[0] for q in r.requests) >= 10)
            pipeline.requests(1)
        finally:
            sink.shutdown(5.0)
    assert receiver.attempts > 3
    assert sum(requests_total(q)[0] for q in receiver.requests) == pipeline.sent == 11


def test_metrics_without_points_are_not_sent(pipeline: Pipeline) -> None:
    """Before any request the HTTP metrics have no points and are left out of the payload."""
    pipeline.provider.get_meter("app").create_counter("ready").add(1)
    with HttpReceiver() as receiver:
        sink = pipeline.sink(endpoint=receiver.base_url, interval=3600)
        sink.start()
        sink.shutdown(5.0)
    (request,) = receiver.requests
    assert set(metrics_of(request)) == {"ready"}


def test_nothing_at_all_to_send_sends_nothing(pipeline: Pipeline) -> None:
    """An empty collection is not an export: the receiver sees no request."""
    with HttpReceiver() as receiver:
        sink = pipeline.sink(endpoint=receiver.base_url, interval=3600)
        sink.start()
        sink.shutdown(5.0)
        assert receiver.attempts == 0


def test_headers_and_gzip_reach_the_backend(pipeline: Pipeline) -> None:
    """Configured headers are sent on every export, and gzip is applied when asked."""
    pipeline.requests(1)
    with HttpReceiver() as receiver:
        sink = pipeline.sink(
            endpoint=receiver.base_url, headers=(("X-Team", "core"),), compression="gzip"
        )
        assert sink.export() is True
        sink.shutdown(1.0)
    assert receiver.metadata[0]["x-team"] == "core"
    assert receiver.metadata[0]["content-encoding"] == "gzip"


def test_grpc_headers_become_lowercase_metadata(pipeline: Pipeline) -> None:
    """gRPC metadata keys must be lowercase: configured names are lowered, values kept."""
    pipeline.requests(1)
    with GrpcReceiver() as receiver:
        sink = pipeline.sink(
            endpoint=receiver.base_url, protocol="grpc", headers=(("X-Team", "Core"),)
        )
        assert sink.export() is True
        sink.shutdown(1.0)
    assert receiver.metadata[0]["x-team"] == "Core"


def test_standard_environment_variables_apply_when_the_config_is_silent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT/HEADERS, OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES."""
    with HttpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.base_url)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
        monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
        monitoring = configure_monitoring(
            {"system_metrics": False, "exporters": [{"type": "otlp", "interval": 3600}]}
        )
        monitoring.meter.create_counter("boot").add(1)
        monitoring.shutdown(5.0)
    (request,) = receiver.requests
    resource = resource_of(request)
    assert resource["service.name"] == "from-env"
    assert resource["deployment.environment"] == "test"
    assert receiver.metadata[0]["x-tenant"] == "acme"


def test_protocol_and_temporality_preference_come_from_the_environment(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_EXPORTER_OTLP_PROTOCOL=grpc and a delta preference apply to an entry left default."""
    with GrpcReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.base_url)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta")
        sink = pipeline.sink()
        pipeline.requests(2)
        assert sink.export() is True
        pipeline.requests(1)
        assert sink.export() is True
        sink.shutdown(1.0)
    assert [requests_total(q) for q in receiver.requests] == [(2, DELTA), (1, DELTA)]


def test_explicit_protocol_and_temporality_beat_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An entry that sets protocol or temporality keeps them whatever the environment says."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta")
    config = with_environment(OtlpExporterConfig(protocol="grpc"))
    assert config.protocol == "grpc"
    assert config.temporality == "delta"  # left default: the preference applies
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "cumulative")
    config = with_environment(OtlpExporterConfig(temporality="delta"))
    assert config.protocol == "grpc"
    assert config.temporality == "delta"


def test_an_explicit_service_name_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """service_name in the config says otherwise: OTEL_SERVICE_NAME does not override it."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monitoring = configure_monitoring({"service_name": "shop", "system_metrics": False})
    try:
        (rm,) = monitoring.collect().resource_metrics
        assert rm.resource.attributes["service.name"] == "shop"
    finally:
        monitoring.shutdown()


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"OTEL_SERVICE_NAME": "from-env", "OTEL_RESOURCE_ATTRIBUTES": "team=core,service.name=x"},
        {"OTEL_RESOURCE_ATTRIBUTES": "service.name=attr-only,deployment.environment=test"},
    ],
)
def test_the_resource_is_the_one_the_sdk_would_build(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without configured detectors the resource equals Resource.create's, built without its
    thread pool; the config's service name applies only where the environment names none."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    instance = {"service.instance.id": "i-1"}
    made = dict(make_resource(MonitoringConfig()).attributes)
    made["service.instance.id"] = "i-1"
    expected = dict(Resource.create(instance).attributes)
    if str(expected["service.name"]).startswith("unknown_service"):
        expected["service.name"] = "fluxstack-app"
    assert made == expected


def test_configured_resource_detectors_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_EXPERIMENTAL_RESOURCE_DETECTORS takes the SDK's own path: the process detector runs."""
    monkeypatch.setenv("OTEL_EXPERIMENTAL_RESOURCE_DETECTORS", "process")
    attributes = make_resource(MonitoringConfig()).attributes
    assert attributes["process.pid"] == os.getpid()
    assert attributes["service.name"] == "fluxstack-app"


def test_a_bare_collector_address_gets_the_metrics_path() -> None:
    """http://host:4318 means the collector; a URL with a path is taken as the signal URL."""
    assert signal_url("http://c:4318") == "http://c:4318/v1/metrics"
    assert signal_url("http://c:4318/") == "http://c:4318/v1/metrics"
    assert signal_url("https://c/otlp/v1/metrics") == "https://c/otlp/v1/metrics"


@pytest.mark.parametrize(
    "module",
    [
        "opentelemetry.exporter.otlp.proto.http.metric_exporter",
        "opentelemetry.exporter.otlp.proto.grpc.metric_exporter",
    ],
)
def test_missing_extra_names_the_pip_line(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    """Without the official exporter installed, the error gives the exact install command."""
    monkeypatch.setitem(sys.modules, module, None)
    protocol = "grpc" if ".grpc." in module else "http/protobuf"
    with pytest.raises(MissingDependencyError, match=r"pip install 'fluxstack-otel\[otlp\]'"):
        pipeline.sink(protocol=protocol)


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_backend_down_is_reported_and_shutdown_stays_bounded(
    pipeline: Pipeline, protocol: str
) -> None:
    """Nothing listens: failures are counted, and shutdown returns within its timeout."""
    pipeline.requests(1)
    endpoint = f"http://127.0.0.1:{closed_port()}"
    sink = pipeline.sink(endpoint=endpoint, protocol=protocol, interval=0.02, timeout=0.5)
    kind = f"exporting OTLP to {endpoint}"
    before = failure_counts().get(kind, 0)
    sink.start()
    deadline = time.monotonic() + 10
    while failure_counts().get(kind, 0) - before < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    t0 = time.monotonic()
    sink.shutdown(1.0)
    assert time.monotonic() - t0 < 1.5


def test_the_export_timeout_variable_bounds_an_export_to_a_stuck_backend(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_METRIC_EXPORT_TIMEOUT=200: an export to a backend that answers 3 s late gives up."""
    hold = threading.Event()
    release = threading.Timer(3.0, hold.set)  # within the entry's own 10 s timeout
    monkeypatch.setenv("OTEL_METRIC_EXPORT_TIMEOUT", "200")
    with HttpReceiver(hold=hold) as receiver:
        sink = pipeline.sink(endpoint=receiver.base_url)
        pipeline.requests(1)
        release.start()
        try:
            assert sink.export() is False  # without the bound it succeeds once released
        finally:
            hold.set()
            release.cancel()
            sink.shutdown(1.0)


@pytest.mark.parametrize("value", ["soon", "-5", "1.5"])
def test_a_bad_export_timeout_is_a_config_error(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """A value that is not whole milliseconds names the variable, the value and what is allowed."""
    monkeypatch.setenv("OTEL_METRIC_EXPORT_TIMEOUT", value)
    with pytest.raises(ConfigError) as caught:
        pipeline.sink(endpoint="http://127.0.0.1:9")
    assert str(caught.value) == (
        f"OTEL_METRIC_EXPORT_TIMEOUT: expected whole milliseconds, 0 or more, got {value!r}"
    )
