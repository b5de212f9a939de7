"""Custom metrics as alert targets: declared by kind, evaluated, and exported as PromQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxstack_otel import Alert, ConfigError, configure_monitoring, load_config
from fluxstack_otel._internal.sinks.alerts.promql import rules_yaml
from servers import promtool_check_rules, requires_promtool, wait_until
from support.configs import NO_THRESHOLDS

ORDERS_RULE = {
    "metric": "shop.orders",
    "kind": "counter",
    "aggregation": "value",
    "operator": ">",
    "value": 5,
    "severity": "warning",
    "name": "ManyOrders",
    "labels": {"region": "eu"},
}


def test_a_custom_metric_rule_needs_its_kind() -> None:
    """Without kind an unknown name is refused, with the built-ins offered as a correction."""
    with pytest.raises(ConfigError) as caught:
        load_config({"alerts": [{**ORDERS_RULE, "kind": None, "metric": "http_request_total"}]})
    message = str(caught.value)
    assert caught.value.path == "alerts[0].metric"
    assert "'kind'" in message
    assert "did you mean 'http_requests_total'?" in message


def test_a_builtin_rule_with_the_wrong_kind_is_refused() -> None:
    """kind, when given for a built-in metric, must be the catalogue's."""
    with pytest.raises(ConfigError) as caught:
        load_config(
            {
                "alerts": [
                    {**ORDERS_RULE, "metric": "http_requests_total", "kind": "gauge", "labels": {}}
                ]
            }
        )
    assert caught.value.path == "alerts[0].kind"
    assert "expected 'counter' for 'http_requests_total'" in str(caught.value)
    assert "got 'gauge'" in str(caught.value)


def test_a_custom_counter_fires_and_resolves() -> None:
    """A rule on a custom counter fires when its labelled series crosses the threshold."""
    monitoring = configure_monitoring(
        {
            "system_metrics": False,
            "set_global": False,
            "alert_evaluation_interval": 0.1,
            "alerts": [ORDERS_RULE],
            "thresholds": NO_THRESHOLDS,
            "notifiers": [],
        }
    )
    seen: list[Alert] = []
    monitoring.on_alert(seen.append)
    orders = monitoring.counter("shop.orders", description="Orders placed.")
    try:
        orders.add(3, {"region": "eu"})
        orders.add(50, {"region": "us"})  # another series: not matched by the rule
        orders.add(4, {"region": "eu"})
        wait_until(lambda: seen, timeout=10, message="the custom-metric alert")
        assert seen[0].name == "ManyOrders"
        assert seen[0].state == "firing"
        assert seen[0].value == 7
        assert dict(seen[0].labels)["region"] == "eu"
    finally:
        monitoring.shutdown(2)


def test_custom_rules_export_with_the_exposed_prometheus_name() -> None:
    """The rules export reads the custom metric under the name /metrics gives it."""
    config = load_config(
        {
            "thresholds": NO_THRESHOLDS,
            "alerts": [
                ORDERS_RULE,
                {
                    "metric": "shop.checkout.duration",
                    "kind": "histogram",
                    "unit": "s",
                    "operator": ">",
                    "value": 2,
                    "severity": "error",
                },
            ],
        }
    )
    text = rules_yaml(config)
    assert "shop_orders_total{region=" in text
    assert "shop_checkout_duration_seconds_bucket" in text


@requires_promtool
def test_custom_rules_export_passes_promtool(tmp_path: Path) -> None:
    """promtool check rules accepts the exported custom-metric rules."""
    config = load_config({"thresholds": NO_THRESHOLDS, "alerts": [ORDERS_RULE]})
    path = tmp_path / "rules.yml"
    path.write_text(rules_yaml(config))
    promtool_check_rules(path)
