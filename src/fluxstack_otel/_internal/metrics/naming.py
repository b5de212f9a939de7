"""Prometheus names of OpenTelemetry metrics, one rule for the exposition and the name checks.

(The naming profiles, which name the built-ins as OpenTelemetry metrics, are view sets: views.py.)

- ``exposition_name`` is the Prometheus name of a metric. The FluxStack built-ins are already
  Prometheus names and are used verbatim. Every other name (semantic-convention built-ins, custom
  metrics, third-party instrumentations) is translated as OpenTelemetry's Prometheus
  compatibility specification says: characters outside ``[a-zA-Z0-9_:]`` become ``_``, the unit
  is appended unless the name already ends with it (``s`` -> ``_seconds``, ``By`` -> ``_bytes``,
  annotations in braces dropped, ``1`` -> ``_ratio`` on gauges), and counters end in ``_total``.
"""

from __future__ import annotations

import re

from opentelemetry.sdk.metrics.export import ExponentialHistogram, Gauge, Histogram, Sum

from fluxstack_otel._internal.metrics import catalog as cat

__all__ = ["exposition_name", "exposition_names", "prometheus_base"]

_INVALID_NAME = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_UNIT = re.compile(r"[^a-zA-Z0-9]+")
_ANNOTATION = re.compile(r"\{[^}]*\}")

# OpenTelemetry's Prometheus compatibility specification: UCUM units and their Prometheus words.
_UNIT_WORDS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
    "us": "microseconds", "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes",
    "MiBy": "mebibytes", "GiBy": "gibibytes", "TiBy": "tibibytes", "KBy": "kilobytes",
    "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes", "m": "meters", "V": "volts",
    "A": "amperes", "J": "joules", "W": "watts", "g": "grams", "Cel": "celsius", "Hz": "hertz",
    "%": "percent",
}  # fmt: skip
_PER_UNIT_WORDS = {
    "s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year",
}  # fmt: skip

_VERBATIM = frozenset(cat.METRICS_BY_NAME)


# --- Prometheus names ----------------------------------------------------------------------------


def _unit_suffix(unit: str, *, gauge: bool) -> str:
    unit = _ANNOTATION.sub("", unit).strip()
    if not unit:
        return ""
    if unit == "1":
        return "ratio" if gauge else ""
    main, slash, per = unit.partition("/")
    words = _UNIT_WORDS.get(main, main)
    if slash:
        per_word = _PER_UNIT_WORDS.get(per, per)
        words = f"{words}_per_{per_word}" if words else f"per_{per_word}"
    return _INVALID_UNIT.sub("_", words).strip("_")


def prometheus_base(name: str, unit: str, kind: cat.Kind, *, gauge: bool = False) -> str:
    """The Prometheus family name of an OpenTelemetry metric, without a counter's ``_total``.

    Args:
        name: The OpenTelemetry name.
        unit: Its UCUM unit.
        kind: How it is exposed (a non-monotonic sum is a gauge).
        gauge: True for an OpenTelemetry gauge, the one kind where unit ``1`` means ``_ratio``.
    """
    if name in _VERBATIM:
        base = name
    else:
        base = _INVALID_NAME.sub("_", name)
        if base[:1].isdigit():
            base = "_" + base
        if kind is cat.Kind.COUNTER and base.endswith("_total"):
            base = base[:-6]
        suffix = _unit_suffix(unit, gauge=gauge)
        if suffix and not base.endswith("_" + suffix):
            base = f"{base}_{suffix}"
    if kind is cat.Kind.COUNTER and base.endswith("_total"):
        base = base[:-6]
    return base


def exposition_names(base: str, kind: cat.Kind) -> frozenset[str]:
    """Every name a family takes in the text and OpenMetrics formats: family and samples."""
    if kind is cat.Kind.COUNTER:
        return frozenset({base, base + "_total"})
    if kind is cat.Kind.HISTOGRAM:
        return frozenset({base, base + "_bucket", base + "_count", base + "_sum"})
    return frozenset({base})


_name_cache: dict[tuple[str, str, type, bool], str] = {}


def exposition_name(name: str, unit: str, data: object) -> str:
    """The Prometheus family name of a collected metric (counters without ``_total``)."""
    monotonic = isinstance(data, Sum) and data.is_monotonic
    key = (name, unit, type(data), monotonic)
    cached = _name_cache.get(key)
    if cached is None:
        if monotonic:
            kind = cat.Kind.COUNTER
        elif isinstance(data, Histogram | ExponentialHistogram):
            kind = cat.Kind.HISTOGRAM
        else:
            kind = cat.Kind.GAUGE
        cached = prometheus_base(name, unit, kind, gauge=isinstance(data, Gauge))
        if len(_name_cache) < 10_000:
            _name_cache[key] = cached
    return cached
