"""The request-facing parts of the top-level model: which requests are recorded and the labels
the HTTP metrics carry.

In: the raw values of ``excluded_paths``, ``constant_labels`` and ``labels`` with their key path
and key style. Out: the validated tuples ``MonitoringConfig`` holds, and ``LabelConfig``, one
label taken from each request; a bad value raises ``ConfigError`` naming its path.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from fluxstack_otel._internal.config.checks import (
    PATH_TEXT,
    _pairs,
    entries,
    fail,
    integer,
    items,
    join,
    text,
)
from fluxstack_otel._internal.config.fields import build, option, validate
from fluxstack_otel.errors import ConfigError

__all__ = ["LabelConfig", "constant_labels", "excluded_paths", "label_name", "request_labels"]

_excluded_path = text(
    f"{PATH_TEXT} ('*' only at its end, '{{...}}' for a route template)"
    " or 're:' and a regular expression",
    lambda t: t.startswith("re:") or (t[:1] == "/" and "*" not in t[:-1]),
)


def excluded_paths(value: object, path: str, camel: bool) -> tuple[str, ...]:
    listed = items(value, path)
    out = tuple(_excluded_path(item, f"{path}[{i}]", camel) for i, item in enumerate(listed))
    for i, entry in enumerate(out):
        if entry.startswith("re:"):
            import re  # only a configuration with a pattern needs it

            try:
                re.compile(entry[3:])
            except (re.error, RecursionError, OverflowError) as exc:
                raise fail(
                    f"{path}[{i}]", f"a valid regular expression after 're:' ({exc})", entry
                ) from None
    return out


# The labels the HTTP metrics have already, and Prometheus's reserved ones.
_TAKEN_LABELS = frozenset(
    {"method", "route", "status_code", "error_type", "le", "quantile", "job", "instance"}
)
_LABEL_TEXT = "a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with '__')"


def label_name(name: str, path: str) -> str:
    import re  # only a configuration with labels needs it

    if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name) or name.startswith("__"):
        raise fail(path, _LABEL_TEXT, name)
    if name in _TAKEN_LABELS:
        raise fail(path, f"a label name other than {', '.join(sorted(_TAKEN_LABELS))}", name)
    return name


def constant_labels(value: object, path: str, camel: bool) -> tuple[tuple[str, str], ...]:
    check = text("a string", lambda _: True)
    return tuple(
        (label_name(k, join(path, k)), check(v, join(path, k), camel))
        for k, v in _pairs(value, path)
    )


def _callback(value: object, path: str, camel: bool) -> Any:
    if value is None or callable(value):
        return value
    raise fail(path, "a function taking the ASGI scope and returning a string or None", value)


_header_name = text(
    "an HTTP header name (letters, digits, -)",
    lambda t: bool(t) and t.isascii() and all(c.isalnum() or c in "-_" for c in t),
)


@dataclass(frozen=True, kw_only=True)
class LabelConfig:
    """One label of the HTTP metrics taken from each request: a header's value or a callback's."""

    name: str = ""
    """The label key (the key of its entry in ``labels``)."""
    header: str | None = option(None, lambda v, p, c: _header_name(v, p, c).lower())
    """The request header whose value is the label's (case-insensitive)."""
    callback: Any = option(None, _callback)
    """Or a function ``(scope) -> str | None``; what it raises is counted and gives ``default``."""
    default: str = option("", text("a string", lambda _: True))
    """The value when the header is absent or the callback returns None."""
    max_values: int = option(100, integer(1, 100_000))
    """Distinct values kept; every further one is recorded as ``<overflow>``."""

    def __post_init__(self) -> None:
        validate(self)
        if self.name:
            label_name(self.name, "name")
        if (self.header is None) == (self.callback is None):
            raise ConfigError("expected exactly one of 'header' and 'callback'")


def request_labels(value: object, path: str, camel: bool) -> tuple[LabelConfig, ...]:
    if isinstance(value, tuple) and all(isinstance(v, LabelConfig) for v in value):
        return value  # the model's own form: validated when each was built
    out = []
    for name, spec in entries(value, path).items():
        where = join(path, name)
        config = build(LabelConfig, spec, where, camel)
        out.append(replace(config, name=label_name(name, where)))
    return tuple(out)
