"""The ``fluxstack-otel`` command: one subcommand per task, each a small function.

``fluxstack-otel rules CONFIG`` prints the configuration's alert rules as a Prometheus rules file.
``fluxstack-otel check-config [FILE]`` prints the resolved configuration and its sources.
``fluxstack-otel run -- COMMAND`` runs a server with auto-instrumentation.
A subcommand is added by writing ``_add_<name>(subparsers)``, which registers its parser and
sets ``handler`` to a function ``(args) -> exit status``, and calling it from ``_parser``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

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


def _add_rules(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rules = subparsers.add_parser(
        "rules",
        help="print the alert rules as a Prometheus alerting-rules file",
        description=(
            "Print the configuration's alert rules (its alerts and thresholds) as a Prometheus "
            "alerting-rules YAML file, for `promtool check rules` and a Prometheus rule_files "
            "entry. CPU usage divides by the system_cpu_cores the app exports: the file is the "
            "same whichever machine generates it."
        ),
    )
    rules.add_argument("config", help="a .toml or .json configuration file (or pyproject.toml)")
    rules.add_argument(
        "-o", "--output", type=Path, default=None, help="write to this file instead of stdout"
    )
    rules.set_defaults(handler=_rules)


def _rules(args: argparse.Namespace) -> int:
    from fluxstack_otel._internal.sinks.alerts.promql import (
        rules_yaml,  # only this command needs it
    )

    text = rules_yaml(load_config(args.config))
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return EXIT_OK


def _add_check_config(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = subparsers.add_parser(
        "check-config",
        help="print the resolved configuration and where each key came from",
        description=(
            "Resolve the configuration as the app would (environment > config file > defaults; "
            "docs/configuration.md) and print every top-level key, its value (secrets masked) "
            "and its source; exit 1 with the error when it is invalid."
        ),
    )
    check.add_argument(
        "config",
        nargs="?",
        default=None,
        help="the config file to read instead of $FLUXSTACK_CONFIG or ./pyproject.toml",
    )
    check.add_argument("--json", action="store_true", help="print a JSON document instead")
    check.set_defaults(handler=_check_config)


def _check_config(args: argparse.Namespace) -> int:
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


def _add_run(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = subparsers.add_parser(
        "run",
        help="run a server with auto-instrumentation: fluxstack-otel run -- uvicorn app:app",
        description=(
            "Run COMMAND as `opentelemetry-instrument COMMAND` would, with this package's distro "
            "and configurator: the app it serves is monitored without code changes "
            "(docs/auto-instrumentation.md). The configuration is checked first."
        ),
    )
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:  # noqa: RET503 (execve does not return)
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
