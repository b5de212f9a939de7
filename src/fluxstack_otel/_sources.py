"""Where the configuration comes from, and which source wins: ``resolve``.

Precedence, decided per top-level key (one row of ``PARAMETERS``)::

    explicit argument  >  environment  >  config file  >  default

A key is taken whole from the highest source that sets it; sources are never deep-merged (an
``exporters`` list from the environment replaces the file's list). One exception, because the
standard OpenTelemetry variables mean "adjust the exporter", not "replace the list":
``OTEL_EXPORTER_PROMETHEUS_HOST``/``PORT`` and ``METRICS_EXPORT_CONSOLE`` adjust whichever
exporters list won, unless the explicit argument set it.

- Explicit argument: what ``configure_monitoring(config)`` receives (a mapping, or a file path).
  Only the keys it sets win; a ``MonitoringConfig`` object is complete, so with one nothing else
  is read.
- Environment: the variables in ``ENV_VARS``. Several may set one key; the first one set in that
  table's order wins (``FLUXSTACK_MONITORING_<KEY>``, then the FluxStack plugin's variable, then
  the OpenTelemetry one), and every variable that is set is validated. An empty value counts as
  unset, as OpenTelemetry specifies. Values are text read with the checks every other source
  uses: booleans ``true``/``false``/``1``/``0``, lists as JSON or comma-separated, nested keys as
  JSON; a bad one is a ``ConfigError`` naming the variable.
- Config file: ``FLUXSTACK_CONFIG`` (a ``.toml`` or ``.json`` path, relative to the working
  directory); without it, ``pyproject.toml`` in the working directory when it has a
  ``[tool.fluxstack.monitoring]`` table.

The environment is read from the ``environ`` mapping given, so tests never touch ``os.environ``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from typing import Any, NamedTuple
from urllib.parse import unquote

from fluxstack_otel._config import (
    PARAMETERS,
    ConsoleExporterConfig,
    ExporterConfig,
    MonitoringConfig,
    PrometheusExporterConfig,
    load_config,
)
from fluxstack_otel._config_parse import (
    CHECK,
    PYPROJECT_TABLE,
    integer,
    read_document,
    show,
    suggest,
)
from fluxstack_otel._errors import ConfigError

__all__ = [
    "CONFIG_FILE_VAR",
    "ENV_PREFIX",
    "ENV_VARS",
    "EnvVar",
    "Resolution",
    "resolve",
]

ENV_PREFIX = "FLUXSTACK_MONITORING_"
CONFIG_FILE_VAR = "FLUXSTACK_CONFIG"
ARGUMENT, DEFAULT = "argument", "default"
_PROMETHEUS_DEFAULT_PORT = 9464  # OpenTelemetry's default for OTEL_EXPORTER_PROMETHEUS_PORT
_UNSET: Any = object()

Reader = Callable[[str, str], Any]
"""Turns a variable's text into the raw value the key's check reads: ``(text, name) -> value``;
``_UNSET`` when the text means "leave the key alone"."""


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


class Resolution(NamedTuple):
    """The resolved configuration and where each top-level key came from.

    Attributes:
        config: The validated configuration.
        sources: Top-level key -> ``default``, ``file:PATH``, ``env:VAR`` or ``argument``
            (an adjusted exporters list reads ``file:PATH + env:VAR``).
        file: The config file read, if any.
    """

    config: MonitoringConfig
    sources: Mapping[str, str]
    file: str | None


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
    if _INT.fullmatch(stripped):
        return int(stripped)
    try:
        return float(stripped)  # NaN and infinities are refused by the key's own check
    except ValueError:
        raise ConfigError(f"expected a number, got {show(text)}", path=name) from None


def _text(text: str, name: str) -> str:
    return text


def _json(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        # The text is not quoted: a JSON-valued variable may hold secrets (auth, headers); the
        # decoder's message gives the position of the fault instead.
        raise ConfigError(f"expected JSON, not valid JSON ({exc})", path=name) from None


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


def _sdk_disabled(text: str, name: str) -> Any:
    # OTEL_SDK_DISABLED only ever disables: "false" leaves ``enabled`` to the other sources.
    return False if _bool(text, name) else _UNSET


def _resource_service_name(text: str, name: str) -> Any:
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip() == "service.name" and value.strip():
            return unquote(value.strip())
    return _UNSET


_OTEL_EXPORTERS = {
    "otlp": {"type": "otlp"},
    "prometheus": {"type": "prometheus"},
    "console": {"type": "console"},
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
            value += " (seconds)"
        out.append(EnvVar(name=p.env_var, key=p.name, read=read, value=value))
    return tuple(out)


_ALIASES: tuple[EnvVar, ...] = (
    # The FluxStack plugin's own variables.
    EnvVar(name="ENABLE_MONITORING", key="enabled", read=_bool, value="true, false, 1 or 0"),
    EnvVar(name="HTTP_METRICS", key="http_metrics", read=_bool, value="true, false, 1 or 0"),
    EnvVar(name="SYSTEM_METRICS", key="system_metrics", read=_bool, value="true, false, 1 or 0"),
    EnvVar(name="CUSTOM_METRICS", key="custom_metrics", read=_bool, value="true, false, 1 or 0"),
    EnvVar(
        name="METRICS_INTERVAL",
        key="collect_interval",
        read=_number,
        value="milliseconds",
        camel=True,
    ),
    EnvVar(
        name="METRICS_RETENTION_PERIOD",
        key="retention_period",
        read=_number,
        value="milliseconds",
        camel=True,
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
        name="OTEL_RESOURCE_ATTRIBUTES",
        key="service_name",
        read=_resource_service_name,
        value="its service.name entry",
    ),
    EnvVar(
        name="OTEL_METRIC_EXPORT_INTERVAL",
        key="collect_interval",
        read=_number,
        value="milliseconds",
        camel=True,
    ),
    EnvVar(
        name="OTEL_METRICS_EXPORTER",
        key="exporters",
        read=_metrics_exporter,
        value="comma-separated: otlp, prometheus, console, or none",
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

_CHECKS: dict[str, Callable[[object, str, bool], Any]] = {
    f.name: f.metadata[CHECK] for f in fields(MonitoringConfig)
}


# --- the sources --------------------------------------------------------------------------------


def _present(document: object) -> set[str]:
    """The top-level keys a (validated) mapping sets, as field names, in either style."""
    if not isinstance(document, Mapping):
        return set()
    return {p.name for p in PARAMETERS if p.name in document or p.camel_name in document}


def _check_unknown(environ: Mapping[str, str]) -> None:
    known = {
        v.name.removeprefix(ENV_PREFIX): v.name for v in ENV_VARS if v.name.startswith(ENV_PREFIX)
    }
    for name in environ:
        if name.startswith(ENV_PREFIX) and name.removeprefix(ENV_PREFIX) not in known:
            import difflib

            close = difflib.get_close_matches(name.removeprefix(ENV_PREFIX), list(known), n=1)
            hint = (
                f"; did you mean {known[close[0]]!r}?"
                if close
                else f"; docs/configuration.md lists the {ENV_PREFIX}* ones"
            )
            raise ConfigError(f"unknown variable{hint}", path=name)


def _environment(
    environ: Mapping[str, str],
) -> tuple[dict[str, tuple[Any, str]], list[tuple[EnvVar, Any]]]:
    """Keys the environment sets (value, label) and the exporter adjustments, all validated."""
    _check_unknown(environ)
    values: dict[str, tuple[Any, str]] = {}
    adjustments: list[tuple[EnvVar, Any]] = []
    for var in ENV_VARS:
        text = environ.get(var.name)
        if not text:
            continue
        raw = var.read(text, var.name)
        if raw is _UNSET:
            continue
        if var.adjusts:
            adjustments.append((var, raw))
            continue
        value = _CHECKS[var.key](raw, var.name, var.camel)
        values.setdefault(var.key, (value, f"env:{var.name}"))
    return values, adjustments


def _discover(environ: Mapping[str, str], cwd: str) -> str | None:
    named = environ.get(CONFIG_FILE_VAR)
    if named:
        return named if os.path.isabs(named) else os.path.join(cwd, named)
    pyproject = os.path.join(cwd, "pyproject.toml")
    if not os.path.isfile(pyproject):
        return None
    try:
        text = _read_text(pyproject)
        # Every spelling of [tool.fluxstack.monitoring] holds both words; a pyproject.toml
        # without them (most apps' own) is not parsed at all.
        if "fluxstack" not in text or "monitoring" not in text:
            return None
        import tomllib

        document: Any = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # TOMLDecodeError is a ValueError
        raise ConfigError(f"config file {pyproject!r}: cannot read it: {exc}") from None
    for key in PYPROJECT_TABLE:
        if not isinstance(document, dict) or key not in document:
            return None  # a pyproject.toml without the table is not a config file
        document = document[key]
    return pyproject


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _from_file(path: str) -> tuple[MonitoringConfig, set[str]]:
    config = load_config(path)
    _, document, _ = read_document(path)
    return config, _present(document)


def _adjust(
    exporters: tuple[ExporterConfig, ...], adjustments: list[tuple[EnvVar, Any]]
) -> tuple[tuple[ExporterConfig, ...], list[str]]:
    """Apply OTEL_EXPORTER_PROMETHEUS_HOST/PORT and METRICS_EXPORT_CONSOLE to a winning list."""
    given = {var.name: raw for var, raw in adjustments}
    used: list[str] = []
    out = list(exporters)
    host = given.get("OTEL_EXPORTER_PROMETHEUS_HOST")
    port = given.get("OTEL_EXPORTER_PROMETHEUS_PORT")
    if port is not None:
        port = integer(0, 65535)(port, "OTEL_EXPORTER_PROMETHEUS_PORT", False)
    if host is not None or port is not None:
        for i, entry in enumerate(out):
            if isinstance(entry, PrometheusExporterConfig) and entry.enabled:
                new_host = host if host is not None else entry.host
                new_port = port if port is not None else (entry.port or _PROMETHEUS_DEFAULT_PORT)
                out[i] = replace(entry, host=new_host, port=new_port)
                used += [n for n in ("OTEL_EXPORTER_PROMETHEUS_HOST", "OTEL_EXPORTER_PROMETHEUS_PORT")
                         if n in given]  # fmt: skip
                _check_address(out, i)
                break
    if given.get("METRICS_EXPORT_CONSOLE") is True:
        if not any(isinstance(e, ConsoleExporterConfig) and e.enabled for e in out):
            out.append(ConsoleExporterConfig())
        used.append("METRICS_EXPORT_CONSOLE")
    return tuple(out), used


def _check_address(exporters: list[ExporterConfig], index: int) -> None:
    moved = exporters[index]
    if not isinstance(moved, PrometheusExporterConfig):
        return
    for i, other in enumerate(exporters):
        if (
            i != index
            and isinstance(other, PrometheusExporterConfig)
            and other.enabled
            and other.port == moved.port != 0
            and (other.host or "127.0.0.1") == (moved.host or "127.0.0.1")
        ):
            raise ConfigError(
                f"moves exporters[{index}] to {moved.host or '127.0.0.1'}:{moved.port},"
                f" which exporters[{i}] serves already",
                path="OTEL_EXPORTER_PROMETHEUS_PORT",
            )


def resolve(
    explicit: MonitoringConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    file: str | os.PathLike[str] | None = None,
) -> Resolution:
    """Resolve the configuration from every source (module docstring: the precedence).

    Args:
        explicit: The explicit argument: a mapping or file path (its keys win), a
            ``MonitoringConfig`` (complete: nothing else is read), or None.
        environ: The environment; None reads ``os.environ``.
        cwd: Where a relative ``FLUXSTACK_CONFIG`` and ``pyproject.toml`` are looked up; None is
            the working directory.
        file: The config file to read instead of ``FLUXSTACK_CONFIG`` or ``pyproject.toml``.

    Returns:
        The configuration and the source of each top-level key.

    Raises:
        ConfigError: Any source holds a bad value; the message names the key path or the
            variable, the value received and what is allowed.
    """
    if isinstance(explicit, MonitoringConfig):
        return Resolution(
            config=explicit,
            sources=dict.fromkeys((p.name for p in PARAMETERS), ARGUMENT),
            file=None,
        )
    environ = os.environ if environ is None else environ
    here = os.getcwd() if cwd is None else os.fspath(cwd)
    values: dict[str, Any] = {}
    sources = dict.fromkeys((p.name for p in PARAMETERS), DEFAULT)

    path = os.fspath(file) if file is not None else _discover(environ, here)
    if path is not None:
        from_file, keys = _from_file(path)
        for key in keys:
            values[key], sources[key] = getattr(from_file, key), f"file:{path}"
    from_env, adjustments = _environment(environ)
    for key, (value, label) in from_env.items():
        values[key], sources[key] = value, label
    if explicit is not None:
        from_argument = load_config(explicit)
        document = explicit if isinstance(explicit, Mapping) else read_document(explicit)[1]
        for key in _present(document):
            values[key], sources[key] = getattr(from_argument, key), ARGUMENT
    if adjustments and sources["exporters"] != ARGUMENT:
        current = values.get("exporters", MonitoringConfig().exporters)
        adjusted, used = _adjust(current, adjustments)
        if used:
            values["exporters"] = adjusted
            sources["exporters"] = " + ".join(
                [sources["exporters"], *(f"env:{name}" for name in used)]
            )
    return Resolution(config=MonitoringConfig(**values), sources=sources, file=path)
