"""Points every sink can trust: start times before the requests they count, exemplars for all."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from fluxstack_otel import configure_monitoring
from fluxstack_otel._internal.http.recorder import HttpRecorder
from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.metrics.stream import MetricStream
from support.metricdata import collected_points

_EPOCH_NS = 1_700_000_000 * 10**9


class _Clocks:
    """A monotonic clock and a wall clock that move together, by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def wall_ns(self) -> int:
        return _EPOCH_NS + int(self.now * 1e9)


def test_a_series_starts_when_its_first_request_began_however_late_the_fold() -> None:
    """One request over [99.5 s, 100 s], folded at 102 s: the series starts at 99.5 s, not 102 s."""
    clocks = _Clocks()
    recorder = HttpRecorder(clock=clocks.monotonic, wall_clock_ns=clocks.wall_ns)
    recorder.record("GET", "/a", 200, None, 0.5, 0, 10, clocks.now)
    clocks.now = 102.0  # the collection comes two seconds later and folds the queued record
    stream = MetricStream((), recorder.to_metrics, Resource({}))
    data = stream.collect()
    began = _EPOCH_NS + int(99.5 * 1e9)
    for spec in cat.HTTP_METRICS:
        for point in collected_points(data, spec.name):
            assert abs(point.start_time_unix_nano - began) < 1_000  # type: ignore[attr-defined]
            assert point.start_time_unix_nano < point.time_unix_nano  # type: ignore[attr-defined]


def test_every_collection_sees_the_sdk_exemplars_not_only_the_first() -> None:
    """A histogram recorded in a sampled span keeps its exemplar for every reader of the stream."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    tracer = TracerProvider().get_tracer("t")
    histogram = provider.get_meter("app").create_histogram("job.duration", unit="s")
    with tracer.start_as_current_span("job") as span:
        histogram.record(0.3)
        trace_id = span.get_span_context().trace_id
    stream = MetricStream([reader], None, Resource({}))
    try:
        first = stream.collect()  # the alert processor, say
        second = stream.collect()  # then a scrape
    finally:
        provider.shutdown()
    for data in (first, second):
        (point,) = collected_points(data, "job.duration")
        assert [e.trace_id for e in point.exemplars] == [trace_id]  # type: ignore[attr-defined]


def test_the_exposition_carries_sdk_exemplars_while_alerts_run() -> None:
    """After other readers collected, /metrics in OpenMetrics still shows a custom exemplar."""
    m = configure_monitoring({"set_global": False})
    tracer = TracerProvider().get_tracer("t")
    try:
        histogram = m.histogram("job.duration", unit="s")
        with tracer.start_as_current_span("job") as span:
            histogram.record(0.3)
            trace_id = format(span.get_span_context().trace_id, "032x")
        # Other readers of the stream (the alert processor) collect before the scrape does.
        for _ in range(3):
            m._p.stream.collect()
        text = m.render_prometheus(openmetrics=True).decode()
    finally:
        m.shutdown()
    assert f'trace_id="{trace_id}"' in text


def test_points_built_without_the_dataclass_init_are_the_sdks_points() -> None:
    """The projection's quick points equal, compare, replace and repr as the SDK's own do."""
    import dataclasses

    from opentelemetry.sdk.metrics.export import NumberDataPoint

    from fluxstack_otel._internal.http import histograms

    assert histograms._FAST_NUMBER  # the installed SDK's fields are the ones the builder sets
    assert histograms._FAST_HIST
    quick = histograms.number_point({"route": "/a"}, 1, 2, 3)
    made = NumberDataPoint(
        attributes={"route": "/a"}, start_time_unix_nano=1, time_unix_nano=2, value=3
    )
    assert quick == made
    assert repr(quick) == repr(made)
    assert dataclasses.replace(quick, value=4) == dataclasses.replace(made, value=4)
    assert quick.exemplars == []
    assert quick.exemplars is not histograms.number_point({}, 1, 2, 3).exemplars
