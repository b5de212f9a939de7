"""Compiling alert rules: FluxStack defaults, built-in thresholds, and configuration errors."""

from __future__ import annotations

from typing import Any

import pytest

from fluxstack_otel import ConfigError, load_config
from fluxstack_otel._internal.config.model import (
    AlertmanagerNotifierConfig,
    AlertRule,
    LogNotifierConfig,
    MonitoringConfig,
    Thresholds,
    WebhookNotifierConfig,
)
from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.sinks.alerts.rules import Ratio, Select
from fluxstack_otel.alerts import compile_rules
from support.configs import FLUXSTACK_SEED, NO_THRESHOLDS


def test_the_fluxstack_rule_works_unchanged_with_the_ms_alias() -> None:
    """FluxStack's {metric, operator, value, severity} on the _ms alias reads p95 in ms."""
    config = load_config(
        {
            "alerts": FLUXSTACK_SEED["alerts"],  # the plugin README's rule, verbatim
            "thresholds": {
                "responseTime": None,
                "errorRate": None,
                "memoryUsage": None,
                "cpuUsage": None,
            },
        }
    )
    (rule,) = compile_rules(config)
    assert rule.expr == Select(cat.HTTP_REQUEST_DURATION, "p95")
    assert (rule.scale, rule.threshold, rule.window, rule.for_) == (1000, 2000, 60, 0)
    assert rule.name == "http_request_duration_ms_p95_gt_2000"
    assert rule.subject == "http_request_duration_ms p95"


def test_default_thresholds_become_four_named_rules() -> None:
    """The FluxStack thresholds are on by default and become the four built-in rules."""
    rules = compile_rules(MonitoringConfig())
    assert [(r.name, r.severity, r.threshold) for r in rules] == [
        ("HighResponseTime", "warning", 1000),
        ("HighErrorRate", "error", 0.05),
        ("HighMemoryUsage", "warning", 0.8),
        ("HighCpuUsage", "warning", 0.8),
    ]
    assert all(r.builtin and r.window == 60 for r in rules)
    assert rules[3].expr == Ratio(
        Select(cat.PROCESS_CPU_USER, "rate", by_series=False),
        Select(cat.SYSTEM_CPU_CORES, "value", by_series=False),
    )


def test_threshold_window_covers_two_evaluation_intervals() -> None:
    """With a long evaluation interval the threshold window grows so rates have a baseline."""
    rules = compile_rules(load_config({"alert_evaluation_interval": 45}))
    assert {r.window for r in rules} == {90}


def test_a_threshold_set_to_null_adds_no_rule() -> None:
    """Turning every threshold off leaves only the configured alerts."""
    assert compile_rules(load_config({"thresholds": NO_THRESHOLDS})) == ()


def test_rules_built_in_code_with_an_alias_are_scaled_too() -> None:
    """A MonitoringConfig built in code may name the alias; it is read like the parsed form."""
    config = MonitoringConfig(
        alerts=(
            AlertRule(metric="http_request_duration_ms", operator=">", value=5, severity="info"),
        ),
        thresholds=Thresholds(**NO_THRESHOLDS),
    )
    (rule,) = compile_rules(config)
    assert (rule.expr.metric, rule.expr.aggregation, rule.scale) == (  # type: ignore[union-attr]
        cat.HTTP_REQUEST_DURATION,
        "p95",
        1000,
    )


@pytest.mark.parametrize(
    ("alert", "path", "fragment"),
    [
        ({"metric": "http_request_duration"}, "alerts[0].metric", "did you mean"),
        ({"aggregation": "p95"}, "alerts[0].aggregation", "'rate'"),
        ({"aggregation": "avg"}, "alerts[0].aggregation", "'rate'"),
        ({"labels": {"path": "/x"}}, "alerts[0].labels.path", "unknown label 'path'"),
        ({"message": "{valeu}"}, "alerts[0].message", "did you mean 'value'"),
        ({"message": "{labels[path]}"}, "alerts[0].message", "names no label"),
        ({"message": "{value:d}"}, "alerts[0].message", "cannot render"),
        ({"message": "{value"}, "alerts[0].message", "not a valid template"),
    ],
)
def test_bad_rules_are_config_errors_naming_the_key(
    alert: dict[str, Any], path: str, fragment: str
) -> None:
    """Unknown metrics, aggregations, labels or template fields are ConfigErrors at startup."""
    base = {"metric": "http_requests_total", "operator": ">", "value": 1, "severity": "info"}
    with pytest.raises(ConfigError) as info:
        compile_rules(load_config({"alerts": [{**base, **alert}]}))
    assert info.value.path == path
    assert fragment in str(info.value)


def test_rules_built_in_code_are_checked_when_constructed() -> None:
    """A rule constructed in code with a bad metric fails as it is built, not at run time."""
    with pytest.raises(ConfigError, match=r"^metric: expected a built-in metric .* got 'nope'"):
        AlertRule(metric="nope", operator=">", value=1, severity="info")


def test_notifiers_default_to_the_log_and_parse_every_type() -> None:
    """notifiers defaults to the log; webhook and alertmanager entries parse with options."""
    assert MonitoringConfig().notifiers == (LogNotifierConfig(),)
    config = load_config(
        {
            "notifiers": [
                {"type": "webhook", "url": "https://hooks.example/T0k3n", "headers": {"X-A": "b"}},
                {"type": "alertmanager", "url": "http://am:9093", "timeout": "2s"},
            ]
        }
    )
    assert config.notifiers == (
        WebhookNotifierConfig(url="https://hooks.example/T0k3n", headers=(("X-A", "b"),)),
        AlertmanagerNotifierConfig(url="http://am:9093", timeout=2.0),
    )
    assert "'b'" not in repr(config)


def test_notifier_timeouts_are_milliseconds_in_fluxstack_style() -> None:
    """In camelCase style a notifier timeout is read in milliseconds like every duration."""
    config = load_config(
        {
            "alertEvaluationInterval": 1000,
            "notifiers": [{"type": "webhook", "url": "http://h/", "timeout": 2500}],
        }
    )
    assert config.notifiers[0].timeout == 2.5  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("notifier", "path"),
    [
        ({"type": "slack"}, "notifiers[0].type"),
        ({}, "notifiers[0]"),
        ({"type": "webhook"}, "notifiers[0]"),
        ({"type": "webhook", "url": "ftp://x"}, "notifiers[0].url"),
        ({"type": "alertmanager", "url": "http://a", "headers": {}}, "notifiers[0].headers"),
        ({"type": "log", "url": "http://a"}, "notifiers[0].url"),
    ],
)
def test_bad_notifiers_are_config_errors(notifier: dict[str, Any], path: str) -> None:
    """Unknown types, missing or bad URLs and unknown keys name the notifier's key path."""
    with pytest.raises(ConfigError) as info:
        load_config({"notifiers": [notifier]})
    assert info.value.path == path
