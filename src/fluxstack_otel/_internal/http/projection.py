"""The HTTP recorder's series projected onto the six catalogue metrics, as OpenTelemetry points.

A recorded series is one ``(method, route, status, error_type)`` key; each metric is a projection
of those keys (``http_requests_total`` sums over status and error, and so on), so several series
can make one point. The points are standard cumulative ``Sum`` and ``Histogram`` points that every
OTel exporter reads.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, TypeVar, cast

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    Sum,
)

from fluxstack_otel._internal.metrics import catalog as cat

if TYPE_CHECKING:
    from fluxstack_otel._internal.http.recorder import SeriesSnapshot

__all__ = ["HTTP_SPECS", "project"]

HTTP_SPECS = (
    cat.HTTP_REQUESTS,
    cat.HTTP_RESPONSES,
    cat.HTTP_ERRORS,
    cat.HTTP_REQUEST_DURATION,
    cat.HTTP_REQUEST_SIZE,
    cat.HTTP_RESPONSE_SIZE,
)
"""The six HTTP metrics, in the order ``project`` returns them."""

OVERFLOW = cat.OVERFLOW
_K = TypeVar("_K", bound=tuple[object, ...])
_Status = int | str | None  # a status code, the overflow's label, or no response
# (duration, Unix time in ns, trace id, span id): the latest exemplar of one bucket
_Exemplar = tuple[float, int, int, int]

# The recorder keeps no min/max (they would cost compares on every request and cannot be turned
# into deltas). The SDK types say float, but None is what OTLP encodes as "absent", and every
# consumer in this package treats None as not recorded.
_NOT_RECORDED: float = cast(float, None)


def project(
    snapshot: Sequence[SeriesSnapshot],
    *,
    duration_bounds: tuple[float, ...],
    size_bounds: tuple[float, ...],
    now_ns: int,
    names: Collection[str] | None = None,
) -> list[Metric]:
    """The catalogue metrics of ``snapshot``, cumulative, stamped ``now_ns``.

    Args:
        snapshot: The recorder's series (``HttpRecorder.snapshot``).
        duration_bounds: The duration histogram's bucket bounds.
        size_bounds: The size histograms' bucket bounds.
        now_ns: The points' time (Unix ns).
        names: Only these metrics; None: all six.
    """
    want = {spec.name for spec in HTTP_SPECS if names is None or spec.name in names}
    w_requests, w_responses, w_errors, w_durations, w_req_sizes, w_resp_sizes = (
        spec.name in want for spec in HTTP_SPECS
    )
    requests: dict[tuple[str, str], list[int]] = {}
    responses: dict[tuple[str, str, _Status], list[int]] = {}
    errors: dict[tuple[str, str, _Status, str], list[int]] = {}
    durations: dict[tuple[str, str, _Status], _HistAcc] = {}
    req_sizes: dict[tuple[str, str], _HistAcc] = {}
    resp_sizes: dict[tuple[str, str, _Status], _HistAcc] = {}
    for s in snapshot:
        method, route, code, error_type = s.key
        # The overflow keys, with or without a status, are one series per metric.
        status: _Status = OVERFLOW if method == OVERFLOW else code
        mr = (method, route)
        if w_requests:
            _add_count(requests, mr, s.requests, s.start_ns)
        if w_req_sizes:
            _add_hist(req_sizes, mr, s.requests, s.req_buckets, s.req_sum, s.start_ns)
        mrs = (method, route, status)
        if w_durations:
            _add_hist(durations, mrs, s.requests, s.dur_buckets, s.dur_sum, s.start_ns)
            if s.exemplars is not None:
                _add_exemplars(durations[mrs], s.exemplars)
        if code is not None:
            if w_responses:
                _add_count(responses, mrs, s.requests, s.start_ns)
            if w_resp_sizes:
                _add_hist(resp_sizes, mrs, s.requests, s.resp_buckets, s.resp_sum, s.start_ns)
        if error_type is not None and w_errors:
            _add_count(errors, (method, route, status, error_type), s.requests, s.start_ns)

    out: list[Metric] = []
    if w_requests:
        out.append(_sum_metric(cat.HTTP_REQUESTS, requests, now_ns))
    if w_responses:
        out.append(_sum_metric(cat.HTTP_RESPONSES, responses, now_ns))
    if w_errors:
        out.append(_sum_metric(cat.HTTP_ERRORS, errors, now_ns))
    if w_durations:
        spec = cat.HTTP_REQUEST_DURATION
        out.append(_hist_metric(spec, durations, duration_bounds, now_ns))
    if w_req_sizes:
        spec = cat.HTTP_REQUEST_SIZE
        out.append(_hist_metric(spec, req_sizes, size_bounds, now_ns))
    if w_resp_sizes:
        spec = cat.HTTP_RESPONSE_SIZE
        out.append(_hist_metric(spec, resp_sizes, size_bounds, now_ns))
    return out


class _HistAcc:
    __slots__ = ("buckets", "count", "exemplars", "start_ns", "sum")

    def __init__(self, buckets: list[int], start_ns: int) -> None:
        self.count = 0
        self.sum: float = 0.0
        self.buckets = buckets
        self.start_ns = start_ns
        self.exemplars: list[_Exemplar | None] | None = None


def _add_exemplars(acc: _HistAcc, slots: tuple[_Exemplar | None, ...]) -> None:
    """Merge a series' exemplars into a projected point's: the latest per bucket wins."""
    if acc.exemplars is None:
        acc.exemplars = list(slots)
        return
    mine = acc.exemplars
    for i, theirs in enumerate(slots):
        if theirs is None:
            continue
        current = mine[i]
        if current is None or theirs[1] > current[1]:
            mine[i] = theirs


def _exemplar_points(acc: _HistAcc) -> list[Exemplar]:
    if acc.exemplars is None:
        return []
    return [
        Exemplar(None, value, at, span_id, trace_id)
        for value, at, trace_id, span_id in filter(None, acc.exemplars)
    ]


def _add_count(into: dict[_K, list[int]], key: _K, count: int, start_ns: int) -> None:
    acc = into.get(key)
    if acc is None:
        into[key] = [count, start_ns]
    else:
        acc[0] += count
        acc[1] = min(acc[1], start_ns)


def _add_hist(
    into: dict[_K, _HistAcc],
    key: _K,
    count: int,
    buckets: tuple[int, ...],
    total: float,
    start_ns: int,
) -> None:
    acc = into.get(key)
    if acc is None:  # the common case: one recorded series makes one point
        acc = into[key] = _HistAcc(list(buckets), start_ns)
        acc.count = count
        acc.sum = float(total)  # a float, as the sum of an accumulation from 0.0 would be
        return
    acc.start_ns = min(acc.start_ns, start_ns)
    acc.count += count
    acc.sum += total
    b = acc.buckets
    for i, n in enumerate(buckets):
        if n:
            b[i] += n


def _attributes(spec: cat.MetricSpec, key: tuple[object, ...]) -> dict[str, str]:
    return {
        name: str(value) for name, value in zip(spec.labels, key, strict=False) if value is not None
    }


def _sum_metric(spec: cat.MetricSpec, series: dict[_K, list[int]], now_ns: int) -> Metric:
    points = [
        NumberDataPoint(
            attributes=_attributes(spec, key),
            start_time_unix_nano=start,
            time_unix_nano=now_ns,
            value=count,
        )
        for key, (count, start) in series.items()
    ]
    return Metric(
        name=spec.name,
        description=spec.help,
        unit=spec.unit,
        data=Sum(
            data_points=points,
            aggregation_temporality=AggregationTemporality.CUMULATIVE,
            is_monotonic=True,
        ),
    )


def _hist_metric(
    spec: cat.MetricSpec,
    series: dict[_K, _HistAcc],
    bounds: tuple[float, ...],
    now_ns: int,
) -> Metric:
    points = [
        HistogramDataPoint(
            attributes=_attributes(spec, key),
            start_time_unix_nano=acc.start_ns,
            time_unix_nano=now_ns,
            count=acc.count,
            sum=acc.sum,
            bucket_counts=list(acc.buckets),
            explicit_bounds=list(bounds),
            min=_NOT_RECORDED,
            max=_NOT_RECORDED,
            exemplars=_exemplar_points(acc),
        )
        for key, acc in series.items()
    ]
    return Metric(
        name=spec.name,
        description=spec.help,
        unit=spec.unit,
        data=Histogram(
            data_points=points, aggregation_temporality=AggregationTemporality.CUMULATIVE
        ),
    )
