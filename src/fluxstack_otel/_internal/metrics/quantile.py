"""Quantiles of a bucketed histogram, computed the way PromQL's ``histogram_quantile`` does.

The console exporter and the alert evaluator both reduce a histogram to p50/p95/p99; doing it
exactly as Prometheus does keeps their numbers equal to what a dashboard shows for the same data.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from itertools import accumulate

__all__ = ["histogram_quantile", "histogram_quantiles"]


def histogram_quantile(q: float, bounds: Sequence[float], counts: Sequence[int | float]) -> float:
    """Estimate the ``q``-quantile of a histogram by linear interpolation within its buckets.

    The same rules as PromQL ``histogram_quantile`` (``promql/quantile.go``): the lowest bucket is
    assumed to start at 0 when its upper bound is positive; a quantile that falls in the ``+Inf``
    bucket is the highest finite bound; no observations, or no finite bound, gives NaN.

    Args:
        q: The quantile, 0 to 1 (below 0 gives ``-inf``, above 1 ``+inf``, as in PromQL).
        bounds: The finite upper bounds, ascending (OpenTelemetry ``explicit_bounds``).
        counts: Observations per bucket, not cumulative, one more than ``bounds`` (the last is
            the ``+Inf`` bucket), as in OpenTelemetry ``bucket_counts``.

    Returns:
        The estimated quantile, or NaN when it cannot be estimated.

    Raises:
        ValueError: ``counts`` does not have ``len(bounds) + 1`` entries.
    """
    return histogram_quantiles((q,), bounds, counts)[0]


def histogram_quantiles(
    qs: Sequence[float], bounds: Sequence[float], counts: Sequence[int | float]
) -> list[float]:
    """``histogram_quantile`` for each of ``qs``, with one pass over the buckets for all of them.

    The console prints p50, p95 and p99 of every series: the cumulative counts are summed once
    and each rank is found by bisection.

    Raises:
        ValueError: ``counts`` does not have ``len(bounds) + 1`` entries.
    """
    if len(counts) != len(bounds) + 1:
        raise ValueError(
            f"expected {len(bounds) + 1} bucket counts for {len(bounds)} bounds, got {len(counts)}"
        )
    cumulative = list(accumulate(counts, initial=0.0))[1:]
    return [_quantile(q, bounds, cumulative) for q in qs]


def _quantile(q: float, bounds: Sequence[float], cumulative: list[float]) -> float:
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if not bounds:
        return math.nan
    total = cumulative[-1]
    if total <= 0:
        return math.nan
    rank = q * total
    # The first bucket whose cumulative count reaches the rank, searching the finite ones only.
    b = bisect_left(cumulative, rank, 0, len(bounds))
    if b == len(bounds):
        return float(bounds[-1])
    if b == 0 and bounds[0] <= 0:
        return float(bounds[0])
    start = 0.0
    end = float(bounds[b])
    in_bucket = cumulative[b]
    if b > 0:
        start = float(bounds[b - 1])
        in_bucket -= cumulative[b - 1]
        rank -= cumulative[b - 1]
    if in_bucket == 0:  # only when q == 0 and the first bucket is empty; PromQL gives 0/0
        return math.nan
    return start + (end - start) * (rank / in_bucket)
