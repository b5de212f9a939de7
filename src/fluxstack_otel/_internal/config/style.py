"""How a configuration mapping is read: where it sits, and in which key style and unit.

Where. The configuration may be the whole mapping or sit where the FluxStack plugin keeps it:
``{"monitoring": {...}}`` or ``{"plugins": {"config": {"monitoring": {...}}}}`` (a FluxStack
app's config object, whose other keys belong to the app and are not read). A mapping holding
any top-level configuration key is the configuration itself.

Style. A mapping is read in FluxStack style (camelCase keys, bare durations in milliseconds)
when one of its config keys has an uppercase letter, and in the native style (snake_case, bare
durations in seconds) when one has an underscore. Config keys are the keys at every level
(the top, its sections such as ``thresholds`` or ``auth``, the entries of ``exporters``,
``alerts`` and ``notifiers``); header names and alert label keys are data and do not count.
Keys spelled alike in both styles (``enabled``, ``endpoint``, ``interval``, ``window``) fit
either. Both kinds of key in one mapping is an error, and so is a bare number above 0 given to
a duration key in a mapping whose style cannot be told (no key with an uppercase letter or an
underscore): ``{"exporters": [{"type": "console", "interval": 30}]}`` could mean 30 s or 30 ms.
A unit string (``"30s"``, ``"500ms"``) reads the same in every style.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Any

from fluxstack_otel._internal.config.checks import as_number, entries, join
from fluxstack_otel._internal.redact import safe_path
from fluxstack_otel.errors import ConfigError

__all__ = ["WRAPPERS", "is_camel", "unwrap"]

WRAPPERS: tuple[tuple[str, ...], ...] = (("monitoring",), ("plugins", "config", "monitoring"))
"""Where the FluxStack plugin's configuration sits in a larger config object."""

_DATA_KEYS = frozenset({"headers", "labels"})  # mappings whose keys are data, not config keys


def unwrap(raw: dict[str, Any], root: str, own_keys: Collection[str]) -> tuple[dict[str, Any], str]:
    """The configuration mapping inside ``raw`` and its key path (``WRAPPERS``).

    Args:
        raw: The mapping received.
        root: Its key path.
        own_keys: The top-level configuration keys, in both styles.

    Returns:
        ``(raw, root)`` when ``raw`` is the configuration itself, else the wrapped mapping.

    Raises:
        ConfigError: Both wrappers hold a configuration, or a wrapper holds no mapping.
    """
    if any(key in own_keys for key in raw):
        return raw, root
    found: list[tuple[dict[str, Any], str]] = []
    for wrapper in WRAPPERS:
        value: object = raw
        where = root
        for key in wrapper:
            if not isinstance(value, Mapping) or key not in value:
                break
            value, where = value[key], join(where, key)
        else:
            found.append((entries(value, where), where))
    if len(found) > 1:
        raise ConfigError(
            f"both {found[0][1]!r} and {found[1][1]!r} hold a monitoring configuration; keep one",
            path=root,
        )
    return found[0] if found else (raw, root)


def _config_keys(raw: dict[str, Any], root: str, depth: int = 0) -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) of every config key, at every level (module docstring)."""
    for key, value in raw.items():
        where = join(root, key)
        yield where, key, value
        if key in _DATA_KEYS or depth >= 2:
            continue
        if isinstance(value, Mapping):
            yield from _config_keys(entries(value, where), where, depth + 1)
        elif isinstance(value, list | tuple) and depth == 0:
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    at = f"{where}[{i}]"
                    yield from _config_keys(entries(item, at), at, depth + 1)


def is_camel(raw: dict[str, Any], root: str, duration_keys: Collection[str]) -> bool:
    """True for FluxStack style (module docstring).

    Args:
        raw: The configuration mapping.
        root: Its key path.
        duration_keys: The keys, in any entry, whose value is a duration.

    Raises:
        ConfigError: The mapping mixes the two styles, or its style cannot be told and a
            duration is a bare number above 0 (0 and negative numbers are left to the checks).
    """
    camel = snake = ""
    bare: list[tuple[str, Any]] = []
    for where, key, value in _config_keys(raw, root):
        if any(ch.isupper() for ch in key):
            camel = camel or safe_path(where)
        elif "_" in key:
            snake = snake or safe_path(where)
        elif key in duration_keys and (as_number(value) or 0) > 0:
            bare.append((where, value))
        if camel and snake:
            raise ConfigError(
                f"a snake_case key next to the camelCase {camel!r}: use one style, camelCase"
                " with durations in milliseconds (FluxStack) or snake_case with seconds",
                path=snake,
            )
    if not camel and not snake and bare:
        where, value = bare[0]
        raise ConfigError(
            f"the bare number {value!r} could be seconds or milliseconds: no key of this"
            f" configuration shows its style; write a unit, such as '{value:g}s' or"
            f" '{value:g}ms', or add a key that shows the style (camelCase such as"
            " 'collectInterval' for milliseconds, snake_case such as 'collect_interval' for"
            " seconds)",
            path=where,
        )
    return bool(camel)
