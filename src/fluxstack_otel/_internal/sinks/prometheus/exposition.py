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

import logging
import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    MetricsData,
    NumberDataPoint,
    Sum,
)

from fluxstack_otel._internal.metrics.naming import exposition_name
from fluxstack_otel._internal.metrics.points import attribute_text, prometheus_number

__all__ = [
    "CONTENT_TYPE_OPENMETRICS",
    "CONTENT_TYPE_TEXT",
    "DEFAULT_OPTIONS",
    "RenderOptions",
    "negotiate",
    "render",
]

_log = logging.getLogger("fluxstack_otel")

CONTENT_TYPE_TEXT = "text/plain; version=0.0.4; charset=utf-8"
CONTENT_TYPE_OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
_CONTENT_TYPE_OPENMETRICS_001 = "application/openmetrics-text; version=0.0.1; charset=utf-8"

_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")


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


def negotiate(accept: str | None, *, allow_openmetrics: bool = True) -> tuple[bool, str]:
    """Pick the exposition format from an ``Accept`` header.

    Returns:
        ``(openmetrics, content_type)``: the highest-quality format both sides support; the
        0.0.4 text format when the header is absent, unparsable or names nothing we serve.
    """
    if not accept or not allow_openmetrics:
        return False, CONTENT_TYPE_TEXT
    best_q, best = 0.0, (False, CONTENT_TYPE_TEXT)
    for part in accept.split(","):
        media, _, params = part.partition(";")
        media = media.strip().lower()
        q, version = 1.0, None
        for param in params.split(";"):
            key, _, value = param.partition("=")
            key = key.strip().lower()
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
            elif key == "version":
                version = value.strip()
        if media == "application/openmetrics-text":
            if version in (None, "1.0.0"):
                candidate = (True, CONTENT_TYPE_OPENMETRICS)
            elif version == "0.0.1":
                candidate = (True, _CONTENT_TYPE_OPENMETRICS_001)
            else:
                continue
        elif media in ("text/plain", "text/*", "*/*"):
            candidate = (False, CONTENT_TYPE_TEXT)
        else:
            continue
        if q > best_q:
            best_q, best = q, candidate
    return best


def render(
    data: MetricsData, *, openmetrics: bool, options: RenderOptions = DEFAULT_OPTIONS
) -> bytes:
    """Render one collection in the Prometheus text format (0.0.4) or OpenMetrics 1.0."""
    out: list[str] = []
    families: dict[str, str] = {}  # family name -> its type, to merge scopes and skip clashes
    for rm in data.resource_metrics:
        if options.target_info:
            _render_target_info(out, rm.resource.attributes, openmetrics)
        for sm in rm.scope_metrics:
            scope_labels = ""
            if options.scope_labels:
                scope_labels = _labels_inner(
                    {"otel_scope_name": sm.scope.name, "otel_scope_version": sm.scope.version or ""}
                )
            for metric in sm.metrics:
                name = exposition_name(metric.name, metric.unit or "", metric.data)
                _render_metric(out, families, name, metric.description or "", metric.data,
                               scope_labels, openmetrics)  # fmt: skip
    if openmetrics:
        out.append("# EOF\n")
    # A lone surrogate in an attribute (from bytes decoded with surrogateescape) is no UTF-8:
    # it becomes "?" rather than failing the scrape.
    return "".join(out).encode("utf-8", "replace")


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
    else:
        _warn_once(f"unsupported:{name}", "metric %r has an unsupported type %s; not exposed",
                   name, type(data).__name__)  # fmt: skip


def _header(out: list[str], families: dict[str, str], family: str, kind: str, help_: str) -> None:
    seen = families.get(family)
    if seen is None:
        families[family] = kind
        out.append(f"# HELP {family} {_escape_help(help_)}\n# TYPE {family} {kind}\n")
    elif seen != kind:
        _warn_once(f"clash:{family}", "metric family %r is both %s and %s; the %s is dropped",
                   family, seen, kind, kind)  # fmt: skip


def _render_numbers(
    out: list[str], sample: str, points: Iterable[NumberDataPoint], scope_labels: str
) -> None:
    reserved = _SCOPE_RESERVED if scope_labels else _NO_RESERVED
    for p in points:
        inner = _labels_inner(p.attributes, reserved)
        if scope_labels:
            inner = f"{inner},{scope_labels}" if inner else scope_labels
        labels = f"{{{inner}}}" if inner else ""
        out.append(f"{sample}{labels} {prometheus_number(p.value)}\n")


_le_cache: dict[tuple[float, ...], tuple[str, ...]] = {}


def _le_labels(bounds: tuple[float, ...]) -> tuple[str, ...]:
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
    reserved = _HISTOGRAM_SCOPE_RESERVED if scope_labels else _HISTOGRAM_RESERVED
    for p in points:
        inner = _labels_inner(p.attributes, reserved)
        if scope_labels:
            inner = f"{inner},{scope_labels}" if inner else scope_labels
        les = _le_labels(tuple(p.explicit_bounds))
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


def _exemplar_marks(exemplars: Sequence[Exemplar], bounds: Sequence[float]) -> list[str]:
    """Per bucket, `` # {trace_id="..",span_id=".."} value timestamp`` of its latest exemplar."""
    latest: dict[int, Exemplar] = {}
    for e in exemplars:
        i = bisect_left(bounds, e.value)
        seen = latest.get(i)
        if seen is None or e.time_unix_nano > seen.time_unix_nano:
            latest[i] = e
    marks = [""] * (len(bounds) + 1)
    for i, e in latest.items():
        ids = ""
        if e.trace_id is not None and e.span_id is not None:
            ids = f'trace_id="{e.trace_id:032x}",span_id="{e.span_id:016x}"'
        at = e.time_unix_nano
        marks[i] = (
            f" # {{{ids}}} {prometheus_number(e.value)} {at // 1_000_000_000}.{at % 1_000_000_000:09d}"
        )
    return marks


def _render_target_info(out: list[str], attributes: Any, openmetrics: bool) -> None:
    inner = _labels_inner(attributes)
    if openmetrics:
        out.append(f"# HELP target Target metadata\n# TYPE target info\ntarget_info{{{inner}}} 1\n")
    else:
        out.append(
            f"# HELP target_info Target metadata\n# TYPE target_info gauge\n"
            f"target_info{{{inner}}} 1\n"
        )


# --- labels ---------------------------------------------------------------------------------
#
# Attribute keys become label names by OpenTelemetry's Prometheus compatibility rules: every
# character outside [a-zA-Z0-9_] becomes "_", a leading digit gets a "_" before it (an empty key
# is "_"). Two rules keep every label set parseable whatever the attributes:
# - A key that would become a label the exposition writes itself is renamed with a "_" before it:
#   "le" on histogram series, "otel_scope_name"/"otel_scope_version" with scope labels on. A
#   name that starts with "__" (reserved by Prometheus, such as "__name__") keeps one "_".
# - Keys that end up as the same label name ("a.b" and "a_b") are merged into one label, their
#   values joined with ";" in the lexicographical order of the original keys, as the
#   compatibility specification says.
# A label plan (the names, and the merges if any) is computed once per key tuple and cached.

_NO_RESERVED: frozenset[str] = frozenset()
_HISTOGRAM_RESERVED = frozenset({"le"})
_SCOPE_RESERVED = frozenset({"otel_scope_name", "otel_scope_version"})
_HISTOGRAM_SCOPE_RESERVED = _HISTOGRAM_RESERVED | _SCOPE_RESERVED
_MAX_PLANS = 10_000  # key tuples remembered per reserved set; more are planned per point


class _Plan(NamedTuple):
    names: tuple[str, ...]
    merges: tuple[tuple[str, tuple[int, ...]], ...] | None  # None: no two keys collide


_plans: dict[frozenset[str], dict[tuple[str, ...], _Plan]] = {}


def _label_name(key: str, reserved: frozenset[str]) -> str:
    name = _INVALID_LABEL.sub("_", key) or "_"
    if name[:1].isdigit():
        name = "_" + name
    elif name.startswith("__"):  # reserved by Prometheus (__name__): one leading "_" is kept
        name = "_" + name.lstrip("_")
    return "_" + name if name in reserved else name


def _plan(keys: tuple[str, ...], reserved: frozenset[str]) -> _Plan:
    cache = _plans.setdefault(reserved, {})
    plan = cache.get(keys)
    if plan is not None:
        return plan
    names = tuple(_label_name(k, reserved) for k in keys)
    merges = None
    if len(set(names)) < len(names):
        groups: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            groups.setdefault(name, []).append(i)
        merges = tuple(
            (name, tuple(sorted(idx, key=keys.__getitem__))) for name, idx in groups.items()
        )
        _warn_once(f"collide:{sorted(keys)}", "attribute keys %s collide as Prometheus labels; "
                   "their values are joined with ';'", sorted(keys))  # fmt: skip
    plan = _Plan(names, merges)
    if len(cache) < _MAX_PLANS:
        cache[keys] = plan
    return plan


def _labels_inner(attributes: Any, reserved: frozenset[str] = _NO_RESERVED) -> str:
    if not attributes:
        return ""
    plan = _plan(tuple(attributes), reserved)
    if plan.merges is None:
        parts = []
        for name, value in zip(plan.names, attributes.values(), strict=True):
            text = value if isinstance(value, str) else attribute_text(value)
            if "\\" in text or '"' in text or "\n" in text:
                text = _escape_value(text)
            parts.append(f'{name}="{text}"')
        return ",".join(parts)
    values = [attribute_text(v) for v in attributes.values()]
    return ",".join(
        f'{name}="{_escape_value(";".join(values[i] for i in idx))}"' for name, idx in plan.merges
    )


def _escape_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    if "\\" in text or "\n" in text:
        return text.replace("\\", "\\\\").replace("\n", "\\n")
    return text


_warned: set[str] = set()


def _warn_once(key: str, message: str, *args: object) -> None:
    if key not in _warned and len(_warned) < 1000:
        _warned.add(key)
        _log.warning(message, *args)
