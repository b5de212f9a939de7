"""The public surface: what `import fluxstack_otel` offers changes only on purpose."""

from __future__ import annotations

import subprocess
import sys

import fluxstack_otel


def test_exported_names_are_pinned() -> None:
    """__all__ is exactly the documented public API, sorted."""
    assert fluxstack_otel.__all__ == [
        "Alert",
        "ConfigError",
        "MissingDependencyError",
        "Monitoring",
        "MonitoringConfig",
        "MonitoringMiddleware",
        "configure_monitoring",
        "load_config",
    ]
    assert fluxstack_otel.__all__ == sorted(fluxstack_otel.__all__)
    for name in fluxstack_otel.__all__:
        assert getattr(fluxstack_otel, name) is not None


def test_config_error_is_a_value_error() -> None:
    """ConfigError can be caught as ValueError, as the docs promise."""
    assert issubclass(fluxstack_otel.ConfigError, ValueError)


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
