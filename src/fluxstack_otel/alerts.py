"""Alerts: the ``Alert`` a callback or notifier receives, and the rule machinery behind it.

``Monitoring.on_alert(fn)`` calls ``fn(alert)`` when an alert fires, repeats and resolves
(docs/alerts.md).
"""

from fluxstack_otel._internal.sinks.alerts import (
    Alert,
    AlertCallback,
    AlertProcessor,
    Rule,
    build_processor,
    compile_rules,
    rules_yaml,
)

__all__ = [
    "Alert",
    "AlertCallback",
    "AlertProcessor",
    "Rule",
    "build_processor",
    "compile_rules",
    "rules_yaml",
]
