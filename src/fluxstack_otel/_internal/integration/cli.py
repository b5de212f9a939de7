"""The ``fluxstack-otel`` command: one subcommand per task, each a small function.

``fluxstack-otel rules CONFIG`` prints the configuration's alert rules as a Prometheus rules file.
``fluxstack-otel check-config [FILE]`` prints the resolved configuration and its sources.
``fluxstack-otel run -- COMMAND`` runs a server with auto-instrumentation.
A subcommand is added by writing ``_add_<name>(subparsers)``, which registers its parser with
``_command`` and a handler, a function ``(args) -> exit status`` whose docstring is the
command's description, and calling it from ``_parser``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeAlias

from fluxstack_otel._internal.config.model import load_config
from fluxstack_otel.errors import ConfigError

__all__ = ["main"]

EXIT_OK, EXIT_CONFIG, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments after the program name; None reads ``sys.argv``.

    Returns:
        The exit status: 0 on success, 1 for a bad configuration, 2 for bad usage.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        status: int = args.handler(args)
    except ConfigError as exc:
        print(f"fluxstack-otel: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fluxstack-otel",
        description="Production monitoring for ASGI apps, built on OpenTelemetry.",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_rules(subparsers)
    _add_check_config(subparsers)
    _add_run(subparsers)
    return parser


_Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
_Handler: TypeAlias = Callable[[argparse.Namespace], int]


def _command(
    subparsers: _Subparsers, name: str, handler: _Handler, summary: str
) -> argparse.ArgumentParser:
    """Register the command ``name``, run by ``handler``, whose docstring is its description."""
    parser = subparsers.add_parser(name, help=summary, description=inspect.getdoc(handler))
    parser.set_defaults(handler=handler)
    return parser


def _add_rules(subparsers: _Subparsers) -> None:
    rules = _command(
        subparsers, "rules", _rules, "print the alert rules as a Prometheus alerting-rules file"
    )
    rules.add_argument("config", help="a .toml or .json configuration file (or pyproject.toml)")
    rules.add_argument(
        "-o", "--output", type=Path, default=None, help="write to this file instead of stdout"
    )


def _rules(args: argparse.Namespace) -> int:
    """Print the configuration's alert rules (its alerts and thresholds) as a Prometheus
    alerting-rules YAML file, for `promtool check rules` and a Prometheus rule_files entry.
    CPU usage divides by the system_cpu_cores the app exports: the file is the same whichever
    machine generates it.
    """
    from fluxstack_otel._internal.sinks.alerts.promql import (
        rules_yaml,  # only this command needs it
    )

    text = rules_yaml(load_config(args.config))
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return EXIT_OK


def _add_check_config(subparsers: _Subparsers) -> None:
    check = _command(
        subparsers,
        "check-config",
        _check_config,
        "print the resolved configuration and where each key came from",
    )
    check.add_argument(
        "config",
        nargs="?",
        default=None,
        help="the config file to read instead of $FLUXSTACK_CONFIG or ./pyproject.toml",
    )
    check.add_argument("--json", action="store_true", help="print a JSON document instead")


def _check_config(args: argparse.Namespace) -> int:
    """Resolve the configuration as the app would (environment > config file > defaults;
    docs/configuration.md) and print every top-level key, its value (secrets masked) and its
    source; exit 1 with the error when it is invalid.
    """
    from fluxstack_otel._internal.config.reference import plain, render_report
    from fluxstack_otel._internal.config.sources import resolve

    resolution = resolve(file=args.config)
    if args.json:
        config = resolution.config
        document = {
            "file": resolution.file,
            "config": {name: plain(getattr(config, name), name) for name in resolution.sources},
            "sources": dict(resolution.sources),
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write(render_report(resolution, os.environ))
    return EXIT_OK


def _add_run(subparsers: _Subparsers) -> None:
    run = _command(
        subparsers,
        "run",
        _run,
        "run a server with auto-instrumentation: fluxstack-otel run -- uvicorn app:app",
    )
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")


def _run(args: argparse.Namespace) -> int:  # noqa: RET503 (execve does not return)
    """Run COMMAND as `opentelemetry-instrument COMMAND` would, with this package's distro and
    configurator: the app it serves is monitored without code changes
    (docs/auto-instrumentation.md). The configuration is checked first.
    """
    try:
        from fluxstack_otel._internal.integration.distro import prepare_run
    except ImportError:
        print(
            "fluxstack-otel: run needs opentelemetry-instrumentation, a dependency of the"
            " package: pip install --force-reinstall fluxstack-otel",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    executable, argv, env = prepare_run(command, os.environ, os.getcwd())
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(executable, argv, env)
