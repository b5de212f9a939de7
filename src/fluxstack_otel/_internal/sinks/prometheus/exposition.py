"""The Prometheus exposition of the metric stream: text 0.0.4 and OpenMetrics, rendered directly.

The renderer reads OpenTelemetry ``MetricsData`` and writes the exposition itself rather than
building prometheus_client objects first: a scrape is one pass over the points with precomputed
bucket labels, which keeps large scrapes cheaper than prometheus_client's own rendering.

Naming (``_naming.exposition_name``): the FluxStack built-ins already carry their final Prometheus
names. Other metrics (semantic-convention names, custom, third-party instrumentations) are named as
OpenTelemetry's Prometheus compatibility specification says: sanitised to ``[a-zA-Z0-9_:]``, the
unit appended (``_seconds``, ``_bytes``); monotonic sums become counters with a ``_total`` suffix;
non-monotonic sums become gauges. In OpenMetrics, histogram buckets carry their exemplars (the
trace of a request, with ``tracing: true``). ``target_info`` and the OTel scope
labels are opt-in, so upgrading this package never renames a series.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    ExponentialHistogram,
    Gauge,
    Histogram,
    HistogramDataPoint,
    MetricsData,
    NumberDataPoint,
    Sum,
)

from fluxstack_otel._internal.metrics.dual import classic_of
from fluxstack_otel._internal.metrics.naming import exposition_name
from fluxstack_otel._internal.metrics.points import prometheus_number
from fluxstack_otel._internal.metrics.selection import HTTP_SCOPE_NAME
from fluxstack_otel._internal.sinks.prometheus.deflate import Deflated
from fluxstack_otel._internal.sinks.prometheus.labels import (
    escape_help,
    labels_inner,
    reserved_labels,
    warn_once,
)
from fluxstack_otel._internal.sinks.prometheus.negotiation import (
    CONTENT_TYPE_OPENMETRICS,
    CONTENT_TYPE_TEXT,
    negotiate,
)

__all__ = [
    "CHUNK",
    "CONTENT_TYPE_OPENMETRICS",
    "CONTENT_TYPE_TEXT",
    "DEFAULT_OPTIONS",
    "HttpStream",
    "HttpText",
    "RenderOptions",
    "chunked",
    "head",
    "latest_exemplars",
    "le_labels",
    "negotiate",
    "pieces",
    "render",
    "tail",
]


class RenderOptions(NamedTuple):
    """What the exposition includes beyond the metrics themselves.

    Attributes:
        target_info: Emit ``target_info`` with the resource attributes as labels.
        scope_labels: Add ``otel_scope_name``/``otel_scope_version`` labels to every series.
    """

    target_info: bool = False
    scope_labels: bool = False


DEFAULT_OPTIONS = RenderOptions()
"""No ``target_info``, no scope labels."""


def options_for(target_info: bool | None, scope_labels: bool | None, naming: str) -> RenderOptions:
    """An exporter entry's render options; ``None`` follows the naming profile: the FluxStack
    plugin's exact families for ``fluxstack``, the official OpenTelemetry exporter's defaults
    (``target_info`` and scope labels on) for ``semconv``."""
    otel = naming != "fluxstack"
    return RenderOptions(
        target_info=otel if target_info is None else target_info,
        scope_labels=otel if scope_labels is None else scope_labels,
    )


class HttpText(NamedTuple):
    """The exposition of the HTTP scope from one render, to splice into a later one.

    Attributes:
        text: The scope's families, as rendered (in pieces, or compressed as a stream kept them).
        families: Every family declared up to the end of the scope, with its type (so the scopes
            after it merge and skip clashes as in the render it came from).
    """

    text: str | tuple[str, ...] | Deflated
    families: dict[str, str]


class HttpStream(NamedTuple):
    """The HTTP scope's text to come: its families (known before any line) and its pieces, made
    as they are read (a scrape streams them in chunks, never the whole text at once)."""

    pieces: Iterator[str]
    families: dict[str, str]


def render(
    data: MetricsData,
    *,
    openmetrics: bool,
    options: RenderOptions = DEFAULT_OPTIONS,
    http: HttpText | None = None,
    keep: Callable[[HttpText], None] | None = None,
) -> bytes:
    """Render one collection in the Prometheus text format (0.0.4) or OpenMetrics 1.0.

    Args:
        data: The collection.
        openmetrics: OpenMetrics 1.0 rather than text 0.0.4.
        options: What the exposition includes beyond the metrics.
        http: The HTTP scope's text of an earlier render, spliced where that scope stands (or
            first) in place of what ``data`` holds for it: ``data`` was collected without it.
        keep: Called with the HTTP scope's text of this render.
    """
    # A lone surrogate in an attribute (from bytes decoded with surrogateescape) is no UTF-8:
    # it becomes "?" rather than failing the scrape.
    return "".join(pieces(data, openmetrics, options, http, keep)).encode("utf-8", "replace")


def pieces(
    data: MetricsData,
    openmetrics: bool,
    options: RenderOptions = DEFAULT_OPTIONS,
    http: HttpText | HttpStream | None = None,
    keep: Callable[[HttpText], None] | None = None,
) -> Iterator[str]:
    """``render``'s text as pieces made while they are read (``http`` may be a stream)."""
    families: dict[str, str] = {}  # family name -> its type, to merge scopes and skip clashes
    yield from head(data, openmetrics, options)
    if http is not None:  # the HTTP scope comes first in every collection (metrics/stream)
        families.update(http.families)
        if isinstance(http, HttpStream):
            yield from http.pieces
        elif isinstance(http.text, str):
            yield http.text
        elif isinstance(http.text, tuple):
            yield from http.text
        else:
            yield from http.text.texts(CHUNK)
    yield from tail(data, openmetrics, options, families, http is not None, keep)


def head(data: MetricsData, openmetrics: bool, options: RenderOptions) -> list[str]:
    """The text before the first resource's HTTP scope: its ``target_info``."""
    out: list[str] = []
    if options.target_info and data.resource_metrics:
        _render_target_info(out, data.resource_metrics[0].resource.attributes, openmetrics)
    return out


def tail(
    data: MetricsData,
    openmetrics: bool,
    options: RenderOptions,
    families: dict[str, str],
    spliced: bool,
    keep: Callable[[HttpText], None] | None = None,
) -> Iterator[str]:
    """The text after the first resource's HTTP scope (``spliced``: that scope is written in
    its place, and ``families`` holds its families by the time this is read)."""
    for at, rm in enumerate(data.resource_metrics):
        out: list[str] = []
        if at and options.target_info:
            _render_target_info(out, rm.resource.attributes, openmetrics)
            yield from out
        for sm in rm.scope_metrics:
            is_http = sm.scope.name == HTTP_SCOPE_NAME
            if is_http and spliced and not at:  # one resource per collection: spliced once
                continue
            out = []
            scope_labels = ""
            if options.scope_labels:
                scope_labels = labels_inner(
                    {"otel_scope_name": sm.scope.name, "otel_scope_version": sm.scope.version or ""}
                )
            for metric in sm.metrics:
                name = exposition_name(metric.name, metric.unit or "", metric.data)
                _render_metric(out, families, name, metric.description or "", metric.data,
                               scope_labels, openmetrics)  # fmt: skip
            if is_http and keep is not None:
                keep(HttpText("".join(out), dict(families)))
            yield from out
    if openmetrics:
        yield "# EOF\n"


CHUNK = 1 << 14
"""Characters of text per chunk of a streamed exposition (16 KiB: a scrape's working set). A first
gzip scrape of 1,000 label sets left 2.2 MB in the heap with 256 KiB chunks, 1.6 MB with 64 KiB
and 1.3 MB with 16 KiB (1.1 MB with zlib at ``deflate.GZIP_MEMLEVEL``); the scrape's CPU did not
move beyond the noise."""


def chunked(texts: Iterable[str], size: int | None = None) -> Iterator[bytes]:
    """``texts`` as UTF-8 chunks of about ``size`` characters (default ``CHUNK``; a longer text
    is cut), at least one."""
    size = CHUNK if size is None else size
    buffer: list[str] = []
    held = 0
    sent = False
    for text in texts:
        if len(text) > size:  # a kept scope's text: cut, never copied whole
            if buffer:
                yield "".join(buffer).encode("utf-8", "replace")
                buffer, held = [], 0
            for at in range(0, len(text), size):
                yield text[at : at + size].encode("utf-8", "replace")
            sent = True
            continue
        buffer.append(text)
        held += len(text)
        if held >= size:
            yield "".join(buffer).encode("utf-8", "replace")
            buffer, held, sent = [], 0, True
    if buffer or not sent:
        yield "".join(buffer).encode("utf-8", "replace")


def _render_metric(
    out: list[str],
    families: dict[str, str],
    name: str,
    description: str,
    data: Any,
    scope_labels: str,
    openmetrics: bool,
) -> None:
    if isinstance(data, Sum):
        if data.is_monotonic:
            kind = "counter"
            base = name[:-6] if name.endswith("_total") else name
            sample = base + "_total"
            family = base if openmetrics else sample
        else:
            kind, family, sample = "gauge", name, name
        _header(out, families, family, kind, description)
        if families.get(family) != kind:
            return
        _render_numbers(out, sample, data.data_points, scope_labels)
    elif isinstance(data, Gauge):
        _header(out, families, name, "gauge", description)
        if families.get(name) == "gauge":
            _render_numbers(out, name, data.data_points, scope_labels)
    elif isinstance(data, Histogram):
        _header(out, families, name, "histogram", description)
        if families.get(name) == "histogram":
            _render_histograms(out, name, data.data_points, scope_labels, openmetrics)
    elif isinstance(data, ExponentialHistogram):
        # The text formats carry classic buckets only: a built-in's exponential points keep
        # theirs; an SDK instrument's show their count and sum (protobuf has the buckets).
        _header(out, families, name, "histogram", description)
        if families.get(name) == "histogram":
            classic = [classic_of(p) for p in data.data_points]
            _render_histograms(out, name, classic, scope_labels, openmetrics)
    else:
        warn_once(f"unsupported:{name}", "metric %r has an unsupported type %s; not exposed",
                   name, type(data).__name__)  # fmt: skip


def _header(out: list[str], families: dict[str, str], family: str, kind: str, help_: str) -> None:
    seen = families.get(family)
    if seen is None:
        families[family] = kind
        out.append(f"# HELP {family} {escape_help(help_)}\n# TYPE {family} {kind}\n")
    elif seen != kind:
        warn_once(f"clash:{family}", "metric family %r is both %s and %s; the %s is dropped",
                   family, seen, kind, kind)  # fmt: skip


def _render_numbers(
    out: list[str], sample: str, points: Iterable[NumberDataPoint], scope_labels: str
) -> None:
    reserved = reserved_labels(False, bool(scope_labels))
    for p in points:
        inner = labels_inner(p.attributes, reserved)
        if scope_labels:
            inner = f"{inner},{scope_labels}" if inner else scope_labels
        labels = f"{{{inner}}}" if inner else ""
        out.append(f"{sample}{labels} {prometheus_number(p.value)}\n")


_le_cache: dict[tuple[float, ...], tuple[str, ...]] = {}


def le_labels(bounds: tuple[float, ...]) -> tuple[str, ...]:
    """The ``le="..."`` label of each bucket of ``bounds``, ``+Inf`` last (cached per bounds)."""
    cached = _le_cache.get(bounds)
    if cached is None:
        cached = (*(f'le="{prometheus_number(float(b))}"' for b in bounds), 'le="+Inf"')
        if len(_le_cache) < 256:
            _le_cache[bounds] = cached
    return cached


def _render_histograms(
    out: list[str],
    name: str,
    points: Iterable[HistogramDataPoint],
    scope_labels: str,
    openmetrics: bool,
) -> None:
    bucket, count_name, sum_name = name + "_bucket", name + "_count", name + "_sum"
    append = out.append
    reserved = reserved_labels(True, bool(scope_labels))
    for p in points:
        inner = labels_inner(p.attributes, reserved)
        if scope_labels:
            inner = f"{inner},{scope_labels}" if inner else scope_labels
        les = le_labels(tuple(p.explicit_bounds))
        prefix = f"{bucket}{{{inner}," if inner else f"{bucket}{{"
        running = 0
        lines = []
        if openmetrics and p.exemplars:
            marks = _exemplar_marks(p.exemplars, p.explicit_bounds)
            for le, n, mark in zip(les, p.bucket_counts, marks, strict=False):
                running += n
                lines.append(f"{prefix}{le}}} {running}{mark}\n")
        else:
            for le, n in zip(les, p.bucket_counts, strict=False):
                running += n
                lines.append(f"{prefix}{le}}} {running}\n")
        append("".join(lines))
        labels = f"{{{inner}}}" if inner else ""
        append(f"{count_name}{labels} {p.count}\n{sum_name}{labels} {prometheus_number(p.sum)}\n")


def latest_exemplars(exemplars: Sequence[Exemplar], bounds: Sequence[float]) -> dict[int, Exemplar]:
    """Each bucket's latest exemplar, by bucket index (the one an exposition shows per bucket)."""
    latest: dict[int, Exemplar] = {}
    for e in exemplars:
        i = bisect_left(bounds, e.value)
        seen = latest.get(i)
        if seen is None or e.time_unix_nano > seen.time_unix_nano:
            latest[i] = e
    return latest


def _exemplar_marks(exemplars: Sequence[Exemplar], bounds: Sequence[float]) -> list[str]:
    """Per bucket, `` # {trace_id="..",span_id=".."} value timestamp`` of its latest exemplar."""
    marks = [""] * (len(bounds) + 1)
    for i, e in latest_exemplars(exemplars, bounds).items():
        ids = ""
        if e.trace_id is not None and e.span_id is not None:
            ids = f'trace_id="{e.trace_id:032x}",span_id="{e.span_id:016x}"'
        at = e.time_unix_nano
        marks[i] = (
            f" # {{{ids}}} {prometheus_number(e.value)} {at // 1_000_000_000}.{at % 1_000_000_000:09d}"
        )
    return marks


def _render_target_info(out: list[str], attributes: Any, openmetrics: bool) -> None:
    inner = labels_inner(attributes)
    if openmetrics:
        out.append(f"# HELP target Target metadata\n# TYPE target info\ntarget_info{{{inner}}} 1\n")
    else:
        out.append(
            f"# HELP target_info Target metadata\n# TYPE target_info gauge\n"
            f"target_info{{{inner}}} 1\n"
        )
