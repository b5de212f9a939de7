"""The value checks of the configuration: one raw value in, the model's value out.

A check reads one raw value (from a mapping, a TOML or JSON document, an environment variable,
or a value held by an object built in code) and returns the model's value or raises
``ConfigError`` naming the key path, quoting the value (``show``: secrets masked) and saying
what is allowed. Checks hang off the dataclass fields (``metadata[CHECK]``); ``fields`` holds
the resolver that runs them.

Strictness is deliberate: ``True`` is not 1, numbers are not booleans, ``"5"`` is not 5, NaN and
infinities are refused, and a string is not a list. Durations (``number(duration=True)``) also
read unit strings and are bounded (``MAX_DURATION``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import urlsplit

from fluxstack_otel._internal.redact import is_secret_path, mask_value
from fluxstack_otel.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Check: TypeAlias = Callable[[object, str, bool], Any]
"""Reads one raw value: ``(value, key path, camelCase style?) -> the model's value``."""
CHECK, DOC, UNIT = "check", "doc", "unit"
PYPROJECT_TABLE = ("tool", "fluxstack", "monitoring")


def show(value: object, path: str = "") -> str:
    """``repr`` of a received value for a message: bounded, formed whatever the object, and
    safe: inside a section that holds secrets only the type is named, elsewhere secret keys and
    URL userinfo are masked (``redact.mask_value``)."""
    if path and is_secret_path(path):
        return f"a value of type {type(value).__name__}"
    try:
        text = repr(mask_value(value))
    except Exception:  # a hostile __repr__, a 5000-digit int, deep nesting: still say something
        return f"<{type(value).__name__} object>"
    return text if len(text) <= 80 else f"{text[:77]}..."


def suggest(word: object, choices: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest choice, or ``""``."""
    if not isinstance(word, str) or len(word) > 100:
        return ""
    import difflib  # only a mistake needs it

    close = difflib.get_close_matches(str.__str__(word), choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def fail(path: str, allowed: str, value: object, hint: str = "") -> ConfigError:
    """The ``ConfigError`` of a bad value: where, what is allowed, what came (``show``)."""
    if hint and is_secret_path(path):
        hint = ""  # a did-you-mean would quote a near-miss of the secret
    return ConfigError(f"expected {allowed}, got {show(value, path)}{hint}", path=path)


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def entries(value: object, path: str) -> dict[str, Any]:
    """A mapping's items with exact-``str`` keys; anything else is a ``ConfigError``."""
    if not isinstance(value, Mapping):
        raise fail(path, "a mapping (a table or object)", value)
    try:  # a user's Mapping runs user code: whatever it raises is a bad configuration here
        pairs = [(k, v) for k, v in value.items()]
    except Exception as exc:
        raise ConfigError(f"could not read the mapping: {type(exc).__name__}", path=path) from None
    out: dict[str, Any] = {}
    for key, item in pairs:
        if not isinstance(key, str):
            raise ConfigError(f"keys must be strings, got {show(key)}", path=path)
        out[str.__str__(key)] = item  # an exact str: a subclass's __eq__/__hash__ stay out
    return out


def items(value: object, path: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise fail(path, "a list", value)
    return list(value)


def as_number(value: object) -> float | None:
    """A finite float, or None: bools, strings, NaN, infinities and huge ints are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float.__float__(value) if isinstance(value, float) else int.__float__(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def boolean(value: object, path: str, camel: bool) -> bool:
    if isinstance(value, bool):
        return value
    raise fail(path, "true or false", value)


MAX_DURATION = 365 * 86400.0
"""The longest duration any key accepts, in seconds: a year. Nothing later overflows a timer
(``Event.wait``) or time arithmetic."""
MAX_BARE_SECONDS = 86400.0
"""Above this, a bare number of seconds is refused as likely milliseconds: write a unit."""
MIN_BARE_MILLISECONDS = 10.0
"""Below this (and above 0), a bare number of milliseconds is refused as likely seconds."""
DURATION_FORMS = "'500ms', '30s', '2m', '1h', '1d' or '1h30m'"
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_TEXT = re.compile(r"(?:\d{1,12}(?:\.\d{1,9})?\s*(?:ms|s|m|h|d)\s*)+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")


def parse_duration(text: str) -> float | None:
    """Seconds from a unit string (``"30s"``, ``"500ms"``, ``"1h30m"``), or None if it is not one."""
    stripped = text.strip()
    if len(stripped) > 64 or not _DURATION_TEXT.fullmatch(stripped):
        return None
    return sum(float(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(stripped))


def is_duration_check(check: Check) -> bool:
    """True for a check made by ``number(duration=True)``: its key is a duration."""
    return getattr(check, "duration", False) is True


def number(
    *,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    duration: bool = False,
    off: tuple[object, ...] = (),
) -> Check:
    """A finite number within bounds; or a duration, read in the style's unit or as a unit string.

    A duration accepts a unit string (``DURATION_FORMS``) in any style, and a bare number in the
    style's unit: seconds, or milliseconds in camelCase style. A bare number implausible for its
    unit is refused with the likely fix: a non-zero one below ``MIN_BARE_MILLISECONDS`` in
    camelCase style, one above ``MAX_BARE_SECONDS`` otherwise. No duration exceeds
    ``MAX_DURATION``. The model holds seconds. ``off`` lists the values (by identity) that mean
    "turned off" and read as ``None``.

    The returned check has a ``model`` attribute: the check of a value already in the model
    (seconds, built in code), which applies the bounds but reads no unit strings or styles.
    """
    bounds = " and ".join(
        f"{op} {b:g}" for op, b in ((">", gt), (">=", ge), ("<=", le)) if b is not None
    )
    offs = " or null/false (off)" if False in off else " or null" if off else ""

    def within(got: float) -> bool:
        return not (
            (gt is not None and got <= gt)
            or (ge is not None and got < ge)
            or (le is not None and got > le)
        )

    def allowed(camel: bool, strings: bool = True) -> str:
        if not duration:
            return f"a finite number {bounds}".rstrip() + offs
        unit = "milliseconds" if camel else "seconds"
        forms = " or a duration such as '30s' or '500ms'" if strings else ""
        return f"a finite number of {unit} {bounds}{offs}{forms}"

    def seconds(got: float, value: object, path: str) -> float:
        if got > MAX_DURATION:
            raise fail(path, f"a duration of at most 365 days ({MAX_DURATION:g} s)", value)
        return got

    def check(value: object, path: str, camel: bool) -> float | None:
        if any(value is o for o in off):  # identity: 0 == False must not turn a threshold off
            return None
        if duration and isinstance(value, str):
            got = parse_duration(str.__str__(value))
            if got is None or not within(got):
                raise fail(path, allowed(camel), value)
            return seconds(got, value, path)
        got = as_number(value)
        if got is None or not within(got):
            raise fail(path, allowed(camel), value)
        if not duration:
            return got
        if camel and 0 < got < MIN_BARE_MILLISECONDS:
            raise ConfigError(
                f"{got:g} is read as {got:g} ms in FluxStack style (milliseconds), implausibly"
                f" short; write '{got:g}s' if you meant seconds, or '{got:g}ms' to keep it",
                path=path,
            )
        if not camel and got > MAX_BARE_SECONDS:
            raise ConfigError(
                f"{got:g} is read as {got:g} s, more than a day; write '{got:g}ms' if you meant"
                " milliseconds, or a unit string such as '2d' for a long duration",
                path=path,
            )
        return seconds(got / 1000 if camel else got, value, path)

    def model(value: object, path: str, camel: bool) -> float | None:
        if any(value is o for o in off):
            return None
        got = as_number(value)
        if got is None or not within(got):
            raise fail(path, allowed(False, strings=False), value)
        return seconds(got, value, path)

    if duration:
        check.duration = True  # type: ignore[attr-defined]
        check.model = model  # type: ignore[attr-defined]
    return check


def integer(low: int, high: int | None = None) -> Check:
    allowed = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"

    def check(value: object, path: str, camel: bool) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            got = int.__int__(value)
            if got >= low and (high is None or got <= high):
                return got
        raise fail(path, allowed, value)

    return check


def is_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    try:
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(host)


def text(
    allowed: str = "a non-empty string", valid: Callable[[str], bool] = bool, *, null: bool = False
) -> Check:
    def check(value: object, path: str, camel: bool) -> str | None:
        if value is None and null:
            return None
        if isinstance(value, str) and valid(got := str.__str__(value)):
            return got
        raise fail(path, allowed + (" or null" if null else ""), value)

    return check


def choice(*options: str, aliases: Mapping[str, str] | None = None, null: bool = False) -> Check:
    aliases = aliases or {}
    names = [*options, *aliases]
    allowed = "one of " + ", ".join(map(repr, names)) + (" or null" if null else "")

    def check(value: object, path: str, camel: bool) -> str | None:
        if value is None and null:
            return None
        if isinstance(value, str):
            got = str.__str__(value)
            if got in options:
                return got
            if got in aliases:
                return aliases[got]
        raise fail(path, allowed, value, suggest(value, names))

    return check


def buckets(value: object, path: str, camel: bool) -> tuple[float, ...]:
    bounds = items(value, path)
    if not bounds:
        raise fail(path, "a non-empty list of increasing numbers > 0", value)
    out: list[float] = []
    for i, item in enumerate(bounds):
        got = as_number(item)
        if got is None or got <= (out[-1] if out else 0.0):
            rule = f"> {out[-1]:g} (buckets strictly increase)" if out else "> 0"
            raise fail(f"{path}[{i}]", f"a finite number {rule}", item)
        out.append(got)
    return tuple(out)


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _pairs(value: object, path: str) -> list[tuple[str, Any]]:
    """A mapping's items, or the model's own form: a tuple of (str, value) pairs."""
    if isinstance(value, tuple):
        if all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in value):
            return [(str.__str__(k), v) for k, v in value]
        raise fail(path, "a mapping, or a tuple of (name, value) pairs", value)
    return list(entries(value, path).items())


def headers(value: object, path: str, camel: bool) -> tuple[tuple[str, str], ...]:
    pairs = []
    for key, item in _pairs(value, path):
        if not _TOKEN.fullmatch(key):
            # Not quoted, not even in the path: "Authorization: Bearer ..." pasted as a name.
            raise ConfigError(
                "expected HTTP header names (letters, digits, -), got a name that is not one"
                " (not quoted: it may hold a secret)",
                path=path,
            )
        if not isinstance(item, str) or "\r" in item or "\n" in item:
            # The value may be a secret: name its type, never echo it.
            raise ConfigError(
                f"expected a string without line breaks, got a value of type {type(item).__name__}",
                path=join(path, key),
            )
        pairs.append((key, str.__str__(item)))
    return tuple(pairs)


def labels(value: object, path: str, camel: bool) -> tuple[tuple[str, str], ...]:
    check = text("a string", lambda _: True)
    return tuple(sorted((k, check(v, join(path, k), camel)) for k, v in _pairs(value, path)))


def key_of(name: str, camel: bool) -> str:
    """The configuration key of a field: ``for_`` is ``for``; camelCase in FluxStack style."""
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(part.capitalize() for part in rest) if camel else name.rstrip("_")


# --- checks shared by the configuration modules -------------------------------------------------

_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def is_host(text: str) -> bool:
    """An IP address or a host name as RFC 1123 spells one (labels of letters, digits and
    ``-``, 253 characters at most; ``_`` too, as container names use it): text a resolver can
    be asked about, where junk would surface later as ``gaierror`` or ``UnicodeError``."""
    import ipaddress

    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        pass
    name = text[:-1] if text.endswith(".") else text
    return 0 < len(name) <= 253 and all(_HOST_LABEL.fullmatch(p) for p in name.split("."))


host_name = text("an IP address or a host name (letters, digits, '-', '_' and '.')", is_host)
optional_host_name = text(
    "an IP address or a host name (letters, digits, '-', '_' and '.')", is_host, null=True
)

PATH_TEXT = "a path starting with '/'"
endpoint_path = text(PATH_TEXT, lambda t: t.startswith("/"))
optional_text = text(null=True)
duration = number(gt=0, duration=True)
"""Seconds, above 0 (milliseconds in FluxStack style)."""
delay = number(ge=0, duration=True)
"""Seconds, 0 or more (milliseconds in FluxStack style)."""


def masked_repr(config: DataclassInstance) -> str:
    """The dataclass ``repr`` with the values of its ``headers`` masked (they carry secrets),
    and the userinfo of URLs masked."""
    parts = []
    for f in fields(config):
        value = getattr(config, f.name)
        if f.name == "headers":
            value = {name: "***" for name, _ in value}
        elif isinstance(value, str):
            value = mask_value(value)
        parts.append(f"{f.name}={value!r}")
    return f"{type(config).__name__}({', '.join(parts)})"


def entry_type(raw: Mapping[str, Any], types: Collection[str], path: str, camel: bool) -> str:
    """The ``type`` key of a list entry (an exporter, a notifier), one of ``types``."""
    if "type" not in raw:
        kinds = ", ".join(map(repr, types))
        raise ConfigError(f"missing required key 'type', one of {kinds}", path=path)
    kind: str = choice(*types)(raw["type"], join(path, "type"), camel)
    return kind
