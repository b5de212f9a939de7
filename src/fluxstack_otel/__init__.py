"""fluxstack-otel: production monitoring for any ASGI app in one call, built on OpenTelemetry.

from fluxstack_otel import configure_monitoring

monitoring = configure_monitoring()      # mapping | MonitoringConfig | .toml/.json path | None
app = monitoring.instrument(app)         # HTTP metrics + /metrics
...
monitoring.shutdown()
"""

from fluxstack_otel import config as _config
from fluxstack_otel._internal.http.middleware import MonitoringMiddleware
from fluxstack_otel._internal.monitoring import Monitoring, configure_monitoring
from fluxstack_otel._internal.sinks.alerts import Alert
from fluxstack_otel.config import *  # noqa: F403
from fluxstack_otel.errors import ConfigError, MissingDependencyError

__all__ = [
    "Alert",
    "ConfigError",
    "MissingDependencyError",
    "Monitoring",
    "MonitoringMiddleware",
    "configure_monitoring",
]
# The configuration classes are public as fluxstack_otel.config lists them (one list, not two).
__all__ += _config.__all__
__all__.sort()
