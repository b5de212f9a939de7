"""The environment variables the configuration reads: ``ENV_VARS``, and how their text is read.

Every top-level parameter has ``FLUXSTACK_MONITORING_<KEY>``; some also have the FluxStack
plugin's variable or a standard OpenTelemetry one (``OTEL_SERVICE_NAME``,
``OTEL_METRIC_EXPORT_INTERVAL``, ``OTEL_METRICS_EXPORTER``...). The table lists them per key in
precedence order; ``_sources.resolve`` reads them with the checks every other source uses, and
the generated reference documents them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import unquote

from fluxstack_otel._internal.config.checks import show, suggest
from fluxstack_otel._internal.config.model import PARAMETERS
from fluxstack_otel.errors import ConfigError

__all__ = ["ENV_PREFIX", "ENV_VARS", "UNSET", "EnvVar", "Reader"]

ENV_PREFIX = "FLUXSTACK_MONITORING_"
UNSET: Any = object()
"""What a reader returns when the text means "leave the key alone"."""

Reader = Callable[[str, str], Any]
"""Turns a variable's text into the raw value the key's check reads: ``(text, name) -> value``;
``UNSET`` when the text means "leave the key alone"."""


class EnvVar(NamedTuple):
    """One environment variable and the top-level key it sets (or, ``adjusts``, modifies)."""

    name: str
    """The variable."""
    key: str
    """The top-level parameter it sets."""
    read: Reader
    """Reads the text into a raw value for the key's check."""
    value: str
    """What the text holds, for the reference."""
    camel: bool = False
    """The key's check reads the value in FluxStack style (durations in milliseconds)."""
    adjusts: bool = False
    """It modifies the winning exporters list instead of setting the key."""


# --- reading text -------------------------------------------------------------------------------


def _bool(text: str, name: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ConfigError(f"expected true, false, 1 or 0, got {show(text)}", path=name)


_INT = re.compile(r"[+-]?\d+")


def _number(text: str, name: str) -> int | float:
    stripped = text.strip()
    try:
        if _INT.fullmatch(stripped):
            return int(stripped)  # past 4,300 digits Python refuses: a ValueError too
        return float(stripped)  # NaN and infinities are refused by the key's own check
    except ValueError:
        raise ConfigError(f"expected a number, got {show(text)}", path=name) from None


def _duration(text: str, name: str) -> int | float | str:
    """A number in the variable's unit, or a unit string (``30s``) for the key's check."""
    try:
        return _number(text, name)
    except ConfigError:
        return text.strip()


def _text(text: str, name: str) -> str:
    return text


def _excluded_urls(text: str, name: str) -> list[str]:
    """OpenTelemetry's comma-separated URL patterns, searched in the path: ``re:`` entries."""
    import re  # only a process with the variable set needs it

    patterns = [p.strip() for p in text.split(",") if p.strip()]
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(
                f"expected comma-separated regular expressions; {pattern!r} is not one ({exc})",
                path=name,
            ) from None
    return [f"re:.*(?:{pattern}).*" for pattern in patterns]


def _json(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        # The text is not quoted: a JSON-valued variable may hold secrets (auth, headers); the
        # decoder's message gives the position of the fault instead.
        raise ConfigError(f"expected JSON, not valid JSON ({exc})", path=name) from None
    except RecursionError:
        raise ConfigError("expected JSON, got JSON nested too deeply", path=name) from None


def _listed(item: Reader) -> Reader:
    """A JSON list, or comma-separated items."""

    def read(text: str, name: str) -> Any:
        if text.lstrip().startswith("["):
            return _json(text, name)
        return [item(part.strip(), name) for part in text.split(",") if part.strip()]

    return read


def _reader_for(annotation: str) -> tuple[Reader, str]:
    """The reader of a ``FLUXSTACK_MONITORING_*`` variable, from the key's annotation."""
    base = annotation.removesuffix(" | None")
    simple: dict[str, tuple[Reader, str]] = {
        "bool": (_bool, "true, false, 1 or 0"),
        "int": (_number, "an integer"),
        "float": (_number, "a number"),
        "str": (_text, "text"),
        "tuple[str, ...]": (_listed(_text), "a JSON list or comma-separated"),
        "tuple[float, ...]": (_listed(_number), "a JSON list or comma-separated numbers"),
    }
    if base.startswith("Literal["):
        return _text, "one of " + base.removeprefix("Literal[").removesuffix("]")
    return simple.get(base, (_json, "JSON"))


_HISTOGRAM_AGGREGATIONS = {
    "explicit_bucket_histogram": "explicit",
    "base2_exponential_bucket_histogram": "exponential",
}


def _histogram_aggregation(text: str, name: str) -> str:
    # The OTLP exporter's variable: the SDK warns and falls back on a typo; here it is refused.
    value = text.strip().lower()
    if value not in _HISTOGRAM_AGGREGATIONS:
        allowed = " or ".join(_HISTOGRAM_AGGREGATIONS)
        raise ConfigError(f"expected {allowed}, got {show(text)}", path=name)
    return _HISTOGRAM_AGGREGATIONS[value]


def _sdk_disabled(text: str, name: str) -> Any:
    # OTEL_SDK_DISABLED only ever disables: "false" leaves ``enabled`` to the other sources.
    return False if _bool(text, name) else UNSET


def _resource_service_name(text: str, name: str) -> Any:
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip() == "service.name" and value.strip():
            return unquote(value.strip())
    return UNSET


_OTEL_EXPORTERS = {
    "otlp": {"type": "otlp"},
    "prometheus": {"type": "prometheus"},
    # As the SDK's ConsoleMetricExporter: JSON on stdout (not the logger, which prints nothing
    # until logging is configured).
    "console": {"type": "console", "stream": "stdout", "format": "json"},
}


def _metrics_exporter(text: str, name: str) -> Any:
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    allowed = [*_OTEL_EXPORTERS, "none"]
    for item in names:
        if item not in allowed:
            raise ConfigError(
                f"unknown exporter {item!r}{suggest(item, allowed)};"
                f" allowed: {', '.join(allowed)} (comma-separated)",
                path=name,
            )
    if "none" in names:
        if len(names) > 1:
            raise ConfigError(f"'none' cannot be combined with others, got {show(text)}", path=name)
        return []
    return [_OTEL_EXPORTERS[item] for item in dict.fromkeys(names)]


def _fluxstack_env_vars() -> tuple[EnvVar, ...]:
    out = []
    for p in PARAMETERS:
        read, value = _reader_for(p.type)
        if p.unit == "s":
            read, value = _duration, "a number of seconds or a duration such as 30s or 500ms"
        out.append(EnvVar(name=p.env_var, key=p.name, read=read, value=value))
    return tuple(out)


# The FluxStack plugin's own variables: switches, and durations in milliseconds (its unit).
_PLUGIN_SWITCHES = {
    "ENABLE_MONITORING": "enabled",
    "HTTP_METRICS": "http_metrics",
    "SYSTEM_METRICS": "system_metrics",
    "CUSTOM_METRICS": "custom_metrics",
}
_PLUGIN_DURATIONS = {
    "METRICS_INTERVAL": "collect_interval",
    "METRICS_RETENTION_PERIOD": "retention_period",
}

_ALIASES: tuple[EnvVar, ...] = (
    *(
        EnvVar(name=name, key=key, read=_bool, value="true, false, 1 or 0")
        for name, key in _PLUGIN_SWITCHES.items()
    ),
    *(
        EnvVar(
            name=name,
            key=key,
            read=_duration,
            value="milliseconds, or a duration such as 30s",
            camel=True,
        )
        for name, key in _PLUGIN_DURATIONS.items()
    ),
    # The standard OpenTelemetry variables.
    EnvVar(
        name="OTEL_SDK_DISABLED",
        key="enabled",
        read=_sdk_disabled,
        value="true disables; false leaves it to the other sources",
    ),
    EnvVar(name="OTEL_SERVICE_NAME", key="service_name", read=_text, value="text"),
    EnvVar(
        name="OTEL_PYTHON_EXCLUDED_URLS",
        key="excluded_paths",
        read=_excluded_urls,
        value="comma-separated regular expressions, each searched in the request path",
    ),
    EnvVar(
        name="OTEL_RESOURCE_ATTRIBUTES",
        key="service_name",
        read=_resource_service_name,
        value="its service.name entry",
    ),
    EnvVar(
        name="OTEL_METRIC_EXPORT_INTERVAL",
        key="collect_interval",
        read=_duration,
        value="milliseconds, or a duration such as 30s",
        camel=True,
    ),
    EnvVar(
        name="OTEL_METRICS_EXPORTER",
        key="exporters",
        read=_metrics_exporter,
        value="comma-separated: otlp, prometheus, console (JSON on stdout), or none",
    ),
    EnvVar(
        name="OTEL_EXPORTER_PROMETHEUS_HOST",
        key="exporters",
        read=_text,
        value="host: the first Prometheus exporter serves on its own (port 9464 unless set)",
        adjusts=True,
    ),
    EnvVar(
        name="OTEL_EXPORTER_PROMETHEUS_PORT",
        key="exporters",
        read=_number,
        value="port: the first Prometheus exporter serves on its own",
        adjusts=True,
    ),
    EnvVar(
        name="OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
        key="histograms",
        read=_histogram_aggregation,
        value="explicit_bucket_histogram or base2_exponential_bucket_histogram",
    ),
    EnvVar(
        name="METRICS_EXPORT_CONSOLE",
        key="exporters",
        read=_bool,
        value="true adds a console exporter",
        adjusts=True,
    ),
)


def _ordered() -> tuple[EnvVar, ...]:
    # Per key: FLUXSTACK_MONITORING_<KEY> first, then the aliases in the order written above.
    native = _fluxstack_env_vars()
    out: list[EnvVar] = []
    for var in native:
        out.append(var)
        out.extend(alias for alias in _ALIASES if alias.key == var.key)
    return tuple(out)


ENV_VARS: tuple[EnvVar, ...] = _ordered()
"""Every variable read, grouped by key in precedence order (first set wins within a key)."""
