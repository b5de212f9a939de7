"""Golden bytes: the exposition of one representative collection, pinned in both formats.

The collection (``representative()``) holds every kind the renderer writes: counters (built-in and
custom, one whose name needs sanitising), an up-down counter, gauges with NaN and infinities, a
histogram with exemplars, an empty family, label values with quotes, backslashes, newlines and
unicode, non-string attributes, and help text that needs escaping. A change in the bytes is a
change in what every scraper reads: review the diff, then rewrite the files with
``FLUXSTACK_UPDATE_GOLDEN=1 make unit PYTEST_ARGS=tests/test_exposition_golden.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import MetricsData
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from fluxstack_otel._internal.sinks.prometheus.exposition import RenderOptions, render
from servers import promtool_check_metrics, requires_promtool
from support.metricdata import (
    AT_NS,
    collection,
    counter,
    gauge,
    histogram,
    histogram_point,
    number,
    updown,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("FLUXSTACK_UPDATE_GOLDEN") == "1"

TRACE_ID = 0x5B8EFFF798038103D269B633813FC60C
SPAN_ID = 0xEEE19B7EC3C1B174


def representative() -> MetricsData:
    """One collection with every shape the renderer handles (see the module docstring)."""
    route = {"method": "GET", "route": "/users/{id}"}
    return collection(
        {
            "fluxstack_otel": [
                counter(
                    "http_requests_total",
                    [number(7, route), number(1, {"method": "POST", "route": "/login"})],
                    "Total HTTP requests",
                ),
                histogram(
                    "http_request_duration_seconds",
                    [
                        histogram_point(
                            (0.1, 0.5, 1.0),
                            (4, 2, 0, 1),
                            2.25,
                            {**route, "status_code": "200"},
                            [
                                Exemplar({}, 0.05, AT_NS - 2_000_000_000, SPAN_ID, TRACE_ID),
                                Exemplar({}, 0.07, AT_NS - 1_000_000_000, SPAN_ID + 1, TRACE_ID),
                                Exemplar({}, 1.5, AT_NS, SPAN_ID + 2, TRACE_ID + 1),
                            ],
                        )
                    ],
                    "HTTP request duration",
                    "s",
                ),
                histogram("http_response_size_bytes", [], "HTTP response size", "By"),
            ],
            "app": [
                counter(
                    "orders",
                    [
                        number(3, {"shop": 'the "corner" shop'}),
                        number(2.5, {"shop": "back\\slash"}),
                    ],
                    "Orders placed\nper shop, c:\\ style",
                ),
                counter("db.client.operations", [number(12, {"db.system": "postgresql"})]),
                updown("queue.depth", [number(-2, {"queue": "émails ✉"})], "Jobs waiting", "1"),
                gauge(
                    "temperature",
                    [
                        number(21.5, {"room": "line\nbreak"}),
                        number(float("nan"), {"room": "broken"}),
                        number(float("inf"), {"room": "sun"}),
                        number(float("-inf"), {"room": "space"}),
                    ],
                    "Room temperature",
                    "Cel",
                ),
                gauge("flags", [number(1, {"enabled": True, "replicas": 3, "zones": ["a", "b"]})]),
            ],
        },
        resource={"service.name": "svc", "service.instance.id": "i-1", "team": 'a"b'},
        version="1.2.0",
    )


CASES = {
    "text": (False, RenderOptions()),
    "text-options": (False, RenderOptions(target_info=True, scope_labels=True)),
    "openmetrics": (True, RenderOptions()),
    "openmetrics-options": (True, RenderOptions(target_info=True, scope_labels=True)),
}


def golden_path(case: str) -> Path:
    return GOLDEN / f"exposition-{case}.{'om' if CASES[case][0] else 'txt'}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_exposition_matches_its_golden_bytes(case: str) -> None:
    """The renderer writes exactly the pinned bytes for the representative collection."""
    openmetrics, options = CASES[case]
    rendered = render(representative(), openmetrics=openmetrics, options=options)
    path = golden_path(case)
    if UPDATE:
        path.write_bytes(rendered)
        pytest.skip(f"rewrote {path.name}")
    assert rendered == path.read_bytes()


@pytest.mark.parametrize("case", [c for c in sorted(CASES) if not CASES[c][0]])
def test_the_golden_text_parses_and_keeps_every_series(case: str) -> None:
    """prometheus_client's text parser reads the golden text into the families it declares."""
    families = {f.name: f for f in parse_text(golden_path(case).read_text())}
    assert families["http_requests"].type == "counter"
    assert families["http_request_duration_seconds"].type == "histogram"
    assert families["db_client_operations"].type == "counter"
    assert families["queue_depth"].type == "gauge"
    assert families["orders"].documentation == "Orders placed\nper shop, c:\\ style"
    shops = {s.labels["shop"] for s in families["orders"].samples}
    assert shops == {'the "corner" shop', "back\\slash"}
    rooms = {s.labels["room"] for s in families["temperature_celsius"].samples}
    assert rooms == {"line\nbreak", "broken", "sun", "space"}
    assert families["http_response_size_bytes"].samples == []


@pytest.mark.parametrize("case", [c for c in sorted(CASES) if CASES[c][0]])
def test_the_golden_openmetrics_parses_with_its_exemplars(case: str) -> None:
    """The strict OpenMetrics parser reads the golden file; buckets carry their latest exemplar."""
    families = {f.name: f for f in parse_om(golden_path(case).read_text())}
    buckets = [
        s for s in families["http_request_duration_seconds"].samples if s.name.endswith("_bucket")
    ]
    marked = {s.labels["le"]: s.exemplar for s in buckets if s.exemplar is not None}
    assert sorted(marked) == ["+Inf", "0.1"]
    assert marked["0.1"].value == 0.07
    assert marked["0.1"].labels["span_id"] == format(SPAN_ID + 1, "016x")
    assert marked["+Inf"].labels["trace_id"] == format(TRACE_ID + 1, "032x")


@requires_promtool
@pytest.mark.parametrize("case", [c for c in sorted(CASES) if not CASES[c][0]])
def test_the_golden_text_passes_promtool(case: str) -> None:
    """promtool check metrics finds nothing but its lint on the two families left without help."""
    problems = promtool_check_metrics(golden_path(case).read_text())
    assert sorted(problems) == ["db_client_operations_total no help text", "flags no help text"]
