"""Histograms that carry both bucket schemes: classic (explicit bounds) and base-2 exponential.

The recorder keeps an exponential histogram beside the classic buckets where a View (or
``histograms: exponential``) asks for one. Inside the package the point stays a ``Histogram``
point whose ``exponential`` holds the exponential buckets (``DualHistogramDataPoint``), so every
reader of classic buckets (alerts, the dashboard, the multiprocess merge) keeps working and those
that know better read the finer data. On the way out (``Presentation``), a stream whose View
chose ``ExponentialBucketHistogramAggregation`` becomes a standard ``ExponentialHistogram``
(what OTLP and any OpenTelemetry exporter expect) whose points keep the classic buckets as
``classic`` (``ClassicExponentialPoint``): the Prometheus text formats render those, and the
protobuf exposition sends both, so a scraper without native histograms still works.

Enters: histogram points. Leaves: histogram points of the other shape, merged or subtracted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, cast

from opentelemetry.sdk.metrics.export import (
    Buckets,
    ExponentialHistogramDataPoint,
    HistogramDataPoint,
)

from fluxstack_otel._internal.metrics.exponential import (
    DEFAULT_MAX_SIZE,
    MAX_SCALE,
    ExponentialSnapshot,
    fitted,
    merged,
    subtracted,
)

__all__ = [
    "ClassicExponentialPoint",
    "DualHistogramDataPoint",
    "classic_of",
    "classic_only",
    "exponential_of",
    "merge_exponential",
    "subtract_exponential",
    "to_exponential",
]


# min/max of a difference of cumulative histograms are unknown; None encodes "absent" in OTLP.
_ABSENT: float = cast(float, None)


@dataclass(frozen=True)
class DualHistogramDataPoint(HistogramDataPoint):
    """A classic histogram point that also holds the same values' exponential buckets."""

    exponential: ExponentialSnapshot | None = None
    max_size: int = DEFAULT_MAX_SIZE


@dataclass(frozen=True)
class ClassicExponentialPoint(ExponentialHistogramDataPoint):
    """An exponential histogram point that also holds the same values' classic buckets."""

    classic: HistogramDataPoint | None = None
    max_size: int = DEFAULT_MAX_SIZE


def exponential_of(point: Any) -> ExponentialSnapshot | None:
    """The exponential buckets of a histogram point of either shape (None: classic only).

    Negative buckets have no place in a duration or a size: a point with any is read as having
    no exponential data.
    """
    if isinstance(point, ExponentialHistogramDataPoint):
        if any(point.negative.bucket_counts):
            return None
        return ExponentialSnapshot(
            point.scale,
            point.positive.offset,
            tuple(point.positive.bucket_counts),
            point.zero_count,
        )
    snap = getattr(point, "exponential", None)
    return snap if isinstance(snap, ExponentialSnapshot) else None


def _common(p: HistogramDataPoint | ExponentialHistogramDataPoint) -> dict[str, Any]:
    """The fields both histogram point types share."""
    return {
        "attributes": p.attributes,
        "start_time_unix_nano": p.start_time_unix_nano,
        "time_unix_nano": p.time_unix_nano,
        "count": p.count,
        "sum": p.sum,
        "min": p.min,
        "max": p.max,
        "exemplars": p.exemplars,
    }


def classic_only(p: HistogramDataPoint) -> HistogramDataPoint:
    """``p`` without exponential buckets (a stream whose view kept explicit buckets)."""
    if not isinstance(p, DualHistogramDataPoint):
        return p
    return HistogramDataPoint(
        **_common(p), bucket_counts=p.bucket_counts, explicit_bounds=p.explicit_bounds
    )


def classic_of(point: ExponentialHistogramDataPoint) -> HistogramDataPoint:
    """The classic form of an exponential point: its ``classic`` where it carries one, else its
    count and sum in the one ``+Inf`` bucket (as Prometheus' Go client exposes a native-only
    histogram in the text format, so ``_count`` and ``_sum`` still answer)."""
    classic = getattr(point, "classic", None)
    if isinstance(classic, HistogramDataPoint):
        return classic
    return HistogramDataPoint(**_common(point), bucket_counts=[point.count], explicit_bounds=[])


def to_exponential(
    point: DualHistogramDataPoint, limits: tuple[int, int] = (DEFAULT_MAX_SIZE, MAX_SCALE)
) -> ClassicExponentialPoint:
    """The exponential form of a dual point, its classic buckets kept as ``classic``.

    Args:
        point: The dual point.
        limits: The stream's (max_size, max_scale): buckets merge down until they fit.
    """
    snap = point.exponential
    assert snap is not None
    snap = fitted(snap, *limits)
    return ClassicExponentialPoint(
        **_common(point),
        scale=snap.scale,
        zero_count=snap.zero_count,
        positive=Buckets(offset=snap.offset, bucket_counts=list(snap.counts)),
        negative=Buckets(offset=0, bucket_counts=[]),
        flags=0,
        classic=classic_only(point),
        max_size=limits[0],
    )


def merge_exponential(
    into: ExponentialSnapshot | None, other: ExponentialSnapshot | None, max_size: int
) -> ExponentialSnapshot | None:
    """Both snapshots' values in one (None when either side has no exponential data)."""
    if into is None or other is None:
        return None
    return merged(into, other, max_size)


def subtract_exponential(later: Any, earlier: Any) -> Any:
    """``later`` minus ``earlier`` (two cumulative readings of one series), in ``later``'s shape.

    For a dual point: the difference of its exponential buckets (None without; the caller
    subtracts the classic ones). For an exponential point: the whole point's difference, its
    positive and negative buckets, its zero count and its ``classic`` point.
    """
    if not isinstance(later, ExponentialHistogramDataPoint):
        now, then = exponential_of(later), exponential_of(earlier)
        return None if now is None or then is None else subtracted(now, then)
    pos = subtracted(_side(later, later.positive), _side(earlier, earlier.positive))
    neg = subtracted(_side(later, later.negative), _side(earlier, earlier.negative))
    changes: dict[str, Any] = {}
    classic, before = getattr(later, "classic", None), getattr(earlier, "classic", None)
    if isinstance(classic, HistogramDataPoint) and isinstance(before, HistogramDataPoint):
        changes["classic"] = replace(
            classic,
            start_time_unix_nano=before.time_unix_nano,
            count=classic.count - before.count,
            sum=classic.sum - before.sum,
            bucket_counts=[
                x - y for x, y in zip(classic.bucket_counts, before.bucket_counts, strict=True)
            ],
            min=_ABSENT,
            max=_ABSENT,
        )
    return replace(
        later,
        start_time_unix_nano=earlier.time_unix_nano,
        count=later.count - earlier.count,
        sum=later.sum - earlier.sum,
        scale=pos.scale,
        zero_count=pos.zero_count,
        positive=Buckets(offset=pos.offset, bucket_counts=list(pos.counts)),
        negative=Buckets(offset=neg.offset, bucket_counts=list(neg.counts)),
        min=_ABSENT,
        max=_ABSENT,
        **changes,
    )


def _side(point: ExponentialHistogramDataPoint, buckets: Buckets) -> ExponentialSnapshot:
    return ExponentialSnapshot(
        point.scale, buckets.offset, tuple(buckets.bucket_counts), point.zero_count
    )
