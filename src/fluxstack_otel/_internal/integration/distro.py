"""Auto-instrumentation: ``opentelemetry-instrument uvicorn app:app`` monitors an unmodified app.

Three entry points (``pyproject.toml``), found by ``opentelemetry-instrument``'s ``sitecustomize``
in every Python process the command starts (a server, its spawned workers)::

    [project.entry-points.opentelemetry_distro]        fluxstack_otel = ...:FluxstackDistro
    [project.entry-points.opentelemetry_configurator]  fluxstack_otel = ...:FluxstackConfigurator
    [project.entry-points.opentelemetry_instrumentor]  fluxstack_otel = ...instrumentor:...

The configurator does what app code would do: ``configure_monitoring()`` (the same sources and
precedence: docs/configuration.md), sets up traces and logs from the standard variables as the
SDK's configurator does (``sdk_setup``), then installs the hooks that wrap apps (``autowrap``).
With ``set_global`` (the default) the pipeline provides the process-wide OpenTelemetry
``MeterProvider``, so metrics recorded through the OpenTelemetry API reach the exporters.

Beside another distribution (``opentelemetry-distro``): ``opentelemetry-instrument`` loads one
distro and one configurator, the first it finds unless ``OTEL_PYTHON_DISTRO`` /
``OTEL_PYTHON_CONFIGURATOR`` name them, and every ``opentelemetry_instrumentor`` entry point
whatever distro it loaded. So:

- this configurator chosen after another distro (which ``setdefault``s ``OTEL_*_EXPORTER=otlp``
  and the like): the variables the process did not start with are that distro's defaults, not the
  user's choices; they are taken back out of the environment (``_taken_back``) before anything
  reads them, so the app runs as with this distro;
- another configurator chosen: it set up OpenTelemetry; the instrumentor (``instrumentor.py``)
  then builds the monitoring as a guest (``auto_configure(guest=...)``): the twelve metrics on
  this package's exporters, the global providers left to that configurator, and a line on
  stderr saying so. An app is never left unmonitored without a word.

Set-up errors are loud: a bad configuration, a missing extra, a port in use, or a distro or
configurator name that is not installed prints ``fluxstack-otel: ...`` on stderr and ends the
process with status 1 before the app starts. ``opentelemetry-instrument`` would otherwise log the
exception and run the app unmonitored, a gap nobody sees until the metrics are needed.

``fluxstack-otel run -- COMMAND`` (``run``) does what ``opentelemetry-instrument COMMAND`` does,
with this distro and configurator chosen.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any, NoReturn

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]

from fluxstack_otel._internal.config.sources import resolve
from fluxstack_otel._internal.integration.autowrap import install
from fluxstack_otel._internal.integration.sdk_setup import (
    configure_traces_and_logs,
    initial_environ,
    prepare,
)
from fluxstack_otel._internal.monitoring import Monitoring, configure_monitoring
from fluxstack_otel.errors import ConfigError

__all__ = [
    "NAME",
    "FluxstackConfigurator",
    "FluxstackDistro",
    "auto_configure",
    "check_selection",
    "prepare_run",
]

NAME = "fluxstack_otel"
"""The name of both entry points (``OTEL_PYTHON_DISTRO``, ``OTEL_PYTHON_CONFIGURATOR``)."""
EXIT_SETUP = 1
_log = logging.getLogger("fluxstack_otel")
# What opentelemetry-instrument reads to pick one of each: variable -> entry-point group.
_SELECTORS = {
    "OTEL_PYTHON_DISTRO": "opentelemetry_distro",
    "OTEL_PYTHON_CONFIGURATOR": "opentelemetry_configurator",
}


class FluxstackDistro(BaseDistro):  # type: ignore[misc]  # BaseDistro is untyped
    """The distro: picks this package's configurator unless ``OTEL_PYTHON_CONFIGURATOR`` is set.

    With several configurators installed, ``opentelemetry-instrument`` runs whichever it finds
    first; the distro runs before the configurators, so it can name the one to use.
    """

    def _configure(self, **kwargs: Any) -> None:
        try:
            check_selection(os.environ)
        except ConfigError as exc:
            _fail(f"configuration error: {exc}")
        os.environ.setdefault("OTEL_PYTHON_CONFIGURATOR", NAME)


class FluxstackConfigurator:
    """The configurator ``opentelemetry-instrument`` calls once per process: ``auto_configure``."""

    def configure(self, **kwargs: Any) -> None:
        """Configure monitoring for this process (exits with status 1 on a set-up error)."""
        auto_configure()


def check_selection(environ: Mapping[str, str]) -> None:
    """Check that ``OTEL_PYTHON_DISTRO`` and ``OTEL_PYTHON_CONFIGURATOR`` name installed entries.

    ``opentelemetry-instrument`` silently falls back to no distro, or configures nothing, when
    the name matches no entry point.

    Raises:
        ConfigError: Naming the variable, its value and the installed entry points.
    """
    for variable, group in _SELECTORS.items():
        chosen = environ.get(variable, "").strip()
        if not chosen:
            continue
        installed = [ep.name for ep in entry_points(group=group)]
        if chosen not in installed:
            raise ConfigError(
                f"{chosen!r} is not an installed {group} entry point;"
                f" installed: {', '.join(installed) or 'none'}",
                path=variable,
            )


def auto_configure(*, guest: str | None = None, keep_global: bool = False) -> Monitoring:
    """``configure_monitoring()``, traces and logs, and the hooks that wrap apps.

    Args:
        guest: The configurator that set up OpenTelemetry instead of this one, if any: then the
            global providers are left to it and only the monitoring is built.
        keep_global: As a guest, still provide the global MeterProvider as configured (nobody
            else set it).

    Returns:
        The pipeline (also held by the hooks, and shut down at exit).

    Raises:
        SystemExit: Never; on a set-up error the process ends with status 1 (module docstring).
    """
    taken_back = _taken_back(os.environ)
    if guest is None:
        for name in taken_back:
            os.environ.pop(name, None)
    environ = {k: v for k, v in os.environ.items() if k not in taken_back}
    try:
        check_selection(environ)
        explicit = {"set_global": False} if guest is not None and not keep_global else None
        config = resolve(explicit, environ=environ).config
        signals = guest is None and config.enabled and prepare(tracing=config.tracing)
        monitoring = configure_monitoring(config)
        if signals:
            configure_traces_and_logs(monitoring._p.resource, tracing=config.tracing)
    except ConfigError as exc:
        _fail(f"configuration error: {exc}")
    except Exception as exc:  # a missing extra, a port in use: the app must not start unseen
        _fail(f"set-up failed: {type(exc).__name__}: {exc}")
    install(monitoring)
    if taken_back and guest is None:
        _log.info(
            "fluxstack-otel: took back %s, set by another distro, not by the environment",
            ", ".join(taken_back),
        )
    if guest is not None and monitoring.enabled:
        _say(
            f"OpenTelemetry was set up by the {guest!r} configurator, not this package's:"
            " monitoring the app anyway (the twelve metrics on this package's exporters), while"
            " traces, logs and the global MeterProvider are that configurator's. Set"
            f" OTEL_PYTHON_CONFIGURATOR={NAME} to have this package set them up."
        )
    _log.info("fluxstack-otel: monitoring %r (pid %d)", monitoring.config.service_name, os.getpid())
    return monitoring


def _taken_back(environ: Mapping[str, str]) -> list[str]:
    """``OTEL_*`` variables another distro set in this process (none when this distro ran)."""
    if FluxstackDistro._instance is not None:
        return []
    initial = initial_environ()
    if initial is None:  # cannot tell: every variable counts as the user's
        return []
    return sorted(
        name
        for name in environ
        if name.startswith("OTEL_") and name not in initial and name not in _SELECTORS
    )


def _say(message: str) -> None:
    sys.stderr.write(f"fluxstack-otel: {message}\n")
    sys.stderr.flush()


def _fail(message: str) -> NoReturn:
    sys.stdout.flush()
    sys.stderr.write(f"fluxstack-otel: {message}\n")
    sys.stderr.flush()
    # Not SystemExit: raised from sitecustomize it makes Python print a fatal-error traceback.
    os._exit(EXIT_SETUP)


def prepare_run(
    command: Sequence[str], environ: Mapping[str, str], cwd: str
) -> tuple[str, list[str], dict[str, str]]:
    """What ``fluxstack-otel run -- COMMAND`` executes: ``(executable, argv, environment)``.

    As ``opentelemetry-instrument`` does: the auto-instrumentation ``sitecustomize`` directory
    and the working directory go first on ``PYTHONPATH``; this distro and configurator are
    chosen unless the environment names others. The configuration is resolved first, so a bad
    one fails here, before the command starts.

    Raises:
        ConfigError: The configuration is invalid, the command is missing or not found, or this
            package's entry points are not installed.
    """
    from opentelemetry.instrumentation import auto_instrumentation

    if not command:
        raise ConfigError("no command to run; usage: fluxstack-otel run -- COMMAND [ARGS...]")
    resolve(environ=environ, cwd=cwd)
    check_selection(environ)
    if not any(ep.name == NAME for ep in entry_points(group="opentelemetry_configurator")):
        raise ConfigError(
            "the fluxstack_otel entry points are not installed, so opentelemetry-instrument"
            " would not find them; install the package: pip install fluxstack-otel"
        )
    executable = shutil.which(command[0], path=environ.get("PATH"))
    if executable is None:
        raise ConfigError(f"command not found: {command[0]!r}")
    sitedir = os.path.dirname(os.path.abspath(auto_instrumentation.__file__))
    paths = [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != sitedir]
    if cwd not in paths:
        paths.insert(0, cwd)
    env = dict(environ)
    env["PYTHONPATH"] = os.pathsep.join([sitedir, *paths])
    env.setdefault("OTEL_PYTHON_DISTRO", NAME)
    env.setdefault("OTEL_PYTHON_CONFIGURATOR", NAME)
    return executable, [command[0], *command[1:]], env
