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

import os
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from typing import Any, NamedTuple

from fluxstack_otel._internal.config.checks import (
    CHECK,
    PYPROJECT_TABLE,
    integer,
)
from fluxstack_otel._internal.config.env import ENV_PREFIX, ENV_VARS, UNSET, EnvVar
from fluxstack_otel._internal.config.fields import read_document
from fluxstack_otel._internal.config.model import (
    PARAMETERS,
    ConsoleExporterConfig,
    ExporterConfig,
    MonitoringConfig,
    PrometheusExporterConfig,
    load_config,
    unwrap_document,
)
from fluxstack_otel.errors import ConfigError

__all__ = [
    "CONFIG_FILE_VAR",
    "ENV_PREFIX",
    "ENV_VARS",
    "EnvVar",
    "Resolution",
    "resolve",
]

CONFIG_FILE_VAR = "FLUXSTACK_CONFIG"
ARGUMENT, DEFAULT = "argument", "default"
_PROMETHEUS_DEFAULT_PORT = 9464  # OpenTelemetry's default for OTEL_EXPORTER_PROMETHEUS_PORT


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


_CHECKS: dict[str, Callable[[object, str, bool], Any]] = {
    f.name: f.metadata[CHECK] for f in fields(MonitoringConfig)
}


# --- the sources --------------------------------------------------------------------------------


def _present(document: object) -> set[str]:
    """The top-level keys a (validated) mapping sets, as field names, in either style."""
    document, _ = unwrap_document(document)
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
        if raw is UNSET:
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
                try:
                    out[i] = replace(entry, host=new_host, port=new_port)
                except ConfigError as exc:  # the entry's own check, naming the variable
                    var = "OTEL_EXPORTER_PROMETHEUS_" + ("PORT" if exc.path == "port" else "HOST")
                    raise ConfigError(exc.reason, path=var) from None
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
