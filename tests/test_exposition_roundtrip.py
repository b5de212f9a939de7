"""Round trips: whatever valid metric data the renderer writes, prometheus_client reads back.

Hypothesis builds collections of counters, up-down counters, gauges and histograms (exemplars
included) with arbitrary label values (quotes, backslashes, newlines, unicode), help text and
values (NaN and the infinities where a type allows them); both of prometheus_client's parsers must
return the same families, types, help, samples and values. The input is valid by construction:
distinct family names, label names that are legal and distinct after sanitising, distinct label
sets within a family. What the renderer does with clashing input is another test's business.

OpenMetrics forbids ``_sum`` on a histogram with a negative bucket bound, and the strict parser
rejects it; the renderer writes ``_sum`` always, so the OpenMetrics properties draw bounds >= 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import Metric, MetricsData
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from fluxstack_otel._internal.sinks.prometheus.exposition import render
from support import metricdata as md

# Legal label names; the reserved ``__`` prefix and the names the formats give a meaning
# (``le``, ``quantile``) are left out.
label_names = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,12}", fullmatch=True).filter(
    lambda n: n not in ("le", "quantile")
)
label_values = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=20),
    st.sampled_from(['"', "\\", "\n", '\\"', "\\n", "é✉", "", " a b "]),
)
attributes = st.dictionaries(label_names, label_values, max_size=4)
# Help text: any text, the formats escape backslashes and newlines in it; without whitespace at
# its ends, which prometheus_client's text parser strips (the line's own separator).
helps = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=30),
    st.sampled_from(["a\\b", "line\nbreak", "c:\\n", 'say "hi"', "\\\\", "é ✉"]),
).map(str.strip)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
non_negative = st.one_of(
    st.integers(min_value=0, max_value=2**53), st.floats(min_value=0.0, allow_nan=False)
)
any_value = st.one_of(st.integers(-(2**53), 2**53), st.floats(width=64))
# A base name ends in a digit, so no family's name is another's sample (``x`` and ``x_count``).
bases = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,10}", fullmatch=True)


@dataclass(frozen=True)
class Expected:
    """What a parser must read back for one metric."""

    family: str
    kind: str
    help: str
    samples: frozenset[tuple[str, frozenset[tuple[str, Any]], float | str]]


def key(value: float) -> float | str:
    """A float comparable in a set: NaN is equal to NaN here."""
    return "NaN" if math.isnan(value) else float(value)


def label_set(labels: dict[str, str]) -> frozenset[tuple[str, Any]]:
    """Labels comparable in a set; ``le`` by its value, since 0.0 and -0.0 name one bound."""
    return frozenset((k, float(v) if k == "le" else v) for k, v in labels.items())


def distinct_points(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> list[tuple[Any, Any]]:
    label_sets = draw(st.lists(attributes, max_size=4, unique_by=lambda a: frozenset(a.items())))
    return [(labels, draw(values)) for labels in label_sets]


@st.composite
def numbers_metric(draw: st.DrawFn, index: int) -> tuple[Metric, Expected]:
    name = f"{draw(bases)}_{index}"
    description = draw(helps)
    kind = draw(st.sampled_from(["counter", "updown", "gauge"]))
    values = non_negative if kind == "counter" else any_value
    points = distinct_points(draw, values)
    built = [md.number(value, labels) for labels, value in points]
    if kind == "counter":
        sample = f"{name}_total"
        metric, family = md.counter(name, built, description), ("counter", name)
    else:
        sample = name
        make = md.updown if kind == "updown" else md.gauge
        metric, family = make(name, built, description), ("gauge", name)
    samples = frozenset((sample, label_set(labels), key(value)) for labels, value in points)
    return metric, Expected(family[1], family[0], description, samples)


@st.composite
def histogram_metric(draw: st.DrawFn, index: int, negative_bounds: bool) -> tuple[Metric, Expected]:
    name = f"{draw(bases)}_{index}"
    description = draw(helps)
    bound = finite if negative_bounds else finite.map(abs)
    bounds = sorted(set(draw(st.lists(bound, max_size=5))))
    points = []
    samples = set()
    for labels in draw(st.lists(attributes, max_size=3, unique_by=lambda a: frozenset(a.items()))):
        counts = draw(st.lists(st.integers(0, 10**6), min_size=len(bounds) + 1,
                               max_size=len(bounds) + 1))  # fmt: skip
        total = draw(st.floats(min_value=0.0, max_value=1e12))
        exemplars = [
            Exemplar(
                {},
                draw(finite),
                md.AT_NS + i,
                draw(st.integers(1, 2**64 - 1)),
                draw(st.integers(1, 2**128 - 1)),
            )
            for i in range(draw(st.integers(0, 3)))
        ]
        points.append(md.histogram_point(bounds, counts, total, labels, exemplars))
        running = 0
        for upper, n in zip([*bounds, math.inf], counts, strict=True):
            running += n
            le = {**labels, "le": repr(float(upper))}
            samples.add((f"{name}_bucket", label_set(le), float(running)))
        samples.add((f"{name}_count", label_set(labels), float(sum(counts))))
        samples.add((f"{name}_sum", label_set(labels), key(total)))
    metric = md.histogram(name, points, description)
    return metric, Expected(name, "histogram", description, frozenset(samples))


@st.composite
def collections(
    draw: st.DrawFn, negative_bounds: bool = True
) -> tuple[MetricsData, list[Expected]]:
    count = draw(st.integers(0, 5))
    drawn = [
        draw(st.one_of(numbers_metric(i), histogram_metric(i, negative_bounds)))
        for i in range(count)
    ]
    scopes: dict[str, list[Metric]] = {"a": [], "b": []}
    for i, (metric, _) in enumerate(drawn):
        scopes["a" if i % 2 == 0 else "b"].append(metric)
    return md.collection(scopes), [expected for _, expected in drawn]


def parsed(families: Any) -> list[Expected]:
    return [
        Expected(
            f.name,
            f.type,
            f.documentation,
            frozenset((s.name, label_set(s.labels), key(s.value)) for s in f.samples),
        )
        for f in families
    ]


def by_family(expected: list[Expected]) -> dict[str, Expected]:
    return {e.family: e for e in expected}


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@pytest.mark.parametrize(
    ("openmetrics", "parse"), [(False, parse_text), (True, parse_om)], ids=["text", "openmetrics"]
)
@given(st.data())
def test_every_family_round_trips_through_prometheus_client(
    openmetrics: bool, parse: Callable[[str], Any], data: st.DataObject
) -> None:
    """The 0.0.4 text parser, and the strict OpenMetrics one, read back every family, its type,
    help, samples and values; only OpenMetrics ends with # EOF (and has no negative bounds)."""
    collection, expected = data.draw(collections(negative_bounds=not openmetrics))
    text = render(collection, openmetrics=openmetrics).decode()
    assert text.endswith("# EOF\n") == openmetrics
    assert by_family(parsed(parse(text))) == by_family(expected)


@SETTINGS
@given(collections(negative_bounds=False))
def test_openmetrics_exemplars_round_trip_with_their_ids(
    drawn: tuple[MetricsData, list[Expected]],
) -> None:
    """Each bucket's exemplar reads back with the trace and span ids of its latest exemplar."""
    data, _ = drawn
    written = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in getattr(metric.data, "data_points", []):
                    for e in getattr(point, "exemplars", []):
                        written[(f"{e.trace_id:032x}", f"{e.span_id:016x}")] = e.value
    for family in parse_om(render(data, openmetrics=True).decode()):
        for sample in family.samples:
            if sample.exemplar is not None:
                ids = (sample.exemplar.labels["trace_id"], sample.exemplar.labels["span_id"])
                assert sample.exemplar.value == written[ids]
                assert float(sample.labels["le"]) >= sample.exemplar.value
