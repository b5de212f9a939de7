"""Auto-instrumentation: ``opentelemetry-instrument uvicorn app:app`` monitors an unmodified app.

Two entry points (``pyproject.toml``), found by ``opentelemetry-instrument``'s ``sitecustomize``
in every Python process the command starts (a server, its spawned workers)::

    [project.entry-points.opentelemetry_distro]        fluxstack_otel = ...:FluxstackDistro
    [project.entry-points.opentelemetry_configurator]  fluxstack_otel = ...:FluxstackConfigurator

The configurator does what app code would do: ``configure_monitoring()`` (the same function, so
the same sources and precedence: docs/configuration.md), then installs the hooks that wrap apps
(``_autowrap``). With ``set_global`` (the default) the pipeline provides the process-wide
OpenTelemetry ``MeterProvider``, so metrics recorded through the OpenTelemetry API (the app's own,
other instrumentations') reach the exporters.

Set-up errors are loud: a bad configuration, a missing extra or a port in use prints
``fluxstack-otel: ...`` on stderr and ends the process with status 1 before the app starts.
``opentelemetry-instrument`` would otherwise log the exception and run the app unmonitored, a
gap nobody sees until the metrics are needed.

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
from fluxstack_otel._internal.monitoring import Monitoring, configure_monitoring
from fluxstack_otel.errors import ConfigError

__all__ = [
    "NAME",
    "FluxstackConfigurator",
    "FluxstackDistro",
    "auto_configure",
    "prepare_run",
]

NAME = "fluxstack_otel"
"""The name of both entry points (``OTEL_PYTHON_DISTRO``, ``OTEL_PYTHON_CONFIGURATOR``)."""
EXIT_SETUP = 1
_log = logging.getLogger("fluxstack_otel")


class FluxstackDistro(BaseDistro):  # type: ignore[misc]  # BaseDistro is untyped
    """The distro: picks this package's configurator unless ``OTEL_PYTHON_CONFIGURATOR`` is set.

    With several configurators installed, ``opentelemetry-instrument`` runs whichever it finds
    first; the distro runs before the configurators, so it can name the one to use.
    """

    def _configure(self, **kwargs: Any) -> None:
        os.environ.setdefault("OTEL_PYTHON_CONFIGURATOR", NAME)


class FluxstackConfigurator:
    """The configurator ``opentelemetry-instrument`` calls once per process: ``auto_configure``."""

    def configure(self, **kwargs: Any) -> None:
        """Configure monitoring for this process (exits with status 1 on a set-up error)."""
        auto_configure()


def auto_configure() -> Monitoring:
    """``configure_monitoring()`` and the hooks that wrap apps.

    Returns:
        The pipeline (also held by the hooks, and shut down at exit).

    Raises:
        SystemExit: Never; on a set-up error the process ends with status 1 (module docstring).
    """
    try:
        monitoring = configure_monitoring()
    except ConfigError as exc:
        _fail(f"configuration error: {exc}")
    except Exception as exc:  # a missing extra, a port in use: the app must not start unseen
        _fail(f"set-up failed: {type(exc).__name__}: {exc}")
    install(monitoring)
    _log.info("fluxstack-otel: monitoring %r (pid %d)", monitoring.config.service_name, os.getpid())
    return monitoring


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
    if not any(ep.name == NAME for ep in entry_points(group="opentelemetry_configurator")):
        raise ConfigError(
            "the fluxstack_otel entry points are not installed, so opentelemetry-instrument"
            " would not find them; install the package: pip install 'fluxstack-otel[auto]'"
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
