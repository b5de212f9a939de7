"""How config classes declare their keys, and how one is read or checked: the one resolver.

Each config dataclass declares its keys once, in its fields: ``option`` (or ``param`` for a
top-level key, with its documentation and unit) puts the field's check in its metadata.
``build`` reads any such dataclass from a mapping, ``validate`` (every class's
``__post_init__``) checks an object as constructed, and ``read_document`` reads a ``.toml`` or
``.json`` file. The checks themselves are in ``checks``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, field, fields
from typing import TYPE_CHECKING, Any, TypeVar, cast

from fluxstack_otel._internal.config.checks import (
    CHECK,
    DOC,
    PYPROJECT_TABLE,
    UNIT,
    Check,
    entries,
    fail,
    join,
    key_of,
    show,
    suggest,
)
from fluxstack_otel._internal.redact import is_secret_path
from fluxstack_otel.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["build", "option", "param", "read_document", "validate"]

_T = TypeVar("_T", bound="DataclassInstance")
_V = TypeVar("_V")


def option(default: _V, check: Check) -> _V:
    """A field with a default, read by ``check``."""
    return field(default=default, metadata={CHECK: check})


def param(default: _V, check: Check, doc: str, unit: str | None = None) -> _V:
    """A top-level field: ``option`` plus the documentation and unit the reference shows."""
    return field(default=default, metadata={CHECK: check, DOC: doc, UNIT: unit})


def build(
    cls: type[_T], value: object, path: str, camel: bool, extra: Mapping[str, Check] | None = None
) -> _T:
    """Read one config dataclass from a mapping, driven by the checks in its fields' metadata.

    The one resolver: unknown keys are errors with a did-you-mean in the style the user writes;
    a field without a default is required; fields without a check are not configuration keys.
    ``extra`` names keys that are checked but not stored (an exporter's ``type``). An instance
    of ``cls`` is returned as it is: it was validated when it was constructed. The rules across
    keys run when the object is constructed (``validate``); their errors get ``path`` in front.
    """
    if isinstance(value, cls):
        return value
    raw = entries(value, path)
    known = {key_of(f.name, camel): f for f in fields(cls) if CHECK in f.metadata}
    extra = extra or {}
    kwargs: dict[str, Any] = {}
    for key, item in raw.items():
        where = join(path, key)
        if key in known:
            kwargs[known[key].name] = known[key].metadata[CHECK](item, where, camel)
        elif key in extra:
            extra[key](item, where, camel)
        else:
            allowed = sorted([*known, *extra])
            hint = suggest(key, allowed)
            if is_secret_path(path) and not hint:
                # Not a near-miss of a key: it may be a pasted secret, so it is not quoted.
                raise ConfigError(
                    f"unknown key (not quoted in a section of secrets); allowed keys:"
                    f" {', '.join(allowed)}",
                    path=path,
                )
            raise ConfigError(
                f"unknown key {key!r}{hint}; allowed keys: {', '.join(allowed)}",
                path=where,
            )
    for key, f in known.items():
        if f.name not in kwargs and f.default is MISSING:
            raise ConfigError(f"missing required key {key!r}", path=path)
    try:
        return cast("Callable[..., _T]", cls)(**kwargs)
    except ConfigError as exc:
        if not path:
            raise
        where = (
            path
            if not exc.path
            else f"{path}{exc.path}"
            if exc.path[0] == "["
            else join(path, exc.path)
        )
        raise ConfigError(exc.reason, path=where) from None


_MODEL_CHECKS: dict[type, tuple[tuple[str, Check, object], ...]] = {}


def validate(config: DataclassInstance) -> None:
    """Check every field of a config object as constructed, the ``__post_init__`` of the model.

    Each field's check (``metadata[CHECK]``, or its ``model`` variant for durations) reads the
    value held, in the native style: an object built in code meets the checks a mapping, a file
    or the environment meets. A value the check normalizes (an int to a float, a mapping of
    headers to pairs) is stored normalized. A field holding its default itself is not checked
    (``None`` is the default of every optional key).

    Raises:
        ConfigError: A field holds a bad value; the path is the field's name.
    """
    cls = type(config)
    checks = _MODEL_CHECKS.get(cls)
    if checks is None:
        checks = tuple(
            (f.name, getattr(f.metadata[CHECK], "model", f.metadata[CHECK]), f.default)
            for f in fields(config)
            if CHECK in f.metadata
        )
        _MODEL_CHECKS[cls] = checks
    for name, check, default in checks:
        value = getattr(config, name)
        if value is default:
            continue
        got = check(value, key_of(name, False), False)
        if got is not value:
            object.__setattr__(config, name, got)


def read_document(source: str | os.PathLike[str]) -> tuple[str, object, str]:
    """Read a ``.toml`` or ``.json`` file: ``(file name, the config document, its key path)``.

    A TOML file with a ``[tool]`` table (``pyproject.toml``) holds the configuration under
    ``[tool.fluxstack.monitoring]``; otherwise it is the whole document.
    """
    try:
        name = os.fspath(source)
    except Exception as exc:  # a user's __fspath__
        raise ConfigError(f"could not read the path {show(source)}: {type(exc).__name__}") from None
    if not isinstance(name, str):
        raise fail("", "a str path", name)
    suffix = os.path.splitext(name)[1]
    kind = suffix.lower()
    if kind not in (".toml", ".json"):
        raise ConfigError(f"config file {name!r}: expected a .toml or .json file, got {suffix!r}")
    try:
        with open(name, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ConfigError(f"config file {name!r}: cannot read it: {exc.strerror or exc}") from None
    try:
        if kind == ".toml":
            import tomllib

            document: object = tomllib.loads(data.decode())
        else:
            document = json.loads(data)
    except (ValueError, RecursionError) as exc:  # decoding errors are ValueErrors too
        raise ConfigError(f"config file {name!r}: not valid {kind[1:].upper()}: {exc}") from None
    if not (kind == ".toml" and isinstance(document, dict) and "tool" in document):
        return name, document, ""
    for key in PYPROJECT_TABLE:
        if not isinstance(document, dict) or key not in document:
            raise ConfigError(f"config file {name!r}: no [{'.'.join(PYPROJECT_TABLE)}] table")
        document = document[key]
    return name, document, ".".join(PYPROJECT_TABLE)
