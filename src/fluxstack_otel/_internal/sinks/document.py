"""The JSON document: one collection as plain JSON, shared by every JSON output.

The json exporter serves, POSTs and writes it, the file exporter writes it with
``format: "json"``, and the console exporter prints it on one line with ``format: "json"``. Its
schema is ``docs/json-schema.json``; the shape, in short::

    {"timestamp": "2025-01-02T03:04:05.678Z",
     "resource": {"service_name": "...", "instance_id": "...", "attributes": {...}},
     "metrics": [{"name": "...", "type": "counter" | "gauge" | "histogram", "unit": "...",
                  "help": "...", "series": [...]}],
     ...extra sections, such as "alerts"}

A counter or gauge series is ``{"labels": {...}, "value": n}``. A histogram series is
``{"labels": {...}, "count": n, "sum": x, "buckets": [{"le": bound, "count": cumulative}, ...]}``
with the finite bounds only: the ``+Inf`` bucket is ``count``, as in Prometheus. ``min`` and
``max`` appear only when recorded. Values are cumulative. JSON has no NaN or infinities, so
those values are the strings ``"NaN"``, ``"+Inf"`` and ``"-Inf"``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from opentelemetry.sdk.metrics.export import (
    ExponentialHistogram,
    Gauge,
    Histogram,
    HistogramDataPoint,
    MetricsData,
    NumberDataPoint,
    Sum,
)

from fluxstack_otel._internal.metrics.catalog import Kind
from fluxstack_otel._internal.metrics.dual import classic_of, exponential_of
from fluxstack_otel._internal.metrics.points import attribute_text, json_number, rfc3339_ns
from fluxstack_otel._internal.metrics.selection import HTTP_SCOPE_NAME
from fluxstack_otel._internal.runtime.failures import report_failure

__all__ = ["CONTENT_TYPE", "HttpJson", "document", "document_text", "dumps", "safe_extras"]

CONTENT_TYPE = "application/json"
_CORE_KEYS = frozenset({"timestamp", "resource", "metrics"})
_SERVICE_NAME = "service.name"
_INSTANCE_ID = "service.instance.id"


class HttpJson(NamedTuple):
    """The HTTP scope's metric entries of one document, to splice into a later one.

    Attributes:
        entries: Each entry, and its JSON text (``dumps``); entries are never modified.
    """

    entries: tuple[tuple[dict[str, Any], str], ...]


def document(
    data: MetricsData,
    extras: Mapping[str, Any] | None = None,
    *,
    now_ns: int | None = None,
) -> dict[str, Any]:
    """Build the JSON document of one collection.

    Args:
        data: Cumulative metric data, as ``MetricStream.collect()`` returns it.
        extras: Extra top-level sections (``{"alerts": [...]}``); they must be JSON-serialisable
            and may not replace ``timestamp``, ``resource`` or ``metrics`` (such keys are
            dropped and reported).
        now_ns: The document's timestamp in Unix nanoseconds (default: now).

    Returns:
        A dict that ``dumps`` serialises to strict JSON.
    """
    attributes, entries = _entries(data, None, None)
    out = _head(attributes, now_ns)
    out["metrics"] = [entry for entry, _ in entries]
    out.update(_sections(extras))
    return out


def document_text(
    data: MetricsData,
    extras: Mapping[str, Any] | None = None,
    *,
    now_ns: int | None = None,
    http: HttpJson | None = None,
    keep: Callable[[HttpJson], None] | None = None,
) -> str:
    """``dumps(document(data, extras))``, built so the HTTP scope's part can be reused.

    Args:
        data: As for ``document``.
        extras: As for ``document``.
        now_ns: As for ``document``.
        http: The HTTP scope's entries of an earlier document, in place of what ``data`` holds
            for that scope (``data`` was collected without it: ``sinks/reuse.py``).
        keep: Called with the HTTP scope's entries of this document.
    """
    attributes, entries = _entries(data, http, keep)
    head = dumps(_head(attributes, now_ns))
    metrics = ",".join(dumps(entry) if text is None else text for entry, text in entries)
    sections = _sections(extras)
    tail = "," + dumps(sections)[1:-1] if sections else ""
    return f'{head[:-1]},"metrics":[{metrics}]{tail}}}'


def _entries(
    data: MetricsData, http: HttpJson | None, keep: Callable[[HttpJson], None] | None
) -> tuple[dict[str, Any], list[list[Any]]]:
    """The resource attributes and the metric entries, each as ``[entry, its text or None]``."""
    attributes: dict[str, Any] = {}
    entries: list[list[Any]] = []
    by_name: dict[str, list[Any]] = {}
    slot: list[Any]
    for rm in data.resource_metrics:
        attributes.update((k, _attribute(v)) for k, v in rm.resource.attributes.items())
        if http is not None:  # the HTTP scope comes first in every collection (metrics/stream)
            for kept, text in http.entries:
                slot = [kept, text]
                by_name[kept["name"]] = slot
                entries.append(slot)
        for sm in rm.scope_metrics:
            is_http = sm.scope.name == HTTP_SCOPE_NAME
            if is_http and http is not None:
                continue
            mark = len(entries)
            for metric in sm.metrics:
                entry = _metric(
                    metric.name, metric.unit or "", metric.description or "", metric.data
                )
                if entry is None:
                    continue
                seen = by_name.get(metric.name)
                if seen is None:  # the same name from two scopes is one metric, as in Prometheus
                    slot = [entry, None]  # its text is made when the document is
                    by_name[metric.name] = slot
                    entries.append(slot)
                elif seen[0]["type"] == entry["type"]:  # merged into a copy: a kept entry stays
                    seen[0] = {**seen[0], "series": [*seen[0]["series"], *entry["series"]]}
                    seen[1] = None
            if is_http and keep is not None:
                for slot in entries[mark:]:
                    slot[1] = dumps(slot[0])
                keep(HttpJson(tuple((slot[0], slot[1]) for slot in entries[mark:])))
        http = None  # one resource per collection: spliced once
    return attributes, entries


def _head(attributes: Mapping[str, Any], now_ns: int | None) -> dict[str, Any]:
    return {
        "timestamp": rfc3339_ns(time.time_ns() if now_ns is None else now_ns),
        "resource": {
            "service_name": str(attributes.get(_SERVICE_NAME, "")),
            "instance_id": str(attributes.get(_INSTANCE_ID, "")),
            "attributes": attributes,
        },
    }


def _sections(extras: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, section in (extras or {}).items():
        if key in _CORE_KEYS:
            report_failure(f"adding the extra section {key!r} to the JSON document", exc_info=False)
            continue
        out[key] = section
    return out


def dumps(doc: Mapping[str, Any], *, indent: int | None = None) -> str:
    """Serialise a document as strict JSON (compact on one line unless ``indent`` is given)."""
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(doc, indent=indent, separators=separators, allow_nan=False, default=str)


def safe_extras(extras: Callable[[], Mapping[str, Any]]) -> Mapping[str, Any]:
    """Call a ``SinkContext.extras`` provider; a failure leaves the sections out and is reported."""
    try:
        return dict(extras())
    except Exception:
        report_failure("reading the extra sections of the JSON document")
        return {}


def _metric(name: str, unit: str, help_: str, data: object) -> dict[str, Any] | None:
    series: list[dict[str, Any]]
    if isinstance(data, Sum):
        kind = Kind.COUNTER if data.is_monotonic else Kind.GAUGE
        series = [_number(p) for p in data.data_points]
    elif isinstance(data, Gauge):
        kind = Kind.GAUGE
        series = [_number(p) for p in data.data_points]
    elif isinstance(data, Histogram):
        kind = Kind.HISTOGRAM
        series = [_histogram(p) for p in data.data_points]
    elif isinstance(data, ExponentialHistogram):
        # The classic form where the point has one (the built-ins), its count and sum otherwise;
        # the exponential buckets ride along as ``exponential``.
        kind = Kind.HISTOGRAM
        series = [_histogram(classic_of(p), p) for p in data.data_points]
    else:
        return None
    return {"name": name, "type": str(kind), "unit": unit, "help": help_, "series": series}


def _number(p: NumberDataPoint) -> dict[str, Any]:
    return {"labels": _labels(p.attributes), "value": json_number(p.value)}


def _histogram(p: HistogramDataPoint, original: Any = None) -> dict[str, Any]:
    buckets = []
    running = 0
    for bound, n in zip(p.explicit_bounds, p.bucket_counts, strict=False):
        running += n
        buckets.append({"le": json_number(float(bound)), "count": running})
    out: dict[str, Any] = {
        "labels": _labels(p.attributes),
        "count": p.count,
        "sum": json_number(p.sum),
        "buckets": buckets,
    }
    snap = exponential_of(original if original is not None else p)
    if snap is not None:
        out["exponential"] = {
            "scale": snap.scale,
            "zero_count": snap.zero_count,
            "offset": snap.offset,
            "counts": list(snap.counts),
        }
    # The HTTP recorder keeps no min/max (None); SDK histograms do.
    if p.min is not None:
        out["min"] = json_number(p.min)
    if p.max is not None:
        out["max"] = json_number(p.max)
    return out


def _labels(attributes: Any) -> dict[str, str]:
    if not attributes:
        return {}
    return {str(k): attribute_text(v) for k, v in attributes.items()}


def _attribute(value: object) -> Any:
    if isinstance(value, list | tuple):
        return [_attribute(v) for v in value]
    if isinstance(value, float):
        return json_number(value)
    return value
