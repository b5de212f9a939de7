"""Alerts: the ``Alert`` a callback or notifier receives, and the rule machinery behind it.

``Monitoring.on_alert(fn)`` calls ``fn(alert)`` when an alert fires, repeats and resolves
(docs/alerts.md).
"""

# The alerts package's __all__ is the public list, re-exported as it stands.
from fluxstack_otel._internal.sinks.alerts import *  # noqa: F403
from fluxstack_otel._internal.sinks.alerts import __all__ as __all__
