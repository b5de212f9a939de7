"""Prometheus label names and values from OpenTelemetry attributes, for every exposition format.

Attributes enter; label ``(name, value)`` pairs (or the text formats' ``name="value"`` list)
leave, named by OpenTelemetry's Prometheus compatibility rules and planned once per key tuple.
"""

from __future__ import annotations

import logging
import re
from typing import Any, NamedTuple

from fluxstack_otel._internal.metrics.points import attribute_text

__all__ = [
    "escape_help",
    "escape_value",
    "label_name",
    "label_pairs",
    "labels_inner",
    "reserved_labels",
    "warn_once",
]

_log = logging.getLogger("fluxstack_otel")

_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")


# Attribute keys become label names by OpenTelemetry's Prometheus compatibility rules: every
# character outside [a-zA-Z0-9_] becomes "_", a leading digit gets a "_" before it (an empty key
# is "_"). Two rules keep every label set parseable whatever the attributes:
# - A key that would become a label the exposition writes itself is renamed with a "_" before it:
#   "le" on histogram series, "otel_scope_name"/"otel_scope_version" with scope labels on. A
#   name that starts with "__" (reserved by Prometheus, such as "__name__") keeps one "_".
# - Keys that end up as the same label name ("a.b" and "a_b") are merged into one label, their
#   values joined with ";" in the lexicographical order of the original keys, as the
#   compatibility specification says.
# A label plan (the names, and the merges if any) is computed once per key tuple and cached.

_NO_RESERVED: frozenset[str] = frozenset()
_HISTOGRAM_RESERVED = frozenset({"le"})
_SCOPE_RESERVED = frozenset({"otel_scope_name", "otel_scope_version"})
_HISTOGRAM_SCOPE_RESERVED = _HISTOGRAM_RESERVED | _SCOPE_RESERVED
_MAX_PLANS = 10_000  # key tuples remembered per reserved set; more are planned per point


def reserved_labels(histogram: bool, scope_labels: bool) -> frozenset[str]:
    """The label names the exposition writes itself on a series of that kind."""
    if histogram:
        return _HISTOGRAM_SCOPE_RESERVED if scope_labels else _HISTOGRAM_RESERVED
    return _SCOPE_RESERVED if scope_labels else _NO_RESERVED


class _Plan(NamedTuple):
    names: tuple[str, ...]
    merges: tuple[tuple[str, tuple[int, ...]], ...] | None  # None: no two keys collide


_plans: dict[frozenset[str], dict[tuple[str, ...], _Plan]] = {}


def label_name(key: str, reserved: frozenset[str]) -> str:
    name = _INVALID_LABEL.sub("_", key) or "_"
    if name[:1].isdigit():
        name = "_" + name
    elif name.startswith("__"):  # reserved by Prometheus (__name__): one leading "_" is kept
        name = "_" + name.lstrip("_")
    return "_" + name if name in reserved else name


def _plan(keys: tuple[str, ...], reserved: frozenset[str]) -> _Plan:
    cache = _plans.setdefault(reserved, {})
    plan = cache.get(keys)
    if plan is not None:
        return plan
    names = tuple(label_name(k, reserved) for k in keys)
    merges = None
    if len(set(names)) < len(names):
        groups: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            groups.setdefault(name, []).append(i)
        merges = tuple(
            (name, tuple(sorted(idx, key=keys.__getitem__))) for name, idx in groups.items()
        )
        warn_once(f"collide:{sorted(keys)}", "attribute keys %s collide as Prometheus labels; "
                   "their values are joined with ';'", sorted(keys))  # fmt: skip
    plan = _Plan(names, merges)
    if len(cache) < _MAX_PLANS:
        cache[keys] = plan
    return plan


def labels_inner(attributes: Any, reserved: frozenset[str] = _NO_RESERVED) -> str:
    if not attributes:
        return ""
    plan = _plan(tuple(attributes), reserved)
    if plan.merges is None:
        parts = []
        for name, value in zip(plan.names, attributes.values(), strict=True):
            text = value if isinstance(value, str) else attribute_text(value)
            if "\\" in text or '"' in text or "\n" in text:
                text = escape_value(text)
            parts.append(f'{name}="{text}"')
        return ",".join(parts)
    return ",".join(
        f'{name}="{escape_value(text)}"' for name, text in _merged(plan.merges, attributes)
    )


def _merged(
    merges: tuple[tuple[str, tuple[int, ...]], ...], attributes: Any
) -> list[tuple[str, str]]:
    values = [attribute_text(v) for v in attributes.values()]
    return [(name, ";".join(values[i] for i in idx)) for name, idx in merges]


def label_pairs(attributes: Any, reserved: frozenset[str] = _NO_RESERVED) -> list[tuple[str, str]]:
    """A point's labels as ``(name, value)`` pairs, named and merged as the text formats do.

    Args:
        attributes: The point's attributes.
        reserved: The label names the exposition writes itself (renamed with a leading ``_``).
    """
    if not attributes:
        return []
    plan = _plan(tuple(attributes), reserved)
    if plan.merges is not None:
        return _merged(plan.merges, attributes)
    texts = (v if isinstance(v, str) else attribute_text(v) for v in attributes.values())
    return list(zip(plan.names, texts, strict=True))


def escape_value(text: str) -> str:
    """A label value escaped for the text formats (backslash, double quote, newline)."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    if "\\" in text or "\n" in text:
        return text.replace("\\", "\\\\").replace("\n", "\\n")
    return text


_warned: set[str] = set()


def warn_once(key: str, message: str, *args: object) -> None:
    if key not in _warned and len(_warned) < 1000:
        _warned.add(key)
        _log.warning(message, *args)
