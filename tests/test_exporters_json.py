"""The JSON document and the json exporter: schema-valid output, the endpoint, POST and file."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Metric,
    NumberDataPoint,
)
from opentelemetry.sdk.resources import Resource

from fluxstack_otel import configure_monitoring
from fluxstack_otel._internal.config.model import JsonExporterConfig
from fluxstack_otel._internal.runtime.failures import failure_counts
from fluxstack_otel._internal.sinks.json_endpoint import JsonSink, document
from fluxstack_otel._internal.sinks.periodic import Tick
from fluxstack_otel._internal.transport.post import PostError, post_with_retries, public_url
from receivers import JsonReceiver
from servers import serve_asgi
from support.metricdata import collection
from support.pipeline import Pipeline

SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "json-schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def validate(doc: object) -> None:
    errors = sorted(VALIDATOR.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def metric(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [m for m in doc["metrics"] if m["name"] == name]
    return found


def test_document_is_schema_valid_with_http_and_custom_metrics(pipeline: Pipeline) -> None:
    """HTTP series, SDK counters, histograms, up-down counters and gauges all validate."""
    pipeline.recorder.record("GET", "/a", 200, None, 0.05, 0, 10, time.perf_counter())
    pipeline.recorder.record("GET", "/a", 200, None, 0.5, 0, 1000, time.perf_counter())
    meter = pipeline.provider.get_meter("app")
    meter.create_counter("orders", unit="1", description="Orders").add(3, {"shop": "x"})
    meter.create_histogram("basket", unit="By").record(12.5)
    meter.create_up_down_counter("queue").add(-2)
    meter.create_observable_gauge("temp", [lambda _: [Observation(21.5, {"k": True})]])

    doc = document(pipeline.stream.collect(), now_ns=1_735_787_045_678_000_000)
    validate(doc)
    assert doc["timestamp"] == "2025-01-02T03:04:05.678Z"
    assert doc["resource"]["service_name"] == "svc"
    assert doc["resource"]["instance_id"] == "i-1"

    requests = metric(doc, "http_requests_total")
    assert requests["type"] == "counter"
    assert requests["unit"] == "1"
    assert requests["help"].startswith("Total number of HTTP requests")
    assert requests["series"] == [{"labels": {"method": "GET", "route": "/a"}, "value": 2}]

    (duration,) = metric(doc, "http_request_duration_seconds")["series"]
    assert duration["count"] == 2
    assert duration["sum"] == pytest.approx(0.55)
    assert duration["buckets"] == [{"le": 0.1, "count": 1}, {"le": 1.0, "count": 2}]
    assert "min" not in duration  # the recorder keeps no min/max
    assert "max" not in duration

    (basket,) = metric(doc, "basket")["series"]
    assert basket["min"] == basket["max"] == 12.5  # the SDK records them
    assert metric(doc, "orders")["series"] == [{"labels": {"shop": "x"}, "value": 3}]
    assert metric(doc, "queue")["type"] == "gauge"  # a non-monotonic sum
    assert metric(doc, "temp")["series"] == [{"labels": {"k": "true"}, "value": 21.5}]


def test_non_finite_values_are_strings_so_the_json_stays_strict() -> None:
    """NaN and infinities, which JSON cannot hold, become "NaN", "+Inf" and "-Inf"."""
    points = [NumberDataPoint({"v": str(v)}, 0, 1, v) for v in (math.nan, math.inf, -math.inf, 1.0)]
    data = collection(
        {"s": [Metric("g", "", "", Gauge(points))]}, Resource.create({"service.name": "svc"})
    )
    doc = document(data)
    validate(doc)
    values = [s["value"] for s in metric(doc, "g")["series"]]
    assert values == ["NaN", "+Inf", "-Inf", 1.0]
    json.dumps(doc, allow_nan=False)


def test_metrics_without_series_are_listed_empty(pipeline: Pipeline) -> None:
    """Before the first request the six HTTP metrics are there, with no series."""
    doc = document(pipeline.stream.collect())
    validate(doc)
    assert metric(doc, "http_request_size_bytes")["series"] == []


def test_extras_become_top_level_sections_but_never_replace_core_keys(pipeline: Pipeline) -> None:
    """Alerts and the like are added; an extra named like a core key is dropped and counted."""
    kind = "adding the extra section 'metrics' to the JSON document"
    before = failure_counts().get(kind, 0)
    doc = document(pipeline.stream.collect(), {"alerts": [{"name": "slow"}], "metrics": "x"})
    validate(doc)
    assert doc["alerts"] == [{"name": "slow"}]
    assert isinstance(doc["metrics"], list)
    assert failure_counts()[kind] == before + 1


def test_failing_extras_provider_leaves_the_sections_out(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """A broken extras provider costs its sections, not the document."""

    def broken() -> dict[str, Any]:
        raise RuntimeError("alerts engine down")

    target = tmp_path / "doc.json"
    sink = JsonSink(JsonExporterConfig(file_path=str(target)), pipeline.context(broken))
    sink.push(Tick(time.monotonic() + 5))
    doc = json.loads(target.read_text())
    validate(doc)
    assert "alerts" not in doc


# --- the exporter ----------------------------------------------------------------------------


def test_endpoint_serves_the_document_through_the_middleware() -> None:
    """GET /metrics.json on the wrapped app returns the document, HEAD no body, POST 405."""
    monitoring = configure_monitoring(
        {"system_metrics": False, "exporters": [{"type": "json", "endpoint": "/metrics.json"}]}
    )

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    try:
        with serve_asgi(monitoring.instrument(app)) as base, httpx.Client(base_url=base) as client:
            for _ in range(3):
                client.get("/work")
            response = client.get("/metrics.json")
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            doc = response.json()
            validate(doc)
            assert metric(doc, "http_requests_total")["series"][0]["value"] == 3
            head = client.head("/metrics.json")
            assert head.status_code == 200
            assert head.content == b""
            assert client.post("/metrics.json").status_code == 405
    finally:
        monitoring.shutdown()


def test_document_is_posted_every_interval_with_configured_headers(pipeline: Pipeline) -> None:
    """Each run POSTs the schema-valid document with Content-Type and the configured headers."""
    with JsonReceiver() as receiver:
        config = JsonExporterConfig(url=receiver.url, interval=0.05, headers=(("X-Token", "t"),))
        sink = JsonSink(config, pipeline.context())
        sink.start()
        receiver.wait_for(lambda r: len(r.bodies) >= 2)
        sink.shutdown(2.0)
    validate(json.loads(receiver.bodies[0]))
    assert receiver.headers[0]["Content-Type"] == "application/json"
    assert receiver.headers[0]["X-Token"] == "t"


def test_post_retries_server_errors_with_backoff_within_the_run() -> None:
    """500 then 503 then 200: three attempts in one run, the document arrives once."""
    with JsonReceiver([500, 503]) as receiver:
        tick = Tick(time.monotonic() + 10)
        post_with_retries(receiver.url, b"{}", {}, timeout=2, tick=tick, first_backoff=0.01)
        assert receiver.attempts == 3
        assert receiver.bodies == [b"{}"]


def test_logged_urls_keep_only_scheme_host_and_port() -> None:
    """Webhook secrets in the path, query or userinfo never reach a log line."""
    assert public_url("https://hooks.example/services/T0/B0/secret?k=v") == "https://hooks.example"
    assert public_url("http://user:pw@127.0.0.1:8080/x") == "http://127.0.0.1:8080"
    assert public_url("http://[::1]:4318/v1/metrics") == "http://[::1]:4318"
    assert public_url("collector:4317") == "collector:4317"


def test_post_does_not_retry_a_client_error() -> None:
    """A 400 is final for this run: one attempt, then the error."""
    with JsonReceiver([400]) as receiver:
        with pytest.raises(PostError, match="answered 400"):
            post_with_retries(receiver.url, b"{}", {}, timeout=2, tick=Tick(time.monotonic() + 10))
        assert receiver.attempts == 1


@pytest.mark.slow
def test_post_to_a_hanging_backend_is_bounded_by_the_run() -> None:
    """A backend that never answers costs at most the run's deadline, then raises."""
    with JsonReceiver([None, None, None, None]) as receiver:
        t0 = time.monotonic()
        with pytest.raises(PostError):
            post_with_retries(receiver.url, b"{}", {}, timeout=5, tick=Tick(time.monotonic() + 0.5))
        assert time.monotonic() - t0 < 1.0


def test_failed_posts_are_reported_and_retried_next_interval(pipeline: Pipeline) -> None:
    """A run whose POSTs all fail is counted; a later run delivers."""
    with JsonReceiver([400, 400]) as receiver:
        config = JsonExporterConfig(url=receiver.url, interval=0.05)
        origin = receiver.url.removesuffix("/hook")
        kind = f"posting the JSON document (POST {origin} answered 400)"
        before = failure_counts().get(kind, 0)
        sink = JsonSink(config, pipeline.context())
        sink.start()
        receiver.wait_for(lambda r: len(r.bodies) >= 1)
        sink.shutdown(2.0)
        assert failure_counts()[kind] - before == 2


def test_file_and_url_together_and_a_final_push_at_shutdown(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """Both outputs get the document; shutdown pushes once more even with a long interval."""
    target = tmp_path / "nested" / "dir" / "metrics.json"
    with JsonReceiver() as receiver:
        config = JsonExporterConfig(url=receiver.url, file_path=str(target), interval=3600)
        sink = JsonSink(config, pipeline.context())
        sink.start()
        pipeline.recorder.record("GET", "/z", 200, None, 0.01, 0, 1, time.perf_counter())
        sink.shutdown(5.0)
        assert len(receiver.bodies) == 1
    doc = json.loads(target.read_text())
    validate(doc)
    assert metric(doc, "http_requests_total")["series"][0]["value"] == 1
    assert json.loads(receiver.bodies[0])["metrics"] == doc["metrics"]
