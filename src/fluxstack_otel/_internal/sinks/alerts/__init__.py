"""Alerts: rules over the metric stream, their lifecycle, their delivery, their PromQL twin.

- ``_rules``: the compiled rule model (configured alerts and the built-in thresholds).
- ``_snapshot`` and ``_evaluate``: pure evaluation over a history of snapshots and a clock.
- ``_notify``: the log, callbacks, webhook and Alertmanager notifiers.
- ``_processor``: the sink that runs it all on a schedule.
- ``_promql``: the same rules as a Prometheus alerting-rules file.
"""

from fluxstack_otel._internal.sinks.alerts.alert import Alert
from fluxstack_otel._internal.sinks.alerts.notify import AlertCallback
from fluxstack_otel._internal.sinks.alerts.processor import AlertProcessor, build_processor
from fluxstack_otel._internal.sinks.alerts.promql import rules_yaml
from fluxstack_otel._internal.sinks.alerts.rules import Rule, compile_rules

__all__ = [
    "Alert",
    "AlertCallback",
    "AlertProcessor",
    "Rule",
    "build_processor",
    "compile_rules",
    "rules_yaml",
]
