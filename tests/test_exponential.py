"""Exponential histograms: the SDK's buckets without an SDK call, and their native-histogram form."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ExponentialHistogram, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View

from fluxstack_otel._internal.metrics.exponential import (
    ExponentialAccumulator,
    ExponentialSnapshot,
    bucket_index,
    downscaled,
    to_prometheus,
)

values = st.lists(
    st.one_of(
        st.just(0.0),
        st.floats(min_value=1e-9, max_value=1e9, allow_nan=False, allow_infinity=False),
        st.sampled_from([0.5, 1.0, 2.0, 0.25, 1024.0]),  # exact powers of two: bucket edges
    ),
    min_size=1,
    max_size=300,
)


def _sdk(observed: list[float], max_size: int) -> tuple[int, int, tuple[int, ...], int]:
    reader = InMemoryMetricReader()
    view = View(
        instrument_name="h", aggregation=ExponentialBucketHistogramAggregation(max_size=max_size)
    )
    provider = MeterProvider(metric_readers=[reader], views=[view])
    histogram = provider.get_meter("m").create_histogram("h")
    for v in observed:
        histogram.record(v)
    data = reader.get_metrics_data()
    provider.shutdown()
    assert data is not None
    (metric,) = data.resource_metrics[0].scope_metrics[0].metrics
    assert isinstance(metric.data, ExponentialHistogram)
    (p,) = metric.data.data_points
    counts = tuple(p.positive.bucket_counts)
    return p.scale, p.positive.offset, counts, p.zero_count


def _trimmed(scale: int, offset: int, counts: tuple[int, ...]) -> tuple[int, int, tuple[int, ...]]:
    # The SDK may keep empty buckets at the edges; compare the counted range only.
    first = next((i for i, n in enumerate(counts) if n), len(counts))
    last = max((i for i, n in enumerate(counts) if n), default=-1)
    return scale, offset + first, counts[first : last + 1]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(observed=values, max_size=st.sampled_from([4, 20, 160]))
def test_the_accumulator_counts_exactly_as_the_sdk_aggregation(
    observed: list[float], max_size: int
) -> None:
    """Same values in: the same scale, the same buckets and the same zero count as the SDK."""
    ours = ExponentialAccumulator(max_size=max_size)
    for v in observed:
        ours.record(v)
    snap = ours.snapshot()
    scale, offset, counts, zeros = _sdk(observed, max_size)
    assert snap.zero_count == zeros
    if any(counts):
        assert _trimmed(snap.scale, snap.offset, snap.counts) == _trimmed(scale, offset, counts)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    value=st.floats(min_value=1e-300, max_value=1e300, allow_nan=False),
    scale=st.integers(-10, 20),
)
def test_a_value_lies_in_the_bucket_its_index_names(value: float, scale: int) -> None:
    """base ** i < value <= base ** (i + 1), within float rounding at the edges."""
    i = bucket_index(value, scale)
    base_log = math.ldexp(1.0, -scale)  # log2(base)
    low, high = i * base_log, (i + 1) * base_log
    assert low - 1e-9 * abs(low) - 1e-12 <= math.log2(value) <= high + 1e-9 * abs(high) + 1e-12


@settings(max_examples=200, deadline=None, derandomize=True)
@given(observed=values)
def test_native_buckets_decode_to_the_same_counts(observed: list[float]) -> None:
    """Spans and deltas, read back, give every bucket's count at the native schema (<= 8)."""
    acc = ExponentialAccumulator()
    for v in observed:
        acc.record(v)
    snap = acc.snapshot()
    native = to_prometheus(snap)
    assert native is not None
    assert -4 <= native.schema <= 8
    expected = downscaled(snap, native.schema)
    decoded: dict[int, int] = {}
    index, count, deltas = 0, 0, iter(native.deltas)
    for gap, length in native.spans:
        index += gap
        for _ in range(length):
            count += next(deltas)
            if count:
                decoded[index] = count
            index += 1
    want = {expected.offset + i + 1: n for i, n in enumerate(expected.counts) if n}
    assert decoded == want
    assert sum(decoded.values()) + snap.zero_count == len(observed)


def test_a_fine_scale_merges_down_to_schema_eight() -> None:
    """Scale 10 buckets become schema 8 buckets, four into one, counts kept."""
    snap = ExponentialSnapshot(scale=10, offset=-8, counts=(1, 2, 3, 4, 5), zero_count=0)
    native = to_prometheus(snap)
    assert native is not None
    assert native.schema == 8
    # OTel indices -8..-4 at scale 10 are -2, -2, -2, -2, -1 at scale 8; Prometheus adds one.
    assert native.spans == ((-1, 2),)
    assert native.deltas == (10, -5)
