"""The HTTP recorder's series projected onto the six catalogue metrics, as OpenTelemetry points.

A recorded series is one ``(method, route, status, error_type)`` key; each metric is a projection
of those keys (``http_requests_total`` sums over status and error, and so on), so several series
can make one point. The points are standard cumulative ``Sum`` and ``Histogram`` points that every
OTel exporter reads.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import NamedTuple, TypeVar

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Metric,
    NumberDataPoint,
    Sum,
)

from fluxstack_otel._internal.http.histograms import (
    HistAcc,
    add_exemplars,
    add_hist,
    hist_metric,
    number_point,
)
from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.metrics.exponential import (
    DEFAULT_MAX_SIZE,
    ExponentialSnapshot,
)
from fluxstack_otel._internal.runtime.gil import YIELD_MASK, yield_now

__all__ = [
    "DEFAULT_LABELLING",
    "GROUPED",
    "HTTP_SPECS",
    "Labelling",
    "Projected",
    "SeriesKey",
    "SeriesSnapshot",
    "accumulate",
    "key_labels",
    "project",
]

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

# (method, route, status, error_type), and with ``labels`` configured the tuple of their values
# at the end: one more element that the default configuration does not pay for.
SeriesKey = (
    tuple[str, str, int | None, str | None]
    | tuple[str, str, int | None, str | None, tuple[str, ...]]
)


class SeriesSnapshot(NamedTuple):
    """A consistent copy of one series' accumulators, taken under the lock."""

    key: SeriesKey
    start_ns: int
    requests: int
    """Requests in the series (the sum of the duration buckets)."""
    dur_buckets: tuple[int, ...]
    dur_sum: float
    req_buckets: tuple[int, ...]
    req_sum: int
    resp_buckets: tuple[int, ...]
    resp_sum: int
    exemplars: tuple[_Exemplar | None, ...] | None = None
    dur_exp: ExponentialSnapshot | None = None
    """The duration's exponential buckets, where they are kept (``histograms: exponential``)."""
    req_exp: ExponentialSnapshot | None = None
    resp_exp: ExponentialSnapshot | None = None


class Labelling(NamedTuple):
    """How the series are labelled on the way out: options that cost nothing per request."""

    label_names: tuple[str, ...] = ()
    """The keys of the per-request labels (``labels``), in the order their values are recorded."""
    constant: tuple[tuple[str, str], ...] = ()
    """``constant_labels``: added to every point of the HTTP metrics."""
    group_status: bool = False
    """``group_status_codes``: ``status_code`` (and a status's ``error_type``) as ``2xx``..."""
    zero_errors: bool = False
    """``zero_error_series``: an ``http_errors_total`` point at 0 per (method, route) without
    errors, so error ratios read 0 rather than no data."""


DEFAULT_LABELLING = Labelling()
# "2xx" for every status code: made once, not per point.
GROUPED = {code: f"{code // 100}xx" for code in range(100, 600)}


class Projected(NamedTuple):
    """The series added up by projected key, per metric, before any point is built.

    Counters map a key to ``[count, start_ns]``, histograms to a ``HistAcc``. A key is the
    metric's label values in its spec's order, then the tuple of per-request label values.
    """

    requests: dict[tuple[object, ...], list[int]] | None
    responses: dict[tuple[object, ...], list[int]] | None
    errors: dict[tuple[object, ...], list[int]] | None
    durations: dict[tuple[object, ...], HistAcc] | None
    req_sizes: dict[tuple[object, ...], HistAcc] | None
    resp_sizes: dict[tuple[object, ...], HistAcc] | None
    """None: a metric not wanted."""


def project(
    snapshot: Sequence[SeriesSnapshot],
    *,
    duration_bounds: tuple[float, ...],
    size_bounds: tuple[float, ...],
    now_ns: int,
    names: Collection[str] | None = None,
    labelling: Labelling = DEFAULT_LABELLING,
    in_progress: Mapping[tuple[str, str], int] | None = None,
    in_progress_start_ns: int = 0,
    max_sizes: Mapping[str, int] | None = None,
) -> list[Metric]:
    """The catalogue metrics of ``snapshot``, cumulative, stamped ``now_ns``.

    Args:
        snapshot: The recorder's series (``HttpRecorder.snapshot``).
        duration_bounds: The duration histogram's bucket bounds.
        size_bounds: The size histograms' bucket bounds.
        now_ns: The points' time (Unix ns).
        names: Only these metrics; None: all six (and the in-progress gauge when counted).
        labelling: How the series are labelled.
        in_progress: ``in_progress: true``: requests in flight per (method, route); every
            (method, route) of ``snapshot`` without one reads 0.
        in_progress_start_ns: The in-progress gauge's start time.
        max_sizes: The exponential histograms' bucket caps, by metric (merged points keep to it).
    """
    p = accumulate(snapshot, names=names, labelling=labelling, max_sizes=max_sizes)
    label = _Labeller(labelling)
    out: list[Metric] = []
    for spec, counts in ((cat.HTTP_REQUESTS, p.requests), (cat.HTTP_RESPONSES, p.responses),
                         (cat.HTTP_ERRORS, p.errors)):  # fmt: skip
        if counts is not None:
            out.append(_sum_metric(spec, counts, now_ns, label))
    for spec, hists, bounds in ((cat.HTTP_REQUEST_DURATION, p.durations, duration_bounds),
                                (cat.HTTP_REQUEST_SIZE, p.req_sizes, size_bounds),
                                (cat.HTTP_RESPONSE_SIZE, p.resp_sizes, size_bounds)):  # fmt: skip
        if hists is not None:
            out.append(hist_metric(spec, hists, bounds, now_ns, label))
    if in_progress is not None and (names is None or cat.HTTP_IN_PROGRESS.name in names):
        out.append(_in_progress(snapshot, in_progress, in_progress_start_ns, now_ns, label))
    return out


def accumulate(
    snapshot: Sequence[SeriesSnapshot],
    *,
    names: Collection[str] | None = None,
    labelling: Labelling = DEFAULT_LABELLING,
    max_sizes: Mapping[str, int] | None = None,
) -> Projected:
    """The series of ``snapshot`` added up by projected key (``project``'s arguments)."""
    want = {spec.name for spec in HTTP_SPECS if names is None or spec.name in names}
    w_requests, w_responses, w_errors, w_durations, w_req_sizes, w_resp_sizes = (
        spec.name in want for spec in HTTP_SPECS
    )
    grouped = GROUPED if labelling.group_status else None
    caps = max_sizes or {}
    sizes = tuple(
        caps.get(spec.name, DEFAULT_MAX_SIZE)
        for spec in (cat.HTTP_REQUEST_DURATION, cat.HTTP_REQUEST_SIZE, cat.HTTP_RESPONSE_SIZE)
    )
    requests: dict[tuple[object, ...], list[int]] = {}
    responses: dict[tuple[object, ...], list[int]] = {}
    errors: dict[tuple[object, ...], list[int]] = {}
    durations: dict[tuple[object, ...], HistAcc] = {}
    req_sizes: dict[tuple[object, ...], HistAcc] = {}
    resp_sizes: dict[tuple[object, ...], HistAcc] = {}
    for i, s in enumerate(snapshot):
        if not i & YIELD_MASK:
            yield_now()  # a background thread's long loop: the app's threads get their turn
        method, route, code, status, error_type, extra = key_labels(s.key, grouped)
        mr = (method, route, extra)
        if w_requests:
            _add_count(requests, mr, s.requests, s.start_ns)
        if w_req_sizes:
            add_hist(
                req_sizes, mr, s.requests, s.req_buckets, s.req_sum, s.start_ns, s.req_exp, sizes[1]
            )
        mrs = (method, route, status, extra)
        if w_durations:
            add_hist(
                durations,
                mrs,
                s.requests,
                s.dur_buckets,
                s.dur_sum,
                s.start_ns,
                s.dur_exp,
                sizes[0],
            )
            if s.exemplars is not None:
                add_exemplars(durations[mrs], s.exemplars)
        if code is not None:
            if w_responses:
                _add_count(responses, mrs, s.requests, s.start_ns)
            if w_resp_sizes:
                add_hist(resp_sizes, mrs, s.requests, s.resp_buckets, s.resp_sum, s.start_ns,
                          s.resp_exp, sizes[2])  # fmt: skip
        if error_type is not None and w_errors:
            _add_count(errors, (method, route, status, error_type, extra), s.requests, s.start_ns)
    if labelling.zero_errors and w_errors:
        _zero_errors(snapshot, errors)

    return Projected(
        requests if w_requests else None,
        responses if w_responses else None,
        errors if w_errors else None,
        durations if w_durations else None,
        req_sizes if w_req_sizes else None,
        resp_sizes if w_resp_sizes else None,
    )


def key_labels(
    key: SeriesKey, grouped: Mapping[int, str] | None
) -> tuple[str, str, int | None, object, str | None, tuple[str, ...]]:
    """A series key's method, route, status code, status label, error type and per-request label
    values (``labels``, at the end of the key; () without), the status grouped (``2xx``) where
    ``grouped`` maps codes."""
    method, route, code, error_type = key[0], key[1], key[2], key[3]
    extra: tuple[str, ...] = key[4] if len(key) > 4 else ()
    # The overflow keys, with or without a status, are one series per metric.
    status: _Status = OVERFLOW if method == OVERFLOW else code
    if grouped is not None and isinstance(status, int):
        if error_type is not None and error_type == str(status):
            error_type = grouped.get(status, error_type)
        status = grouped.get(status, status)
    return method, route, code, status, error_type, extra


def _zero_errors(
    snapshot: Sequence[SeriesSnapshot], errors: dict[tuple[object, ...], list[int]]
) -> None:
    """A 0 point per (method, route, labels) that has no error series of its own.

    Only where none exists, so the metric never holds more series than the recorder has keys
    (and so stays within the cap); the point carries no ``status_code`` or ``error_type``.
    """
    with_errors = {(k[0], k[1], k[4]) for k in errors}
    for s in snapshot:
        key = s.key
        group = (key[0], key[1], key[4] if len(key) > 4 else ())
        if group in with_errors:
            continue
        zero = (group[0], group[1], None, None, group[2])
        acc = errors.get(zero)
        if acc is None:
            errors[zero] = [0, s.start_ns]
        else:
            acc[1] = min(acc[1], s.start_ns)


def _in_progress(
    snapshot: Sequence[SeriesSnapshot],
    counts: Mapping[tuple[str, str], int],
    start_ns: int,
    now_ns: int,
    label: _Labeller,
) -> Metric:
    values: dict[tuple[object, ...], int] = {(s.key[0], s.key[1], ()): 0 for s in snapshot}
    for (method, route), n in counts.items():
        values[(method, route, ())] = n
    points = [
        number_point(label(cat.HTTP_IN_PROGRESS, key), start_ns, now_ns, n)
        for key, n in values.items()
    ]
    return _sum(cat.HTTP_IN_PROGRESS, points, monotonic=False)


class _Labeller:
    """A point's attributes from its key: the spec's labels, the per-request ones, the constants."""

    __slots__ = ("_constant", "_names")

    def __init__(self, labelling: Labelling) -> None:
        self._names = labelling.label_names
        self._constant = dict(labelling.constant)

    def __call__(self, spec: cat.MetricSpec, key: tuple[object, ...]) -> dict[str, str]:
        # The key is the spec's label values, then the tuple of per-request label values.
        n = len(spec.labels)
        out = {
            name: str(value)
            for name, value in zip(spec.labels, key[:n], strict=False)
            if value is not None
        }
        extra = key[n]
        if extra:
            out.update(zip(self._names, extra, strict=True))  # type: ignore[call-overload]
        if self._constant:
            out.update(self._constant)
        return out


def _add_count(into: dict[_K, list[int]], key: _K, count: int, start_ns: int) -> None:
    acc = into.get(key)
    if acc is None:
        into[key] = [count, start_ns]
    else:
        acc[0] += count
        acc[1] = min(acc[1], start_ns)


def _sum_metric(
    spec: cat.MetricSpec, series: dict[_K, list[int]], now_ns: int, label: _Labeller
) -> Metric:
    points = [
        number_point(label(spec, key), start, now_ns, count)
        for key, (count, start) in series.items()
    ]
    return _sum(spec, points, monotonic=True)


def _sum(spec: cat.MetricSpec, points: list[NumberDataPoint], *, monotonic: bool) -> Metric:
    """The catalogue metric ``spec`` as a cumulative sum of ``points``."""
    cumulative = AggregationTemporality.CUMULATIVE
    data = Sum(data_points=points, aggregation_temporality=cumulative, is_monotonic=monotonic)
    return Metric(name=spec.name, description=spec.help, unit=spec.unit, data=data)
