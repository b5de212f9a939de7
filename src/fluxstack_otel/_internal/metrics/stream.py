"""The metric stream: one ``MetricsData`` per collection, SDK metrics plus the HTTP recorder.

Every sink (Prometheus scrape, JSON, console, file, OTLP, the alert processor) reads a
``MetricSource``: this stream, the multiprocess host view, or either presented through the views
(``PresentedStream``). The SDK side is cumulative ``InMemoryMetricReader``s (the system metrics'
own provider, and the provider of custom and third-party metrics), so the SDK aggregates once no
matter how many sinks there are. Sinks that want delta temporality get a ``DeltaView``, which
subtracts the previous cumulative snapshot it saw, per series, for SDK and HTTP series alike:
each export carries exactly what happened since the previous export of that sink. As in
OpenTelemetry's delta temporality preference, counters and histograms become deltas; up-down
counters and gauges stay as they are.

What the stream remembers across collections (memory.py): the latest SDK exemplars of each
series, so that every sink sees them whichever collected first, and which custom and
third-party series have been idle for ``retention_period``, so that they leave the exports.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Histogram,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricsData,
    NumberDataPoint,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from fluxstack_otel._internal.metrics.assemble import map_scopes, one_resource, scope_of
from fluxstack_otel._internal.metrics.dual import exponential_of, subtract_exponential
from fluxstack_otel._internal.metrics.memory import NEVER_IDLE, ExemplarMemory, Retention
from fluxstack_otel._internal.metrics.views import HTTP_SCOPE_NAME
from fluxstack_otel._internal.runtime.tick import Round

__all__ = ["HTTP_SCOPE", "DeltaView", "MetricSource", "MetricStream", "PresentedStream"]

HTTP_SCOPE = InstrumentationScope(HTTP_SCOPE_NAME)


class MetricSource(Protocol):
    """What every sink reads: collections of cumulative metric data, on demand."""

    @property
    def resource(self) -> Resource:
        """The resource of this source's data."""
        ...

    def set_resource(self, resource: Resource) -> None:
        """Replace the resource (a forked worker gets its own ``service.instance.id``)."""
        ...

    def collect(self, names: Collection[str] | None = None) -> MetricsData:
        """Every metric now, cumulative; ``names`` may limit the built-in HTTP metrics built."""
        ...

    def collect_in(self, shared: Round, names: Collection[str] | None = None) -> MetricsData:
        """Every metric, collected once for all the jobs of the round ``shared`` (read-only).

        ``names`` empty: the collection without the built-in HTTP metrics (what a sink that
        reuses the HTTP scope's text reads), also once per round; None: everything.
        """
        ...

    def made_at(self, shared: Round) -> int | None:
        """The HTTP recorder's version read just before the round's full collection was made
        (what its HTTP scope is at least as new as; None: not known)."""
        ...


class MetricStream:
    """Collects the merged, cumulative metric data on demand.

    Args:
        readers: The SDK readers whose data the stream carries, in order (none: no SDK metrics).
        http_metrics: Returns the HTTP recorder's metrics, given the names wanted or None for
            all (``HttpRecorder.to_metrics``; None: HTTP metrics are off).
        resource: The resource every collection carries.
        version: The HTTP recorder's ``version``, read before a round's full collection
            (``made_at``); None: not known.
    """

    def __init__(
        self,
        readers: Sequence[InMemoryMetricReader],
        http_metrics: Callable[[Collection[str] | None], list[Metric]] | None,
        resource: Resource,
        *,
        retention: float | None = None,
        wall_clock_ns: Callable[[], int] = time.time_ns,
        version: Callable[[], int | None] | None = None,
    ) -> None:
        self._readers = tuple(readers)
        self._http_metrics = http_metrics
        self._version = version
        self._resource = resource
        self._exemplars = ExemplarMemory()
        self._retention = None if retention is None else Retention(retention, wall_clock_ns)
        self._light = object()  # the round's key of the collection without the HTTP metrics

    @property
    def resource(self) -> Resource:
        """The resource of this stream's data."""
        return self._resource

    def set_resource(self, resource: Resource) -> None:
        """Replace the resource (a forked worker gets its own ``service.instance.id``)."""
        self._resource = resource

    def collect(self, names: Collection[str] | None = None) -> MetricsData:
        """Return every metric as cumulative OTel data (thread-safe).

        Args:
            names: A reader that needs only some metrics (the alert rules) names them: the HTTP
                metrics not named are not built. Other metrics come whole (the SDK collects its
                instruments together); None builds everything.
        """
        scopes: list[ScopeMetrics] = []
        if self._http_metrics is not None:
            scopes.append(scope_of(HTTP_SCOPE, self._http_metrics(names)))
        for reader in self._readers:
            data = reader.get_metrics_data()
            if data is not None:
                for rm in data.resource_metrics:
                    for sm in rm.scope_metrics:
                        kept = self._exemplars.keep(sm)
                        if self._retention is not None and sm.scope.name not in NEVER_IDLE:
                            kept = self._retention.apply(kept)
                        scopes.append(kept)
        return one_resource(self._resource, scopes)

    def collect_in(self, shared: Round, names: Collection[str] | None = None) -> MetricsData:
        """Every metric (``names`` empty: none of the HTTP ones), once for the round ``shared``.

        Only None and an empty ``names`` are shared: any other reads everything, as None does.
        """
        if names is None or names:
            return shared.share(self, self._stamped)[0]
        return shared.share(self._light, lambda: self.collect(()))

    def made_at(self, shared: Round) -> int | None:
        """The recorder's version read just before the round's full collection was made."""
        return shared.share(self, self._stamped)[1]

    def _stamped(self) -> tuple[MetricsData, int | None]:
        # A job of the round may make the collection before another reads the version: the part
        # a sink keeps from it is kept under this reading, never under a later one.
        stamp = None if self._version is None else self._version()
        return self.collect(), stamp


class PresentedStream:
    """A source whose collections leave through ``present`` (the views), for the exporters.

    Args:
        inner: The source it reads (the monitoring's own stream, or the multiprocess host view).
        present: Shapes one collection (``Presentation.present``).
    """

    def __init__(self, inner: MetricSource, present: Callable[[MetricsData], MetricsData]) -> None:
        self._inner = inner
        self._present = present
        self._light = object()  # as MetricStream's

    @property
    def resource(self) -> Resource:
        """The inner source's resource."""
        return self._inner.resource

    def set_resource(self, resource: Resource) -> None:
        """Replace the inner source's resource."""
        self._inner.set_resource(resource)

    def collect(self, names: Collection[str] | None = None) -> MetricsData:
        """Collect from the inner source and shape the built-ins (``names`` is passed on)."""
        return self._present(self._inner.collect(names))

    def collect_in(self, shared: Round, names: Collection[str] | None = None) -> MetricsData:
        """The round's collection of the inner source, shaped once for the round."""
        key = self if names is None or names else self._light
        return shared.share(key, lambda: self._present(self._inner.collect_in(shared, names)))

    def made_at(self, shared: Round) -> int | None:
        """The inner source's ``made_at``: the views change no count."""
        return self._inner.made_at(shared)


_SeriesId = tuple[str, str, frozenset[tuple[str, object]]]
_Points = dict[_SeriesId, NumberDataPoint | HistogramDataPoint | ExponentialHistogramDataPoint]
"""The last reading of each series a view has seen, by series."""


DeltaFor = Callable[[str, Metric], bool]
"""Whether a metric of a scope goes out as deltas (its data is a monotonic sum or a histogram)."""


def _counters_and_histograms(scope: str, metric: Metric) -> bool:
    return True


class DeltaView:
    """Converts cumulative collections into deltas since this view's previous collection.

    Gauges and up-down counters pass through. A series whose start time changed (restarted, or
    evicted and back) starts over from its full value, as OTel's delta semantics expect.

    Args:
        source: The source it reads.
        delta_for: Which counters and histograms become deltas (default: all of them); a reader
            that prefers delta for some instrument kinds only says so here.
    """

    def __init__(
        self, source: MetricSource, delta_for: DeltaFor = _counters_and_histograms
    ) -> None:
        self._stream = source
        self._delta_for = delta_for
        self._previous: _Points = {}
        self._lock = threading.Lock()

    def collect(self, shared: Round | None = None) -> MetricsData:
        """Collect from the stream and return the deltas since the last call."""
        data, commit = self.peek(shared)
        commit()
        return data

    def peek(self, shared: Round | None = None) -> tuple[MetricsData, Callable[[], None]]:
        """The deltas since the last committed collection, and the function that commits this one.

        A pushing sink commits only after a successful export: a failed export's counts are then
        part of the next delta instead of being lost. One caller at a time (a sink's own thread).
        With ``shared``, the deltas are taken from the round's collection (the cumulative one the
        round's other sinks read), not from a collection of their own.
        """
        data = self._stream.collect() if shared is None else self._stream.collect_in(shared)
        with self._lock:
            out, current = self._to_delta(data)

        def commit() -> None:
            with self._lock:
                self._previous = current

        return out, commit

    def _to_delta(self, data: MetricsData) -> tuple[MetricsData, _Points]:
        previous = self._previous
        current: _Points = {}

        def deltas_of(sm: ScopeMetrics) -> ScopeMetrics:
            metrics = [
                _delta_metric(sm.scope.name, m, previous, current)
                if self._delta_for(sm.scope.name, m)
                else m
                for m in sm.metrics
            ]
            return replace(sm, metrics=metrics)

        return map_scopes(data, deltas_of), current


_Point = TypeVar("_Point", NumberDataPoint, HistogramDataPoint, ExponentialHistogramDataPoint)


def _delta_metric(scope: str, metric: Metric, previous: _Points, current: _Points) -> Metric:
    data = metric.data
    # Sums that can go down (up-down counters) stay cumulative, as OpenTelemetry's delta
    # temporality preference has them: a delta of a level means little to a backend.
    if (
        not isinstance(data, Sum | Histogram | ExponentialHistogram)
        or data.aggregation_temporality != AggregationTemporality.CUMULATIVE
        or (isinstance(data, Sum) and not data.is_monotonic)
    ):
        return metric
    if isinstance(data, Sum):
        points: list[Any] = _deltas(scope, metric, data.data_points, previous, current, _sum_delta)
    elif isinstance(data, Histogram):
        points = _deltas(scope, metric, data.data_points, previous, current, _histogram_delta)
    else:
        points = _deltas(scope, metric, data.data_points, previous, current, subtract_exponential)
    # The three kinds change the same two fields (a replace over their union is beyond mypy).
    kind: Any = data
    delta = replace(kind, data_points=points, aggregation_temporality=AggregationTemporality.DELTA)
    return replace(metric, data=delta)


def _deltas(
    scope: str,
    metric: Metric,
    points: Sequence[_Point],
    previous: _Points,
    current: _Points,
    subtract: Callable[[_Point, _Point], _Point],
) -> list[_Point]:
    """Each point minus the previous reading of its series, where that reading is of the same
    kind and the same start; otherwise the point as it is (a new or restarted series)."""
    out: list[_Point] = []
    for p in points:
        sid = (scope, metric.name, frozenset((p.attributes or {}).items()))
        current[sid] = p
        prev = previous.get(sid)
        if isinstance(prev, type(p)) and prev.start_time_unix_nano == p.start_time_unix_nano:
            out.append(subtract(p, prev))
        else:
            out.append(p)
    return out


def _sum_delta(p: NumberDataPoint, prev: NumberDataPoint) -> NumberDataPoint:
    return replace(p, start_time_unix_nano=prev.time_unix_nano, value=p.value - prev.value)


def _histogram_delta(hp: HistogramDataPoint, prev: HistogramDataPoint) -> HistogramDataPoint:
    if len(prev.bucket_counts) != len(hp.bucket_counts):
        return hp  # the boundaries changed: no difference to take
    dual = {"exponential": subtract_exponential(hp, prev)} if exponential_of(hp) else {}
    return replace(
        hp,
        start_time_unix_nano=prev.time_unix_nano,
        count=hp.count - prev.count,
        sum=hp.sum - prev.sum,
        bucket_counts=_subtract(hp.bucket_counts, prev.bucket_counts),
        min=_absent(),
        max=_absent(),
        **dual,
    )


def _subtract(a: Sequence[int], b: Sequence[int]) -> list[int]:
    return [x - y for x, y in zip(a, b, strict=True)]


def _absent() -> float:
    # min/max of a difference of cumulative histograms are unknown; None encodes "absent" in OTLP.
    return None  # type: ignore[return-value]
