"""The HTTP scope's exposition written straight from the recorder's series, with no OTel point.

A scrape under load cannot reuse the kept text (``reuse.py``): every series moved. Building the
six metrics as OpenTelemetry points (an attribute dict and a frozen point per series) and then
reading them back into text was most of a fresh scrape. Here the recorder's series, added up by
projected key (``http/tally.py``), become the text families directly: the label text of a key
is joined from its values, and a histogram's bucket lines are one C-level join.

In: ``HttpSeries`` (the tally, its labelling and bounds). Out: ``HttpText``, the same
text and families the renderer writes for the projected points (``tests/test_http_text.py``
checks it byte for byte against ``exposition.render``), or None for what only the points path
writes (OpenMetrics with exemplars; label names that sanitise onto each other).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import accumulate
from typing import TYPE_CHECKING

from fluxstack_otel._internal.http.tally import HttpSeries
from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.metrics.points import attribute_text, prometheus_number
from fluxstack_otel._internal.runtime.gil import YIELD_MASK, yield_now
from fluxstack_otel._internal.sinks.prometheus.exposition import HttpStream, HttpText, le_labels
from fluxstack_otel._internal.sinks.prometheus.labels import (
    escape_help,
    escape_value,
    label_name,
    reserved_labels,
)

if TYPE_CHECKING:
    from fluxstack_otel._internal.http.tally import Hist

__all__ = ["http_stream", "http_text"]

_COUNTERS = (cat.HTTP_REQUESTS, cat.HTTP_RESPONSES, cat.HTTP_ERRORS)
_HISTOGRAMS = (cat.HTTP_REQUEST_DURATION, cat.HTTP_REQUEST_SIZE, cat.HTTP_RESPONSE_SIZE)


class _Labels:
    """A metric's label text per projected key: the spec's labels (None values left out), the
    per-request labels, the constant labels, then the scope labels."""

    __slots__ = ("_extra", "_made", "_n", "_names", "_tail", "distinct")

    def __init__(
        self,
        spec: cat.MetricSpec,
        series: HttpSeries,
        histogram: bool,
        scope_labels: str,
        made: dict[tuple[object, ...], dict[tuple[object, ...], str]],
    ) -> None:
        reserved = reserved_labels(histogram, bool(scope_labels))
        labelling = series.labelling
        raw = (*spec.labels, *labelling.label_names, *(k for k, _ in labelling.constant))
        named = tuple(label_name(k, reserved) for k in raw)
        n, m = len(spec.labels), len(spec.labels) + len(labelling.label_names)
        self._names, self._extra, self._n = named[:n], named[n:m], n
        tail = [
            f'{name}="{_value(v)}"'
            for name, (_, v) in zip(named[m:], labelling.constant, strict=True)
        ]
        if scope_labels:
            tail.append(scope_labels)
        self._tail = ",".join(tail)
        # The metrics with the same label names share their texts (one render's worth).
        self._made = made.setdefault((self._names, self._extra, self._tail), {})
        self.distinct = len(set(raw)) == len(raw) and len(set(named)) == len(named)
        """Whether every attribute key is a label of its own (else the points path, which
        merges keys that collide, writes the metric)."""

    def inner(self, key: tuple[object, ...]) -> str:
        text = self._made.get(key)
        if text is None:
            text = self._made[key] = self._text(key)
        return text

    def _text(self, key: tuple[object, ...]) -> str:
        parts = [
            f'{name}="{_value(v)}"'
            for name, v in zip(self._names, key, strict=False)
            if v is not None
        ]
        extra = key[self._n]
        if extra:
            parts.extend(f'{n}="{_value(v)}"' for n, v in zip(self._extra, extra, strict=True))  # type: ignore[call-overload]
        if self._tail:
            parts.append(self._tail)
        return ",".join(parts)


def _value(value: object) -> str:
    text = value if isinstance(value, str) else attribute_text(value)
    if "\\" in text or '"' in text or "\n" in text:
        return escape_value(text)
    return text


def http_text(series: HttpSeries, *, openmetrics: bool, scope_labels: str = "") -> HttpText | None:
    """The HTTP scope's families as ``exposition.render`` writes them for the projected points.

    Args:
        series: The recorder's accumulation (``HttpRecorder.series``).
        openmetrics: OpenMetrics 1.0 rather than text 0.0.4.
        scope_labels: The ``otel_scope_*`` label text when scope labels are on, else empty.

    Returns:
        The text and its families, or None when only the points path can write it.
    """
    stream = http_stream(series, openmetrics=openmetrics, scope_labels=scope_labels)
    return None if stream is None else HttpText("".join(stream.pieces), stream.families)


def http_stream(
    series: HttpSeries, *, openmetrics: bool, scope_labels: str = ""
) -> HttpStream | None:
    """``http_text``'s text as pieces made while they are read (its arguments and None)."""
    p = series.tally
    if openmetrics and p.exemplars:
        return None  # exemplar marks: the points path writes them
    made: dict[tuple[object, ...], dict[tuple[object, ...], str]] = {}
    families: dict[str, str] = {}
    plan: list[tuple[str, _Labels, str, str]] = []
    for spec in _COUNTERS:
        base = spec.name[:-6] if spec.name.endswith("_total") else spec.name
        family = base if openmetrics else base + "_total"
        plan.append(
            (family, _Labels(spec, series, False, scope_labels, made), "counter", spec.help)
        )
    for spec in _HISTOGRAMS:
        plan.append((spec.name, _Labels(spec, series, True, scope_labels, made), "histogram",
                     spec.help))  # fmt: skip
    if not all(labels.distinct for _, labels, _, _ in plan):
        return None
    for family, _, kind, _ in plan:
        families[family] = kind
    return HttpStream(_pieces(series, plan), families)


def _pieces(series: HttpSeries, plan: list[tuple[str, _Labels, str, str]]) -> Iterator[str]:
    p = series.tally
    counters = (p.requests, p.responses, p.errors)
    for (family, labels, kind, help_), counts in zip(plan[:3], counters, strict=True):
        yield f"# HELP {family} {escape_help(help_)}\n# TYPE {family} {kind}\n"
        sample = family if family.endswith("_total") else family + "_total"
        inner = labels.inner
        for i, (key, count) in enumerate(counts.items()):
            if not i & YIELD_MASK:
                yield_now()  # a scrape's thread: the app's threads get their turn
            text = inner(key)
            yield f"{sample}{{{text}}} {count}\n" if text else f"{sample} {count}\n"
    histograms = (p.durations, p.req_sizes, p.resp_sizes)
    bounds = (series.duration_bounds, series.size_bounds, series.size_bounds)
    for (family, labels, kind, help_), hists, bound in zip(
        plan[3:], histograms, bounds, strict=True
    ):
        yield f"# HELP {family} {escape_help(help_)}\n# TYPE {family} {kind}\n"
        yield from _histograms(family, hists, le_labels(bound), labels)


def _histograms(
    name: str,
    hists: dict[tuple[object, ...], Hist],
    les: tuple[str, ...],
    labels: _Labels,
) -> Iterator[str]:
    bucket, count_name, sum_name = name + "_bucket", name + "_count", name + "_sum"
    closes = tuple(f"{le}}} " for le in les)  # 'le="0.005"} ' then the cumulative count
    # A series' bucket lines are the prefix (name and labels) joined with the line ends
    # ('le="..."} count' and a newline), which depend on its bucket counts alone: made once
    # per distinct counts in a render (most series share a few: one request, one bucket).
    ends: dict[tuple[int, ...], list[str]] = {}
    inner = labels.inner
    for i, (key, (count, total, counts)) in enumerate(hists.items()):
        if not i & YIELD_MASK:
            yield_now()
        text = inner(key)
        prefix = f"{bucket}{{{text}," if text else f"{bucket}{{"
        tails = ends.get(counts)
        if tails is None:
            tails = ends[counts] = [
                f"{close}{n}\n" for close, n in zip(closes, accumulate(counts), strict=False)
            ]
        braces = f"{{{text}}}" if text else ""
        yield (
            f"{prefix}{prefix.join(tails)}{count_name}{braces} {count}\n"
            f"{sum_name}{braces} {prometheus_number(total)}\n"
        )
