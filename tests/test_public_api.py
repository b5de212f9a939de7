"""The public surface: what `import fluxstack_otel` offers changes only on purpose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import fluxstack_otel

# The public names, written by topic (the tests compare them, sorted, with what each module
# exports, so a name added or removed anywhere fails here until it is pinned on purpose).
CONFIG_NAMES_BY_TOPIC = {
    "the model": ["MonitoringConfig", "load_config", "Thresholds", "LabelConfig"],
    "features": ["DashboardConfig", "MultiprocessConfig", "EndpointServerConfig"],
    "auth": ["AuthConfig", "BasicAuthConfig"],
    "exporters": ["ExporterConfig", "PrometheusExporterConfig", "JsonExporterConfig"],
    "OpenTelemetry exporters": ["OtlpExporterConfig", "OtelExporterConfig"],
    "local exporters": ["ConsoleExporterConfig", "FileExporterConfig"],
    "alerts": ["AlertRule", "NotifierConfig", "LogNotifierConfig"],
    "remote notifiers": ["WebhookNotifierConfig", "AlertmanagerNotifierConfig"],
}
CONFIG_NAMES = sorted(name for names in CONFIG_NAMES_BY_TOPIC.values() for name in names)
HANDLE_NAMES = ["configure_monitoring", "Monitoring", "MonitoringMiddleware", "Alert"]
ERROR_NAMES = ["ConfigError", "MissingDependencyError"]
ALERTS_TYPES = ["Alert", "AlertCallback", "AlertProcessor", "Rule"]
ALERTS_FUNCTIONS = ["build_processor", "compile_rules", "rules_yaml"]


def test_exported_names_are_pinned() -> None:
    """__all__ is exactly the documented public API, sorted, the config classes included."""
    assert fluxstack_otel.__all__ == sorted([*HANDLE_NAMES, *ERROR_NAMES, *CONFIG_NAMES])
    assert fluxstack_otel.__all__ == sorted(fluxstack_otel.__all__)
    for name in fluxstack_otel.__all__:
        assert getattr(fluxstack_otel, name) is not None


def test_config_module_exports_the_config_classes() -> None:
    """fluxstack_otel.config pins the config classes, the same objects the package exports."""
    import fluxstack_otel.config as config

    assert config.__all__ == CONFIG_NAMES == sorted(CONFIG_NAMES)
    for name in CONFIG_NAMES:
        assert getattr(config, name) is getattr(fluxstack_otel, name)


def test_alerts_module_exports_the_alert_machinery() -> None:
    """fluxstack_otel.alerts pins its names, sorted; Alert is the object the package exports."""
    import fluxstack_otel.alerts as alerts

    assert alerts.__all__ == sorted([*ALERTS_TYPES, *ALERTS_FUNCTIONS])
    for name in alerts.__all__:
        assert getattr(alerts, name) is not None
    assert alerts.Alert is fluxstack_otel.Alert


def test_config_error_is_a_value_error() -> None:
    """ConfigError can be caught as ValueError, as the docs promise."""
    assert issubclass(fluxstack_otel.ConfigError, ValueError)


@pytest.mark.slow
def test_import_starts_nothing() -> None:
    """Importing the package starts no thread and sets no global provider."""
    code = (
        "import threading, fluxstack_otel\n"
        "from opentelemetry import metrics\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "assert type(metrics.get_meter_provider()).__name__ == '_ProxyMeterProvider'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_package_ships_py_typed() -> None:
    """The package is marked as typed for mypy and pyright users."""
    from importlib.resources import files

    assert files("fluxstack_otel").joinpath("py.typed").is_file()


# Modules the default pipeline (Prometheus at /metrics, system metrics, the threshold alerts)
# has no use for: HTTP clients and TLS (webhooks, OTLP, JSON push), the standalone servers, the
# event loop (an ASGI server brings its own), config-file parsing, the optional features.
_NOT_LOADED_BY_DEFAULT = (
    "asyncio",
    "ssl",
    "http.client",
    "http.server",
    "urllib.request",
    "email",
    "gzip",
    "tomllib",
    "difflib",
    "hashlib",
    "importlib.resources",
    "fluxstack_otel._internal.sinks.auth",
    "fluxstack_otel._internal.transport.post",
    "fluxstack_otel._internal.sinks.dashboard.sink",
    "fluxstack_otel._internal.sinks.endpoint_server",
    "fluxstack_otel._internal.runtime.multiprocess.host",
    "fluxstack_otel._internal.sinks.otlp",
    "fluxstack_otel._internal.sinks.json_endpoint",
    "fluxstack_otel._internal.sinks.file",
    "fluxstack_otel._internal.sinks.console",
    "fluxstack_otel._internal.sinks.endpoint_server",
)


@pytest.mark.slow
def test_default_configuration_imports_only_what_it_uses(tmp_path: Path) -> None:
    """import + configure_monitoring() with the defaults loads no optional module (start-up time)."""
    code = (
        "import sys, fluxstack_otel\n"
        "m = fluxstack_otel.configure_monitoring()\n"
        "m.render_prometheus()\n"
        f"print([n for n in {_NOT_LOADED_BY_DEFAULT!r} if n in sys.modules])\n"
        "m.shutdown()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,  # no pyproject.toml
        env={k: v for k, v in os.environ.items() if not k.startswith(("FLUXSTACK", "OTEL_"))},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
def test_a_feature_loads_its_module_when_configured(tmp_path: Path) -> None:
    """The lazily imported parts arrive when the configuration asks for them."""
    code = (
        "import sys, fluxstack_otel\n"
        "m = fluxstack_otel.configure_monitoring({'exporters': [\n"
        "    {'type': 'prometheus', 'port': 0},\n"
        f"    {{'type': 'file', 'file_path': {str(tmp_path / 'm.json')!r}, 'interval': 60}}],\n"
        "    'dashboard': {'enabled': True}})\n"
        "print(sorted(n for n in sys.modules if n in ('fluxstack_otel._internal.sinks.file',\n"
        "    'fluxstack_otel._internal.sinks.endpoint_server',\n"
        "    'fluxstack_otel._internal.sinks.dashboard.sink')))\n"
        "m.shutdown()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == str(
        [
            "fluxstack_otel._internal.sinks.dashboard.sink",
            "fluxstack_otel._internal.sinks.endpoint_server",
            "fluxstack_otel._internal.sinks.file",
        ]
    )
