"""The Prometheus renderer and content negotiation, checked with prometheus_client's parsers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

from fluxstack_otel._internal.http.recorder import HttpRecorder
from fluxstack_otel._internal.metrics.stream import MetricStream
from fluxstack_otel._internal.sinks.prometheus.negotiation import (
    CONTENT_TYPE_PROTOBUF,
    PROTOBUF,
    TEXT,
)
from fluxstack_otel._internal.sinks.prometheus.sink import (
    CONTENT_TYPE_OPENMETRICS,
    CONTENT_TYPE_TEXT,
    RenderOptions,
    negotiate,
    render,
)
from support.exposition import samples

Made = tuple[MetricStream, HttpRecorder, MeterProvider]


@pytest.fixture
def made() -> Iterator[Made]:
    """A stream over a recorder whose clock stands at 0 (records at 0 never idle) and an SDK
    provider; the provider is shut down after the test."""
    recorder = HttpRecorder(duration_buckets=(0.1, 1.0), size_buckets=(100.0,), clock=lambda: 0.0)
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    resource = Resource.create({"service.name": "svc", "service.instance.id": "i-1"})
    yield MetricStream([reader], recorder.to_metrics, resource), recorder, provider
    provider.shutdown()


def test_text_format_has_exact_values_and_cumulative_buckets(made: Made) -> None:
    """Text 0.0.4 carries exact counters and cumulative ``le`` buckets ending in +Inf."""
    stream, rec, _ = made
    rec.record("GET", "/a", 200, None, 0.05, 0, 10, 0.0)
    rec.record("GET", "/a", 200, None, 0.5, 0, 1000, 0.0)
    text = render(stream.collect(), openmetrics=False).decode()
    got = samples(text)
    mrs = frozenset({("method", "GET"), ("route", "/a"), ("status_code", "200")})
    assert got[("http_requests_total", mrs - {("status_code", "200")})] == 2
    assert got[("http_request_duration_seconds_bucket", mrs | {("le", "0.1")})] == 1
    assert got[("http_request_duration_seconds_bucket", mrs | {("le", "1.0")})] == 2
    assert got[("http_request_duration_seconds_bucket", mrs | {("le", "+Inf")})] == 2
    assert got[("http_request_duration_seconds_count", mrs)] == 2
    assert got[("http_response_size_bytes_sum", mrs)] == 1010
    assert "# TYPE http_requests_total counter" in text


def test_openmetrics_names_counter_families_without_total_and_ends_with_eof(made: Made) -> None:
    """OpenMetrics output parses with the strict OM parser: families without _total, # EOF."""
    stream, rec, _ = made
    rec.record("POST", "/b", 201, None, 0.2, 5, 5, 0.0)
    text = render(stream.collect(), openmetrics=True).decode()
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in parse_om(text)}
    assert families["http_requests"].type == "counter"
    assert families["http_request_duration_seconds"].type == "histogram"
    (s,) = families["http_requests"].samples
    assert s.name == "http_requests_total"
    assert s.value == 1


def test_families_without_series_still_declare_help_and_type(made: Made) -> None:
    """Before any request the six HTTP families are declared, so scrapers see them exist."""
    stream, _, _ = made
    text = render(stream.collect(), openmetrics=False).decode()
    for name in ("http_requests_total", "http_request_duration_seconds"):
        assert f"# TYPE {name} " in text


def test_label_values_are_escaped(made: Made) -> None:
    """Quotes, backslashes and newlines in label values survive a round trip."""
    stream, rec, _ = made
    weird = 'a"b\\c\nd'
    rec.record("GET", weird, 200, None, 0.01, 0, 0, 0.0)
    got = samples(render(stream.collect(), openmetrics=False).decode())
    assert got[("http_requests_total", frozenset({("method", "GET"), ("route", weird)}))] == 1


def test_custom_metric_names_are_sanitised_and_counters_get_total(made: Made) -> None:
    """SDK metrics with dotted names become valid Prometheus names; counters end in _total."""
    stream, _, provider = made
    meter = provider.get_meter("test")
    meter.create_counter("orders.placed").add(3, {"shop.region": "eu"})
    meter.create_up_down_counter("queue.depth").add(-2)
    text = render(stream.collect(), openmetrics=False).decode()
    got = samples(text)
    assert got[("orders_placed_total", frozenset({("shop_region", "eu")}))] == 3
    assert got[("queue_depth", frozenset())] == -2
    assert "# TYPE queue_depth gauge" in text


def test_target_info_and_scope_labels_are_opt_in(made: Made) -> None:
    """Off by default; on request target_info carries resource attributes and series get scope labels."""
    stream, rec, _ = made
    rec.record("GET", "/", 200, None, 0.01, 0, 0, 0.0)
    plain = render(stream.collect(), openmetrics=False).decode()
    assert "target_info" not in plain
    assert "otel_scope_name" not in plain
    rich = render(
        stream.collect(),
        openmetrics=False,
        options=RenderOptions(target_info=True, scope_labels=True),
    ).decode()
    got = samples(rich)
    info = [k for k in got if k[0] == "target_info"]
    assert ("service_name", "svc") in info[0][1]
    assert 'otel_scope_name="fluxstack_otel.http"' in rich


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, CONTENT_TYPE_TEXT),
        ("", CONTENT_TYPE_TEXT),
        ("text/plain", CONTENT_TYPE_TEXT),
        ("*/*", CONTENT_TYPE_TEXT),
        ("application/json", CONTENT_TYPE_TEXT),
        # Prometheus 2.x scrape header
        (
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
            "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            CONTENT_TYPE_OPENMETRICS,
        ),
        # Prometheus 3.x scrape header (escaping parameter, text 1.0.0 offered too)
        (
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
            "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;"
            "escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
            CONTENT_TYPE_OPENMETRICS,
        ),
        (
            "application/openmetrics-text;version=0.0.1",
            "application/openmetrics-text; version=0.0.1; charset=utf-8",
        ),
        ("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5", CONTENT_TYPE_TEXT),
        ("application/openmetrics-text;version=9.9.9", CONTENT_TYPE_TEXT),
    ],
)
def test_negotiation_picks_the_best_supported_format(accept: str | None, expected: str) -> None:
    """The Accept header's highest-quality supported format wins; anything else gets 0.0.4."""
    assert negotiate(accept)[1] == expected


def test_negotiation_can_be_pinned_to_text() -> None:
    """With OpenMetrics disabled, even an OpenMetrics-only scraper gets the 0.0.4 text."""
    assert negotiate("application/openmetrics-text", allow_openmetrics=False) == (
        TEXT,
        CONTENT_TYPE_TEXT,
    )


NATIVE_SCRAPER = (  # a Prometheus with native histograms on: protobuf first
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;"
    "q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.1"
)


@pytest.mark.parametrize(
    ("accept", "allow_openmetrics", "expected"),
    [
        (NATIVE_SCRAPER, True, PROTOBUF),
        (NATIVE_SCRAPER, False, PROTOBUF),
        # Only the delimited MetricFamily encoding is served; other protobuf forms get text.
        ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
         "encoding=text", True, TEXT),
        ("application/vnd.google.protobuf;proto=other.Message;encoding=delimited", True, TEXT),
        ("application/vnd.google.protobuf", True, TEXT),
    ],
)  # fmt: skip
def test_the_protobuf_format_is_served_to_a_scraper_that_asks_for_it(
    accept: str, allow_openmetrics: bool, expected: str
) -> None:
    """The delimited MetricFamily encoding when asked for, whatever the OpenMetrics setting."""
    found = negotiate(accept, allow_openmetrics=allow_openmetrics, allow_protobuf=True)
    assert found == (
        (PROTOBUF, CONTENT_TYPE_PROTOBUF) if expected == PROTOBUF else (TEXT, CONTENT_TYPE_TEXT)
    )
    assert negotiate(accept, allow_protobuf=False)[0] != PROTOBUF
