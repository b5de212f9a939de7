"""Points as text: the one definition of how the sinks spell a metric point's parts.

What enters: OpenTelemetry ``MetricsData`` and the values of its points (numbers, attribute
values, Unix times). What leaves: strings and JSON values, the same in every sink that shows them.

- ``metrics_of``: the walk over a collection (resource, scope, metric), written once.
- ``attribute_text``: an attribute value as a label value (``true``/``false``, ``[a,b]``).
- ``prometheus_number``: a number as the Prometheus text formats and PromQL write it (``NaN``,
  ``+Inf``, ``-Inf``; integers without a decimal point, floats as ``repr``).
- ``json_number``: a number as strict JSON can carry it (non-finite values as those strings).
- ``rfc3339`` / ``rfc3339_ns``: UTC time with millisecond precision (``2025-01-02T03:04:05.678Z``).

Series identity is not defined here: the sinks mean three different things by it (the
exposition's label set after sanitising, the alert snapshot's sorted ``(key, text)`` pairs, the
multiprocess merge's attribute tuple), and each keeps its own next to the code that relies on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import NamedTuple

from opentelemetry.sdk.metrics.export import Metric, MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

__all__ = [
    "MetricEntry",
    "attribute_text",
    "json_number",
    "metrics_of",
    "prometheus_number",
    "rfc3339",
    "rfc3339_ns",
]


class MetricEntry(NamedTuple):
    """One metric of a collection, with where it comes from."""

    resource: Resource
    scope: InstrumentationScope
    metric: Metric


def metrics_of(data: MetricsData) -> Iterator[MetricEntry]:
    """Every metric of ``data``, in order, with its resource and scope."""
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                yield MetricEntry(rm.resource, sm.scope, metric)


def attribute_text(value: object) -> str:
    """An attribute value as label text: strings as they are, ``true``/``false``, ``[a,b]``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ",".join(attribute_text(v) for v in value) + "]"
    return str(value)


def prometheus_number(value: float) -> str:
    """``value`` as a Prometheus sample value: ``3``, ``0.25``, ``NaN``, ``+Inf``, ``-Inf``."""
    if isinstance(value, int):
        return str(value)
    if math.isfinite(value):
        return repr(value)
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"


def json_number(value: float) -> float | str:
    """``value`` for strict JSON: finite numbers as they are, else ``"NaN"``/``"+Inf"``/``"-Inf"``."""
    if isinstance(value, int) or math.isfinite(value):
        return value
    return prometheus_number(value)


_LAST_SECOND = 253_402_300_799.0  # 9999-12-31T23:59:59Z, the last time RFC 3339 can write


def rfc3339(unix_seconds: float) -> str:
    """``2025-01-02T03:04:05.678Z`` for a Unix time in seconds (UTC, milliseconds).

    A time outside what RFC 3339 can write (a deadline a huge interval away, NaN) is clamped to
    1970-01-01 or 9999-12-31 rather than raising.
    """
    if not 0.0 <= unix_seconds <= _LAST_SECOND:
        unix_seconds = _LAST_SECOND if unix_seconds > 0 else 0.0
    moment = datetime.fromtimestamp(unix_seconds, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rfc3339_ns(unix_ns: int) -> str:
    """``rfc3339`` of a Unix time in nanoseconds."""
    return rfc3339(unix_ns / 1e9)
