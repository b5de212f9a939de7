"""The configuration reference (docs/configuration.md) and the ``check-config`` report.

Both are generated from the model (``PARAMETERS``, the config dataclasses and their attribute
docstrings) and from the source table (``ENV_VARS``), so neither can drift from the code; a test
compares docs/configuration.md with ``render_reference()``. Regenerate the page with::

    python -m fluxstack_otel._internal.config.reference > docs/configuration.md

Secrets never appear in a report: header values, passwords and tokens print as ``***``, a URL
keeps only its scheme, host and port (webhook URLs carry their secret in the path), and a
collector endpoint loses its userinfo.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import json
import textwrap
from collections.abc import Mapping
from dataclasses import MISSING, fields, is_dataclass
from functools import cache
from typing import Any, get_args

from fluxstack_otel._internal.config import model as _config
from fluxstack_otel._internal.config.checks import (
    CHECK,
    DURATION_FORMS,
    MAX_BARE_SECONDS,
    MAX_DURATION,
    MIN_BARE_MILLISECONDS,
    key_of,
)
from fluxstack_otel._internal.config.model import (
    PARAMETERS,
    AlertRule,
    ExporterConfig,
    NotifierConfig,
)
from fluxstack_otel._internal.config.sources import ENV_PREFIX, ENV_VARS, Resolution
from fluxstack_otel._internal.config.style import WRAPPERS
from fluxstack_otel._internal.redact import MASK, mask_url

__all__ = ["plain", "render_reference", "render_report"]

_SECRET_FIELDS = frozenset({"password", "bearer_token"})
_URL_FIELDS = frozenset({"url"})
_OTLP_SECRET_VARS = ("HEADERS", "CERTIFICATE", "CLIENT_KEY", "CLIENT_CERTIFICATE")


# --- plain data, masked -------------------------------------------------------------------------


def plain(value: object, name: str = "") -> Any:
    """A config value as JSON-ready data in snake_case, with every secret masked.

    Args:
        value: A config dataclass, a tuple of them, or a scalar.
        name: The field the value sits in (it decides what is masked).
    """
    if is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        kind = getattr(type(value), "type", None)
        if isinstance(kind, str):
            out["type"] = kind
        for f in fields(value):
            if CHECK in f.metadata:
                out[key_of(f.name, camel=False)] = plain(getattr(value, f.name), f.name)
        return out
    if name == "headers" and isinstance(value, tuple):
        return {key: MASK for key, _ in value}
    if name in ("labels",) and isinstance(value, tuple):
        return dict(value)
    if name in _SECRET_FIELDS and value is not None:
        return MASK
    if isinstance(value, str) and (name in _URL_FIELDS or (name == "endpoint" and "@" in value)):
        return mask_url(value, keep_path=name != "url")
    if isinstance(value, tuple):
        return [plain(item) for item in value]
    return value


def _json(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)


# --- the check-config report --------------------------------------------------------------------


def render_report(resolution: Resolution, environ: Mapping[str, str]) -> str:
    """The resolved configuration, one key per line with its (masked) value and its source.

    Args:
        resolution: What ``resolve`` returned.
        environ: The environment it was resolved from (for the OTLP exporters' variables).
    """
    config = resolution.config
    rows = [
        (p.name, resolution.sources[p.name], _json(plain(getattr(config, p.name), p.name)))
        for p in PARAMETERS
    ]
    key_width = max(len(row[0]) for row in rows)
    source_width = max(len(row[1]) for row in rows)
    lines = [
        "fluxstack-otel: the configuration is valid",
        f"config file: {resolution.file or '(none)'}",
        "",
        f"{'key':<{key_width}}  {'source':<{source_width}}  value",
    ]
    lines += [f"{k:<{key_width}}  {s:<{source_width}}  {v}" for k, s, v in rows]
    if any(getattr(e, "type", "") == "otlp" and e.enabled for e in config.exporters):
        otlp = sorted(k for k in environ if k.startswith("OTEL_EXPORTER_OTLP_") and environ[k])
        if otlp:
            lines += ["", "read by the otlp exporters from the environment:"]
            for key in otlp:
                secret = any(key.endswith(part) for part in _OTLP_SECRET_VARS)
                value = MASK if secret else environ[key]
                if key.endswith("ENDPOINT"):
                    value = mask_url(value, keep_path=True)
                lines.append(f"  {key}={value}")
    return "\n".join(lines) + "\n"


# --- the reference page -------------------------------------------------------------------------


def _markdown(text: str) -> str:
    """reST double backticks as Markdown code, one line."""
    return " ".join(text.replace("``", "`").split())


@cache
def _attribute_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings of a dataclass and its bases (the string after each field)."""
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__[1:]):
        if is_dataclass(base):
            docs.update(_attribute_docs(base))
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return docs
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = _markdown(after.value.value)
    return docs


def _default(value: object, name: str = "") -> str:
    return f"`{_json(plain(value, name))}`"


def _compact(value: object) -> str:
    """A default for the top-level table: list entries show their type and what differs."""
    if not (isinstance(value, tuple) and value and all(is_dataclass(v) for v in value)):
        return _default(value)
    entries = []
    for entry in value:
        full, bare = plain(entry), plain(type(entry)()) if _constructible(entry) else {}
        entries.append({k: v for k, v in full.items() if k == "type" or bare.get(k, MASK) != v})
    return f"`{_json(entries)}`"


def _constructible(entry: object) -> bool:
    return all(f.default is not MISSING for f in fields(entry) if f.init)  # type: ignore[arg-type]


def _key_table(cls: type) -> list[str]:
    docs = _attribute_docs(cls)
    if not any(CHECK in f.metadata for f in fields(cls)):
        return ["No keys besides `type`."]
    lines = ["| key | FluxStack key | default | meaning |", "|---|---|---|---|"]
    for f in fields(cls):
        if CHECK not in f.metadata:
            continue
        shown = "required" if f.default is MISSING else _default(f.default, f.name)
        lines.append(
            f"| `{key_of(f.name, False)}` | `{key_of(f.name, True)}` | {shown} |"
            f" {docs.get(f.name, '')} |"
        )
    return lines


def _nested_types() -> dict[str, type]:
    return {
        name: obj
        for name, obj in vars(_config).items()
        if isinstance(obj, type) and is_dataclass(obj) and name.endswith("Config")
    }


_NESTED_TYPES = _nested_types()


def _env_cell(name: str) -> str:
    return "<br>".join(f"`{v.name}`" for v in ENV_VARS if v.key == name)


def render_reference() -> str:
    """docs/configuration.md, generated from the model and the source table."""
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m fluxstack_otel._internal.config.reference > docs/configuration.md`;"
        " a test fails when this page and the code disagree. -->",
        "",
        "## Where the configuration comes from",
        "",
        "Each top-level key is taken whole from the first source that sets it:",
        "",
        "1. **The explicit argument**: `configure_monitoring(config)` with a mapping or a file"
        " path; only the keys it sets win. A `MonitoringConfig` object is complete: with one,"
        " nothing else is read.",
        "2. **The environment**: the variables in the table below. When several variables set"
        " one key, the first one set in the order listed wins; every variable that is set is"
        " validated. An empty value counts as unset.",
        "3. **The config file**: the `.toml` or `.json` file `FLUXSTACK_CONFIG` names (relative"
        " to the working directory); without it, `pyproject.toml` in the working directory when"
        " it has a `[tool.fluxstack.monitoring]` table. `fluxstack-otel check-config FILE` reads"
        " FILE instead.",
        "4. **The default** in the table.",
        "",
        "Sources are not deep-merged: an `exporters` list from the environment replaces the"
        " file's. The exception: `OTEL_EXPORTER_PROMETHEUS_HOST`/`_PORT` move the first enabled"
        " Prometheus exporter of the winning list to a server of its own, and"
        " `METRICS_EXPORT_CONSOLE=true` adds a console exporter to it, unless the explicit"
        " argument set `exporters`.",
        "",
        "## Durations",
        "",
        f"Every duration accepts a unit string: {DURATION_FORMS.replace(chr(39), '`')}"
        " (units `ms`, `s`, `m`, `h` and `d`, one number each, combined as in `1h30m`). A string reads the same in"
        " every style and source. A bare number is read in the style's unit: seconds in the"
        " snake_case style (files, mappings, `FLUXSTACK_MONITORING_*`), milliseconds in the"
        " FluxStack camelCase style and in `METRICS_INTERVAL`, `METRICS_RETENTION_PERIOD` and"
        " `OTEL_METRIC_EXPORT_INTERVAL`. The model, and a config object built in code, hold"
        " seconds. A file or mapping uses one style throughout.",
        "",
        "Refused, each with a `ConfigError` that names the key and the likely fix:",
        "",
        f"- a bare number of milliseconds above 0 and below {MIN_BARE_MILLISECONDS:g}"
        ' (`collectInterval: 5` was meant as seconds: write `"5s"`, or `"5ms"` to keep it);',
        f"- a bare number of seconds above {MAX_BARE_SECONDS:g} (a day: `retention_period: 300000`"
        ' was meant as milliseconds; write `"300000ms"`, or `"2d"` for a long duration);',
        "- a bare number above 0 in a mapping whose style cannot be told: no config key in it"
        ' has an uppercase letter or an underscore (`{"exporters": [{"type": "console",'
        ' "interval": 30}]}` could be 30 s or 30 ms). Write a unit string, or add a key that'
        " shows the style. Config keys are counted at every level; header names and alert label"
        " keys are data and do not count;",
        f"- any duration above {MAX_DURATION / 86400:g} days, in any form.",
        "",
        "## Where the configuration sits in a mapping or file",
        "",
        "The configuration is the whole mapping (a TOML file: its top level, or"
        " `[tool.fluxstack.monitoring]` in a `pyproject.toml`), or it sits where the FluxStack"
        " plugin keeps it: "
        + " or ".join(
            "`" + "".join('{"' + k + '": ' for k in w) + "{...}" + "}" * len(w) + "`"
            for w in WRAPPERS
        )
        + ". A mapping holding any top-level key of the table below is the configuration"
        " itself; otherwise the wrapper's other keys belong to the app and are not read.",
        "",
        "`fluxstack-otel check-config [FILE]` prints the resolved configuration, secrets masked,"
        " with the source of every key, or the error and exit status 1.",
        "",
        "## Top-level keys",
        "",
        "| key | FluxStack key | default | environment (first set wins) | meaning |",
        "|---|---|---|---|---|",
    ]
    for p in PARAMETERS:
        unit = " (a duration)" if p.unit == "s" else ""
        out.append(
            f"| `{p.name}` | `{p.camel_name}` | {_compact(p.default)}{unit} |"
            f" {_env_cell(p.name)} | {_markdown(p.doc)} |"
        )
    out += [
        "",
        "## Environment variables",
        "",
        f"`{ENV_PREFIX}<KEY>` sets any top-level key; a variable with that prefix that names no"
        " key is an error. Text is read with the checks every source uses: booleans `true`,"
        " `false`, `1` or `0`; lists as JSON or comma-separated; nested keys (exporters, alerts,"
        " thresholds...) as JSON in the snake_case style.",
        "",
        "| variable | sets | value |",
        "|---|---|---|",
    ]
    for var in ENV_VARS:
        out.append(f"| `{var.name}` | `{var.key}` | {var.value} |")
    out += [
        "",
        "The OTLP exporters read `OTEL_EXPORTER_OTLP_*` (endpoint, headers, timeout, compression,"
        " certificates, protocol, temporality preference) themselves, for whatever their entry"
        " leaves unset. `OTEL_RESOURCE_ATTRIBUTES` adds its attributes to the resource of every"
        " exporter.",
        "",
    ]
    nested: list[tuple[str, type]] = [
        *((f"`exporters` entry, `type: {c.type}`", c) for c in get_args(ExporterConfig)),
        ("`alerts` entry", AlertRule),
        *((f"`notifiers` entry, `type: {c.type}`", c) for c in get_args(NotifierConfig)),
    ]
    for p in PARAMETERS:
        if is_dataclass(p.default):
            nested.append((f"`{p.name}`", type(p.default)))
            for sub in fields(p.default):
                inner = _NESTED_TYPES.get(str(sub.type).removesuffix(" | None"))
                if inner is not None and CHECK in sub.metadata:
                    nested.append((f"`{p.name}.{sub.name}`", inner))
    out += ["## Nested keys", ""]
    for title, cls in nested:
        doc = _markdown((cls.__doc__ or "").strip().split("\n\n")[0])
        out += [f"### {title}", "", doc, "", *_key_table(cls), ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(render_reference(), end="")
