"""The Prometheus protobuf exposition: the one format that carries native histograms.

``application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited``:
a sequence of ``io.prometheus.client.MetricFamily`` messages, each preceded by its length as a
varint. The messages are written here directly in protobuf's wire format (a dozen fields of a
stable schema: client_model's ``metrics.proto``), so the package needs no generated code and no
protobuf runtime on the scrape path.

Counters, gauges and explicit-bucket histograms carry what the text formats carry. An
exponential histogram becomes a native histogram (schema, zero bucket, positive spans and
deltas); where a histogram point has both (``DualHistogramDataPoint``), the classic buckets ride
alongside, so a Prometheus without native histograms still reads them.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    ExponentialHistogram,
    Gauge,
    Histogram,
    HistogramDataPoint,
    MetricsData,
    Sum,
)

from fluxstack_otel._internal.metrics.dual import exponential_of
from fluxstack_otel._internal.metrics.exponential import ExponentialSnapshot, to_prometheus
from fluxstack_otel._internal.metrics.naming import exposition_name
from fluxstack_otel._internal.sinks.prometheus.exposition import (
    DEFAULT_OPTIONS,
    RenderOptions,
    latest_exemplars,
)
from fluxstack_otel._internal.sinks.prometheus.labels import label_pairs, reserved_labels, warn_once
from fluxstack_otel._internal.sinks.prometheus.negotiation import CONTENT_TYPE_PROTOBUF

__all__ = ["CONTENT_TYPE_PROTOBUF", "render_protobuf"]

_COUNTER, _GAUGE, _HISTOGRAM = 0, 1, 4
_double = struct.Struct("<d").pack
_ZERO_THRESHOLD = 2.0**-128


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


def _key(field: int, wire: int) -> bytes:
    return _varint((field << 3) | wire)


def _bytes(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _varint(len(payload)) + payload


def _text(field: int, value: str) -> bytes:
    return _bytes(field, value.encode())


def _f64(field: int, value: float) -> bytes:
    return _key(field, 1) + _double(value)


def _uint(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(value)


def _sint(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(_zigzag(value))


def _labels(pairs: list[tuple[str, str]]) -> bytes:
    return b"".join(_bytes(1, _text(1, name) + _text(2, value)) for name, value in pairs)


def _exemplar(e: Exemplar) -> bytes:
    ids: list[tuple[str, str]] = []
    if e.trace_id is not None and e.span_id is not None:
        ids = [("trace_id", f"{e.trace_id:032x}"), ("span_id", f"{e.span_id:016x}")]
    at = e.time_unix_nano
    stamp = _uint(1, at // 1_000_000_000) + _uint(2, at % 1_000_000_000)
    return _labels(ids) + _f64(2, float(e.value)) + _bytes(3, stamp)


def _classic(p: HistogramDataPoint) -> bytes:
    body = _uint(1, p.count) + _f64(2, p.sum)
    marks = latest_exemplars(p.exemplars, p.explicit_bounds) if p.exemplars else {}
    cumulative = 0
    for i, (upper, n) in enumerate(zip(p.explicit_bounds, p.bucket_counts, strict=False)):
        cumulative += n
        bucket = _uint(1, cumulative) + _f64(2, upper)
        if i in marks:
            bucket += _bytes(3, _exemplar(marks[i]))
        body += _bytes(3, bucket)
    # The +Inf bucket is implied by the count; only its exemplar needs a bucket of its own.
    last = len(p.explicit_bounds)
    if last in marks:
        body += _bytes(3, _uint(1, p.count) + _f64(2, math.inf) + _bytes(3, _exemplar(marks[last])))
    return body


def _native(snap: ExponentialSnapshot, count: int, total: float, with_count: bool) -> bytes:
    native = to_prometheus(snap)
    if native is None:
        return b""
    body = b""
    if with_count:
        body += _uint(1, count) + _f64(2, total)
    # A zero threshold above 0 marks the histogram native even while it is empty (Prometheus
    # tells the two kinds apart by it); 2 ** -128 is the Prometheus clients' default.
    body += _sint(5, native.schema) + _f64(6, _ZERO_THRESHOLD) + _uint(7, snap.zero_count)
    for offset, length in native.spans:
        body += _bytes(12, _sint(1, offset) + _uint(2, length))
    if native.deltas:
        packed = b"".join(_varint(_zigzag(d)) for d in native.deltas)
        body += _bytes(13, packed)
    return body


def render_protobuf(data: MetricsData, options: RenderOptions = DEFAULT_OPTIONS) -> bytes:
    """One collection as delimited ``MetricFamily`` messages, with the text formats' families.

    The same families, sample names and labels as ``exposition.render`` (target_info and scope
    labels by ``options``, attribute keys named and merged alike), so a scraper reads the same
    series whichever format it negotiated; histograms add their native buckets where they have
    exponential data.

    Args:
        data: The collection (presented, cumulative).
        options: What the exposition includes beyond the metrics themselves.
    """
    families: dict[str, bytearray] = {}
    kinds: dict[str, int] = {}
    helps: dict[str, str] = {}

    def add(name: str, kind: int, help_: str, encoded: bytes) -> None:
        seen = kinds.setdefault(name, kind)
        if seen != kind:  # a clash across scopes: the first family of a name wins, as in text
            warn_once(f"clash:{name}", "metric family %r has two types; the later one is dropped",
                      name)  # fmt: skip
            return
        helps.setdefault(name, help_)
        families.setdefault(name, bytearray()).extend(encoded)

    for rm in data.resource_metrics:
        if options.target_info:
            target = _bytes(
                4, _labels(label_pairs(rm.resource.attributes)) + _bytes(2, _f64(1, 1.0))
            )
            add("target_info", _GAUGE, "Target metadata", target)
        for sm in rm.scope_metrics:
            scope: list[tuple[str, str]] = []
            if options.scope_labels:
                scope = [("otel_scope_name", sm.scope.name),
                         ("otel_scope_version", sm.scope.version or "")]  # fmt: skip
            for metric in sm.metrics:
                payload = metric.data
                name = exposition_name(metric.name, metric.unit or "", payload)
                kind, encoded = _metrics(payload, scope)
                if kind is None:
                    continue
                if kind == _COUNTER:  # a counter's family is named as its sample
                    name = (name[:-6] if name.endswith("_total") else name) + "_total"
                add(name, kind, metric.description or "", encoded)
    out = bytearray()
    for name, body in families.items():
        family = _text(1, name) + _text(2, helps[name]) + _uint(3, kinds[name]) + bytes(body)
        out += _varint(len(family)) + family
    return bytes(out)


def _metrics(payload: Any, scope: list[tuple[str, str]]) -> tuple[int | None, bytes]:
    body = bytearray()
    histogram = isinstance(payload, Histogram | ExponentialHistogram)
    reserved = reserved_labels(histogram, bool(scope))

    def labels(attributes: Any) -> bytes:
        return _labels(label_pairs(attributes, reserved) + scope)

    if isinstance(payload, Sum) and payload.is_monotonic:
        for p in payload.data_points:
            body += _bytes(4, labels(p.attributes) + _bytes(3, _f64(1, float(p.value))))
        return _COUNTER, bytes(body)
    if isinstance(payload, Sum | Gauge):
        for p in payload.data_points:
            body += _bytes(4, labels(p.attributes) + _bytes(2, _f64(1, float(p.value))))
        return _GAUGE, bytes(body)
    if isinstance(payload, Histogram | ExponentialHistogram):
        # Classic buckets where the point has them, native ones where it has exponential data:
        # a built-in with ``histograms: exponential`` has both, so any scraper reads it.
        for hp in payload.data_points:
            classic = hp if isinstance(hp, HistogramDataPoint) else getattr(hp, "classic", None)
            # An SDK instrument's exponential point has no classic buckets: native alone.
            encoded = b"" if classic is None else _classic(classic)
            snap = exponential_of(hp)
            if snap is not None:
                encoded += _native(snap, hp.count, hp.sum, with_count=classic is None)
            if encoded:
                body += _bytes(4, labels(hp.attributes) + _bytes(7, encoded))
        return _HISTOGRAM, bytes(body)
    return None, b""
