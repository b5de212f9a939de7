"""Labels that always parse: any attribute keys and values give an exposition every parser reads.

Keys that collide after sanitising are merged (values joined with ``;`` in the order of the
original keys, as OpenTelemetry's Prometheus compatibility specification says); a key that
would become a label the exposition writes itself (``le`` on histograms, the scope labels) is
renamed with a leading ``_``. Checked as a property through promtool (text format) and
prometheus_client's parsers (text and OpenMetrics).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import export as otel
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from fluxstack_otel._internal.sinks.prometheus.exposition import RenderOptions, render
from servers import promtool_check_metrics, requires_promtool

CUM = otel.AggregationTemporality.CUMULATIVE

# Keys chosen to collide with each other and with the exposition's own labels.
_TRICKY_KEYS = ["a.b", "a_b", "a-b", "a/b", "le", "_le", "quantile", "__name__", "otel_scope_name",
                "otel.scope.name", "1st", "", "é", "route", "service.name", "service_name"]  # fmt: skip
keys = st.one_of(st.sampled_from(_TRICKY_KEYS), st.text(max_size=8))
values = st.one_of(
    st.text(max_size=12),
    st.sampled_from(['"', "\\", "\n", 'a"b\\c\nd', "é", "\udcff"]),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.lists(st.integers(), max_size=3),
)
attribute_sets = st.dictionaries(keys, values, max_size=6)


def collection(attrs: dict[str, Any], resource_attrs: dict[str, Any]) -> otel.MetricsData:
    number = otel.NumberDataPoint(attrs, 0, 1, 3)
    histogram = otel.HistogramDataPoint(attrs, 0, 1, 3, 6.0, [1, 1, 1], [1.0, 5.0], None, None)
    metrics = [
        otel.Metric("custom_requests", "c", "1", otel.Sum([number], CUM, True)),
        otel.Metric("custom_level", "g", "1", otel.Gauge([number])),
        otel.Metric("custom_latency", "h", "s", otel.Histogram([histogram], CUM)),
    ]
    scope = otel.ScopeMetrics(InstrumentationScope("fluxstack_otel.custom", "1.0"), metrics, "")
    resource = Resource({"service.name": "svc", **resource_attrs})
    return otel.MetricsData([otel.ResourceMetrics(resource, [scope], "")])


def render_all(data: otel.MetricsData, options: RenderOptions) -> tuple[str, str]:
    text = render(data, openmetrics=False, options=options).decode()
    om = render(data, openmetrics=True, options=options).decode()
    return text, om


def assert_parses(text: str, om: str) -> None:
    """Both formats parse, each with all seven samples: counter, gauge, 3 buckets, count, sum."""
    for parse, exposition in ((parse_text, text), (parse_om, om)):
        found = [s for f in parse(exposition) if f.name.startswith("custom_") for s in f.samples]
        assert len(found) == 7, exposition


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attrs=attribute_sets, resource_attrs=attribute_sets, scope=st.booleans())
def test_any_attributes_render_an_exposition_prometheus_client_parses(
    attrs: dict[str, Any], resource_attrs: dict[str, Any], scope: bool
) -> None:
    """Text and OpenMetrics expositions of any attribute set parse, target_info included."""
    options = RenderOptions(target_info=True, scope_labels=scope)
    assert_parses(*render_all(collection(attrs, resource_attrs), options))


@requires_promtool
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attrs=attribute_sets, scope=st.booleans())
def test_any_attributes_render_an_exposition_promtool_parses(
    attrs: dict[str, Any], scope: bool
) -> None:
    """promtool finds no parse error in the text exposition of any attribute set."""
    text, _ = render_all(collection(attrs, {}), RenderOptions(scope_labels=scope))
    findings = promtool_check_metrics(text)
    assert not [f for f in findings if f.startswith("error while linting")], findings


def samples(text: str, name: str) -> list[dict[str, str]]:
    return [s.labels for f in parse_text(text) for s in f.samples if s.name == name]


def test_colliding_keys_merge_their_values_in_the_order_of_the_original_keys() -> None:
    """a.b and a_b become one a_b label, "a.b"'s value first ('.' sorts before '_')."""
    text, _ = render_all(collection({"a_b": "second", "a.b": "first"}, {}), RenderOptions())
    assert samples(text, "custom_requests_total") == [{"a_b": "first;second"}]


def test_a_histogram_attribute_named_le_is_renamed_and_the_buckets_keep_theirs() -> None:
    """On a histogram, attribute le becomes _le; the bucket bounds stay in le."""
    text, om = render_all(collection({"le": "x"}, {}), RenderOptions())
    buckets = samples(text, "custom_latency_seconds_bucket")
    assert [b["le"] for b in buckets] == ["1.0", "5.0", "+Inf"]
    assert {b["_le"] for b in buckets} == {"x"}
    assert samples(text, "custom_requests_total") == [{"le": "x"}]  # a counter may keep le
    assert_parses(text, om)


def test_scope_labels_win_over_attributes_of_the_same_name() -> None:
    """With scope labels on, an attribute otel_scope_name becomes _otel_scope_name."""
    options = RenderOptions(scope_labels=True)
    text, _ = render_all(collection({"otel_scope_name": "mine"}, {}), options)
    (labels,) = samples(text, "custom_requests_total")
    assert labels["otel_scope_name"] == "fluxstack_otel.custom"
    assert labels["_otel_scope_name"] == "mine"


@requires_promtool
def test_the_issue_s_collisions_fail_no_more_under_promtool() -> None:
    """The pair a.b/a_b and a histogram le, together, give a clean parse under promtool."""
    text, _ = render_all(collection({"a.b": "1", "a_b": "2", "le": "3"}, {}), RenderOptions())
    findings = promtool_check_metrics(text)
    assert not [f for f in findings if f.startswith("error while linting")], findings
