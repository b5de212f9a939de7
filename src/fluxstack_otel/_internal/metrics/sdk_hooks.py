"""The one module that touches non-public parts of the OpenTelemetry SDK.

The built-in HTTP series never pass through SDK instruments (one SDK record per request costs
more than the whole recorder), yet views, readers and exporters of the ecosystem must see them as
they see any instrument. Three things the SDK keeps private make that possible, and only this
module reads them, so a change in the SDK breaks one file, pinned by the supported range in
``pyproject.toml`` and tested on its oldest and newest versions:

- a ``View``'s selection criteria and stream settings (``_instrument_name``, ``_name``...), so the
  same ``View`` objects that the SDK applies to its instruments are applied to the built-ins;
- a ``MetricReader``'s preferred temporality per instrument class, and a ``MetricExporter``'s
  preferred temporality and aggregation, so the built-ins reach each one as it asked;
- ``MetricReader._set_collect_callback``, the hook a ``MeterProvider`` registers a reader with:
  wrapping it lets a reader's every collection carry the built-ins beside the SDK's own data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from opentelemetry.sdk.metrics import Histogram
from opentelemetry.sdk.metrics._internal.instrument import (
    _Counter,
    _Histogram,
    _ObservableCounter,
    _ObservableGauge,
    _ObservableUpDownCounter,
    _UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
    MetricExporter,
    MetricReader,
    MetricsData,
)
from opentelemetry.sdk.metrics.view import (
    Aggregation,
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)

__all__ = [
    "COUNTER",
    "HISTOGRAM",
    "OBSERVABLE_COUNTER",
    "OBSERVABLE_GAUGE",
    "OBSERVABLE_UP_DOWN_COUNTER",
    "UP_DOWN_COUNTER",
    "Collect",
    "Selection",
    "Settings",
    "asynchronous_instruments",
    "bucket_boundaries",
    "exponential_settings",
    "exporter_preferences",
    "in_memory_reader",
    "reader_temporality",
    "selection",
    "settings",
    "wrap_collect",
]

# The SDK's instrument classes: subclasses of the API's and of the SDK's public classes, so an
# ``instrument_type`` given as any of them matches, as it would on a real instrument.
COUNTER: type = _Counter
HISTOGRAM: type = _Histogram
UP_DOWN_COUNTER: type = _UpDownCounter
OBSERVABLE_COUNTER: type = _ObservableCounter
OBSERVABLE_GAUGE: type = _ObservableGauge
OBSERVABLE_UP_DOWN_COUNTER: type = _ObservableUpDownCounter

Collect = Callable[..., MetricsData | None]


class Selection(NamedTuple):
    """What a view selects instruments by (None: any)."""

    instrument_type: type | None
    instrument_name: str | None
    instrument_unit: str | None
    meter_name: str | None
    meter_version: str | None
    meter_schema_url: str | None


class Settings(NamedTuple):
    """What a view sets on the streams it selects (None: the instrument's own)."""

    name: str | None
    description: str | None
    attribute_keys: frozenset[str] | None
    aggregation: Aggregation


def selection(view: View) -> Selection:
    """The selection criteria of ``view``."""
    return Selection(
        view._instrument_type,
        view._instrument_name,
        view._instrument_unit,
        view._meter_name,
        view._meter_version,
        view._meter_schema_url,
    )


def settings(view: View) -> Settings:
    """The stream settings of ``view``."""
    keys = view._attribute_keys
    return Settings(
        view._name,
        view._description,
        None if keys is None else frozenset(keys),
        view._aggregation,
    )


def bucket_boundaries(aggregation: ExplicitBucketHistogramAggregation) -> tuple[float, ...]:
    """The bucket boundaries an explicit-bucket aggregation was given."""
    boundaries: Any = aggregation._boundaries
    return tuple(float(b) for b in boundaries or ())


def exponential_settings(aggregation: ExponentialBucketHistogramAggregation) -> tuple[int, int]:
    """(max_size, max_scale) an exponential-bucket aggregation was given."""
    max_size: Any = aggregation._max_size
    max_scale: Any = aggregation._max_scale
    return int(max_size), int(max_scale)


def reader_temporality(reader: MetricReader) -> Mapping[type, AggregationTemporality]:
    """``reader``'s temporality per SDK instrument class."""
    preferred: Any = reader._instrument_class_temporality
    return dict(preferred)


def exporter_preferences(
    exporter: MetricExporter,
) -> tuple[dict[type, AggregationTemporality], dict[type, Aggregation]]:
    """``exporter``'s preferred temporality and aggregation per SDK instrument class."""
    temporality: dict[type, AggregationTemporality] = dict(exporter._preferred_temporality or {})
    aggregation: dict[type, Aggregation] = dict(exporter._preferred_aggregation or {})
    return temporality, aggregation


def in_memory_reader(
    cardinality_limits: Mapping[type, int], *, exponential: bool = False
) -> InMemoryMetricReader:
    """A cumulative in-memory reader with per-kind cardinality limits, where the SDK has them.

    ``cardinality_limits`` arrived in SDK 1.45.2; older releases keep the SDK's own limit of
    2,000 points per metric. ``exponential``: histograms default to base-2 exponential buckets
    (a view's aggregation still wins, as in the SDK).
    """
    aggregation: dict[type, Aggregation] = (
        {Histogram: ExponentialBucketHistogramAggregation()} if exponential else {}
    )
    try:
        return InMemoryMetricReader(  # type: ignore[call-arg,unused-ignore]
            cardinality_limits=dict(cardinality_limits), preferred_aggregation=aggregation
        )
    except TypeError:
        return InMemoryMetricReader(preferred_aggregation=aggregation)


def asynchronous_instruments(provider: Any) -> frozenset[tuple[str, str]]:
    """(meter name, instrument name) of every asynchronous instrument ``provider`` has made."""
    found: set[tuple[str, str]] = set()
    for meter in list(getattr(provider, "_meters", {}).values()):
        scope = meter._instrumentation_scope.name
        for instrument in list(meter._instrument_id_instrument.values()):
            if isinstance(
                instrument, _ObservableCounter | _ObservableUpDownCounter | _ObservableGauge
            ):
                found.add((scope, instrument.name))
    return frozenset(found)


def wrap_collect(reader: MetricReader, wrap: Callable[[Collect], Collect]) -> None:
    """Replace the collect callback of a registered ``reader`` by ``wrap(callback)``.

    Raises:
        RuntimeError: ``reader`` is not registered with a MeterProvider.
    """
    current: Any = reader._collect
    if current is None:
        raise RuntimeError(f"{type(reader).__name__} is not registered with a MeterProvider")
    wrapped: Any = wrap(current)
    reader._set_collect_callback(wrapped)
