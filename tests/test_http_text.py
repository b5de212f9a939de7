"""The HTTP scope written straight from the recorder's series is the renderer's text, byte for byte.

``http_text`` skips the OpenTelemetry points a scrape used to build; it must write exactly what
``exposition.render`` writes for those points, whatever the labelling (per-request labels,
constant labels, grouped status codes, zero error series), the label values (quotes,
backslashes, newlines), the overflow series, the format and the scope labels. A scrape that
cannot reuse the kept text takes this path, and must still equal a fresh render.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics.export import Metric, MetricsData, ResourceMetrics, ScopeMetrics
from opentelemetry.sdk.resources import Resource

from fluxstack_otel import configure_monitoring
from fluxstack_otel._internal.http import recorder as recorder_module
from fluxstack_otel._internal.http.projection import Labelling, project
from fluxstack_otel._internal.http.recorder import HttpRecorder
from fluxstack_otel._internal.metrics.stream import HTTP_SCOPE
from fluxstack_otel._internal.sinks.prometheus.exposition import HttpText, RenderOptions, render
from fluxstack_otel._internal.sinks.prometheus.http_text import http_text
from fluxstack_otel._internal.sinks.prometheus.labels import labels_inner
from support.asgi import drive
from support.configs import NO_THRESHOLDS

_RESOURCE = Resource.create({"service.name": "svc"})
_SCOPE_LABELS = labels_inner({"otel_scope_name": HTTP_SCOPE.name, "otel_scope_version": ""})

LABELLINGS = {
    "default": Labelling(),
    "per-request labels": Labelling(label_names=("tenant", "plan.tier")),
    "constant labels": Labelling(constant=(("region", 'eu-"west"'), ("deploy", "b\\lue"))),
    "grouped status": Labelling(group_status=True),
    "zero errors": Labelling(zero_errors=True),
    "everything": Labelling(
        label_names=("tenant",), constant=(("region", "eu"),), group_status=True, zero_errors=True
    ),
}

_values = st.sampled_from(["a", 'quo"te', "back\\slash", "new\nline", "ünï", ""])
_records = st.lists(
    st.tuples(
        st.sampled_from(["GET", "POST", "<overflow>"]),
        st.one_of(st.sampled_from(["/", "/items/{id}"]), _values.map(lambda v: "/" + v)),
        st.sampled_from([None, 200, 204, 404, 500, 503]),
        st.sampled_from([None, "TimeoutError"]),
        st.floats(0.0, 3.0),
        st.integers(0, 5000),
        st.integers(0, 5000),
        st.tuples(_values, _values),
    ),
    max_size=40,
)


def _recorder(labelling: Labelling, records: list[Any], cap: int = 2000) -> HttpRecorder:
    recorder = HttpRecorder(duration_buckets=(0.01, 0.1, 1.0), max_series=cap, clock=lambda: 0.0)
    recorder.present_with(labelling)
    for method, route, status, error, seconds, size_in, size_out, labels in records:
        error_type = str(status) if status is not None and status >= 500 else error
        if labelling.label_names:
            recorder.record_labeled(method, route, status, error_type,
                                    labels[: len(labelling.label_names)], seconds, size_in,
                                    size_out, 0.0)  # fmt: skip
        else:
            recorder.record(method, route, status, error_type, seconds, size_in, size_out, 0.0)
    return recorder


def _reference(metrics: list[Metric], openmetrics: bool, scope_labels: bool) -> HttpText:
    """The HTTP scope's text as the renderer writes it for the projected points."""
    data = MetricsData([ResourceMetrics(_RESOURCE, [ScopeMetrics(HTTP_SCOPE, metrics, "")], "")])
    kept: list[HttpText] = []
    render(data, openmetrics=openmetrics, options=RenderOptions(scope_labels=scope_labels),
           keep=kept.append)  # fmt: skip
    (text,) = kept
    return text


@pytest.mark.parametrize("labelling", LABELLINGS.values(), ids=LABELLINGS.keys())
@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
@settings(max_examples=60, deadline=None)
@given(records=_records, scope_labels=st.booleans(), cap=st.sampled_from([2000, 3]))
def test_the_direct_text_is_the_renderers_text(
    labelling: Labelling, openmetrics: bool, records: list[Any], scope_labels: bool, cap: int
) -> None:
    recorder = _recorder(labelling, records, cap)
    series = recorder.series()
    assert series is not None
    made = http_text(
        series, openmetrics=openmetrics, scope_labels=_SCOPE_LABELS if scope_labels else ""
    )
    assert made == _reference(recorder.to_metrics(), openmetrics, scope_labels)


def test_a_label_that_sanitises_onto_another_leaves_it_to_the_points_path() -> None:
    """``plan.tier`` and ``plan_tier`` are one Prometheus label: only the points path merges."""
    labelling = Labelling(label_names=("plan.tier",), constant=(("plan_tier", "x"),))
    recorder = _recorder(labelling, [("GET", "/", 200, None, 0.1, 1, 1, ("a", "b"))])
    series = recorder.series()
    assert series is not None
    assert http_text(series, openmetrics=False) is None


def test_the_recorder_offers_no_series_where_only_its_points_say_it_all() -> None:
    """In-progress counts and exponential histograms are written from the points."""
    exponential = HttpRecorder(exponential={"http_request_duration_seconds": (160, 20)})
    assert exponential.series() is None
    counted = HttpRecorder()
    counted.present_with(Labelling(), in_progress=dict)
    assert counted.series() is None


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def _get(app: Any, path: str, accept: str = "") -> bytes:
    headers = [(b"accept", accept.encode())] if accept else []
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": headers, "root_path": ""}  # fmt: skip
    sent = asyncio.run(drive(app, scope))
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.mark.parametrize(
    ("extra", "direct"),
    [
        ({}, True),
        ({"constant_labels": {"team": "core"}, "scope_labels": True}, True),
        ({"naming": "semconv"}, False),  # a profile that renames the built-ins
        ({"tracing": True}, True),  # text 0.0.4 carries no exemplar
    ],
    ids=["default", "constant and scope labels", "semconv", "tracing"],
)
def test_a_scrape_after_requests_writes_the_http_scope_without_its_points(
    extra: dict[str, Any], direct: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Request, scrape, many times: each scrape is a fresh render's bytes; where the series are
    shown as recorded, the HTTP points are never built for it."""
    exporter = {"type": "prometheus", "endpoint": "/metrics"}
    if "scope_labels" in extra:
        exporter["scope_labels"] = extra.pop("scope_labels")
    config = {"service_name": "svc", "set_global": False, "system_metrics": False,
              "thresholds": NO_THRESHOLDS}  # fmt: skip
    monitoring = configure_monitoring({**config, "exporters": [exporter], **extra})
    built: list[int] = []

    def counting(snapshot: Any, **options: Any) -> list[Metric]:
        built.append(len(snapshot))
        return project(snapshot, **options)

    monkeypatch.setattr(recorder_module, "project", counting)
    try:
        app = monitoring.instrument(_app)
        for n in range(1, 6):
            _get(app, f"/r{n % 3}")
            body = _get(app, "/metrics")
            built_by_scrape = len(built)
            assert body == monitoring.render_prometheus()
            points = monitoring._p.exported.collect()  # the HTTP scope from its points
            assert body == render(points, openmetrics=False, options=monitoring._render_options())
            counted = re.findall(
                rb"^http_(?:server_)?request_duration_seconds_count\{[^}]*\} (\d+)$", body, re.M
            )
            assert counted == [str(n).encode()]
            assert (built_by_scrape == 0) is direct, built
            built.clear()
    finally:
        monitoring.shutdown()


def test_the_tally_leaves_nothing_for_the_garbage_collector_to_track() -> None:
    """A fresh scrape of 50,000 series set off full collections over every live object (a third
    of its time) with a container per series kept for the render; the tally's counts, sums and
    buckets are tuples of numbers, which the collector stops tracking once it has looked (an
    outer tuple on its next pass, after its inner ones)."""
    import gc

    records = [("GET", f"/r{i}", 200 + i % 3, None, 0.01 * i, i, i, ("", "")) for i in range(300)]
    series = _recorder(Labelling(), records).series()
    assert series is not None
    gc.collect()
    gc.collect()
    tally = series.tally
    hists = (tally.durations, tally.req_sizes, tally.resp_sizes)
    assert [len(h) for h in hists] == [300, 300, 300]
    tracked = [v for h in hists for v in h.values() if gc.is_tracked(v)]
    tracked += [k for h in (*hists, tally.requests) for k in h if gc.is_tracked(k)]
    assert tracked == []
