"""Traces and logs under ``opentelemetry-instrument``, set up as the SDK's own configurator does.

``opentelemetry-distro``'s configurator is the SDK's ``_OTelSDKConfigurator``: it reads
``OTEL_TRACES_EXPORTER``, ``OTEL_LOGS_EXPORTER``, the OTLP endpoint, protocol and header
variables, ``OTEL_TRACES_SAMPLER(_ARG)`` and ``OTEL_PYTHON_ID_GENERATOR``, and loads exporters
from the ``opentelemetry_traces_exporter`` / ``opentelemetry_logs_exporter`` entry points. This
package's configurator provides the metrics pipeline itself and uses the SDK's own helpers for
the two other signals, so every variable means what it means there. Those helpers are private
(``opentelemetry.sdk._configuration``): this module is the one place that touches them, and the
supported SDK range in ``pyproject.toml`` is the range they are tested on.

What differs from ``opentelemetry-distro``, on purpose: an unset ``OTEL_TRACES_EXPORTER`` or
``OTEL_LOGS_EXPORTER`` means none (as with the SDK configurator alone), not ``otlp``, so a plain
install does not need the OTLP exporters; and the global ``TracerProvider`` is set only when
spans are wanted (a traces exporter, or ``tracing: true`` for duration exemplars), since a set
provider switches on every library's native tracing (FastAPI's among them).

Also here: the process's initial environment, to tell a user's variables from the defaults
another distro set (``initial_environ``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from opentelemetry.sdk.resources import Resource

from fluxstack_otel.errors import ConfigError

__all__ = ["SIGNAL_VARS", "configure_traces_and_logs", "initial_environ", "prepare"]

SIGNAL_VARS = {"traces": "OTEL_TRACES_EXPORTER", "logs": "OTEL_LOGS_EXPORTER"}
_GROUPS = {"traces": "opentelemetry_traces_exporter", "logs": "opentelemetry_logs_exporter"}


def prepare(*, tracing: bool) -> bool:
    """Whether traces or logs are wanted; if so, import the SDK configurator's module now.

    Call it before the monitoring's ``MeterProvider`` is built. Importing the SDK's configuration
    module imports ``concurrent.futures.thread``, which registers an at-fork handler; the SDK's
    ``MeterProvider`` registers one too, and in a forked child (a gunicorn worker) it runs a
    thread pool: if its handler was registered first it runs before the thread module's has
    released its lock, and the worker hangs. Importing first keeps the safe order.

    Args:
        tracing: The configuration has ``tracing: true``.

    Returns:
        True when ``configure_traces_and_logs`` has something to set up.
    """
    wanted = tracing or any(
        os.environ.get(var, "").strip().lower() not in ("", "none") for var in SIGNAL_VARS.values()
    )
    if wanted:
        import concurrent.futures.thread  # noqa: F401  (the order of the fork handlers)

        import opentelemetry.sdk._configuration  # noqa: F401
    return wanted


def configure_traces_and_logs(resource: Resource, *, tracing: bool) -> dict[str, list[str]]:
    """Set the global TracerProvider and LoggerProvider from the standard variables.

    Args:
        resource: The monitoring's resource, so spans and logs name the same service.
        tracing: The configuration has ``tracing: true``: spans are wanted for exemplars even
            with no traces exporter.

    Returns:
        The exporter entry-point names set up, per signal.

    Raises:
        ConfigError: An exporter named in ``OTEL_TRACES_EXPORTER`` / ``OTEL_LOGS_EXPORTER`` is not
            installed (naming the variable, the entry and the installed ones), or the sampler or
            OTLP protocol variable holds a value the SDK refuses.
    """
    from opentelemetry.sdk import _configuration as sdk

    names = {signal: _names(sdk, signal) for signal in SIGNAL_VARS}
    exporters = {signal: _load(sdk, signal, names[signal]) for signal in SIGNAL_VARS}
    if names["traces"] or tracing:
        try:
            sampler = sdk._import_sampler(sdk._get_sampler())
            id_generator = sdk._import_id_generator(sdk._get_id_generator())
        except Exception as exc:
            raise ConfigError(
                f"the sampler or id generator cannot be set up: {exc}",
                path="OTEL_TRACES_SAMPLER",
            ) from None
        sdk._init_tracing(
            exporters=exporters["traces"],
            id_generator=id_generator,
            sampler=sampler,
            resource=resource,
        )
    if names["logs"]:
        handler = os.environ.get("OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED", "false")
        sdk._init_logging(exporters["logs"], resource, handler.strip().lower() == "true")
    return names


def _names(sdk: Any, signal: str) -> list[str]:
    try:
        found: list[str] = sdk._get_exporter_names(signal)
    except RuntimeError as exc:  # an OTLP protocol the SDK does not know
        raise ConfigError(
            f"{exc}; allowed: grpc, http/protobuf", path="OTEL_EXPORTER_OTLP_PROTOCOL"
        ) from None
    return found


def _load(sdk: Any, signal: str, names: list[str]) -> dict[str, type]:
    group = _GROUPS[signal]
    installed = sorted({ep.name for ep in entry_points(group=group)})
    for name in names:
        if name not in installed:
            hint = " (OTLP over gRPC, the default protocol)" if name == "otlp_proto_grpc" else ""
            raise ConfigError(
                f"exporter {name!r}{hint} is not installed: no {group} entry point of that name;"
                f" installed: {', '.join(installed) or 'none'}"
                + ("; pip install opentelemetry-exporter-otlp" if name.startswith("otlp") else ""),
                path=SIGNAL_VARS[signal],
            )
    empty: list[str] = []
    loaded = sdk._import_exporters(
        names if signal == "traces" else empty, empty, names if signal == "logs" else empty
    )
    result: dict[str, type] = loaded[0] if signal == "traces" else loaded[2]
    return result


def initial_environ() -> Mapping[str, str] | None:
    """The environment the process started with (before any distro's ``setdefault``).

    Returns:
        The variables, or None where the platform does not show them (no ``/proc``).
    """
    try:
        with open("/proc/self/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    out: dict[str, str] = {}
    for item in raw.split(b"\0"):
        name, sep, value = item.partition(b"=")
        if sep:
            out[os.fsdecode(name)] = os.fsdecode(value)
    return out
