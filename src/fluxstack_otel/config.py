"""The configuration classes: build a configuration in code, typed and validated as it is built.

    from fluxstack_otel.config import MonitoringConfig, OtlpExporterConfig

    config = MonitoringConfig(
        service_name="shop",
        exporters=(OtlpExporterConfig(endpoint="http://collector:4318/v1/metrics"),),
    )

Every class is a frozen, keyword-only dataclass. Constructing one (or ``dataclasses.replace``)
runs the checks a mapping, a file or the environment meets, so a bad value raises
``ConfigError`` at once, naming the field, the value received and what is allowed. In code,
durations are numbers of seconds. ``load_config`` builds a ``MonitoringConfig`` from a mapping
or a file (docs/configuration.md).
"""

from fluxstack_otel._internal.config.model import (
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

__all__ = [
    "AlertRule",
    "AlertmanagerNotifierConfig",
    "AuthConfig",
    "BasicAuthConfig",
    "ConsoleExporterConfig",
    "DashboardConfig",
    "EndpointServerConfig",
    "ExporterConfig",
    "FileExporterConfig",
    "JsonExporterConfig",
    "LogNotifierConfig",
    "MonitoringConfig",
    "MultiprocessConfig",
    "NotifierConfig",
    "OtelExporterConfig",
    "OtlpExporterConfig",
    "PrometheusExporterConfig",
    "Thresholds",
    "WebhookNotifierConfig",
    "load_config",
]
