"""fluxstack-otel: production monitoring for any ASGI app in one call, built on OpenTelemetry.

from fluxstack_otel import configure_monitoring

monitoring = configure_monitoring()      # mapping | MonitoringConfig | .toml/.json path | None
app = monitoring.instrument(app)         # HTTP metrics + /metrics
...
monitoring.shutdown()
"""

from fluxstack_otel._internal.http.middleware import MonitoringMiddleware
from fluxstack_otel._internal.monitoring import Monitoring, configure_monitoring
from fluxstack_otel._internal.sinks.alerts import Alert
from fluxstack_otel.config import (
    AlertmanagerNotifierConfig,
    AlertRule,
    AuthConfig,
    BasicAuthConfig,
    ConsoleExporterConfig,
    DashboardConfig,
    EndpointServerConfig,
    ExporterConfig,
    FileExporterConfig,
    JsonExporterConfig,
    LogNotifierConfig,
    MonitoringConfig,
    MultiprocessConfig,
    NotifierConfig,
    OtelExporterConfig,
    OtlpExporterConfig,
    PrometheusExporterConfig,
    Thresholds,
    WebhookNotifierConfig,
    load_config,
)
from fluxstack_otel.errors import ConfigError, MissingDependencyError

__all__ = [
    "Alert",
    "AlertRule",
    "AlertmanagerNotifierConfig",
    "AuthConfig",
    "BasicAuthConfig",
    "ConfigError",
    "ConsoleExporterConfig",
    "DashboardConfig",
    "EndpointServerConfig",
    "ExporterConfig",
    "FileExporterConfig",
    "JsonExporterConfig",
    "LogNotifierConfig",
    "MissingDependencyError",
    "Monitoring",
    "MonitoringConfig",
    "MonitoringMiddleware",
    "MultiprocessConfig",
    "NotifierConfig",
    "OtelExporterConfig",
    "OtlpExporterConfig",
    "PrometheusExporterConfig",
    "Thresholds",
    "WebhookNotifierConfig",
    "configure_monitoring",
    "load_config",
]
