"""``Frozen``: the base of the package's immutable, keyword-only records (the config model, alerts).

A subclass is a frozen, keyword-only dataclass in every way code observes one:
``dataclasses.fields``, ``replace``, ``asdict`` and ``is_dataclass`` work on it, its fields are real
``dataclasses.Field`` objects (``field(metadata=...)``, ``default_factory``, ``repr=False``,
``compare=False`` and ``hash=`` are honoured), it compares and hashes by its fields, its ``repr``
is the dataclass one, and assigning or deleting an attribute raises ``FrozenInstanceError``.
Type checkers see it through ``dataclass_transform``.

Why not ``@dataclass(frozen=True, kw_only=True)``: that decorator compiles six methods per class
from generated source, about 1 ms per class on Python 3.11, and the package defines twenty such
classes at import, half of its own start-up (docs/performance.md). Here the methods are written
once, on this base, and read each class's fields from a table built when the class is defined.

Supported is what the package uses: keyword-only fields, inheritance between ``Frozen`` classes
(base fields first, as in dataclasses), ``ClassVar`` annotations (not fields) and methods or
properties of the class's own, including a ``__repr__`` of its own. Refused, with ``TypeError``
when the class is defined: ``InitVar``, ``field(init=False)`` and ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import MISSING, Field, FrozenInstanceError
from typing import Any, ClassVar, dataclass_transform

__all__ = ["Frozen"]

# The marker dataclasses.fields() keeps a Field by (its other kinds are ClassVar and InitVar
# pseudo-fields). Private, but present under this name since Python 3.7.
_FIELD = dataclasses._FIELD  # type: ignore[attr-defined]
_CLASSVAR_PREFIXES = ("ClassVar", "typing.ClassVar", "t.ClassVar")


class _Signature:
    """``cls.__signature__``: what inspect.signature, help() and documentation tools show, the
    keyword-only signature a dataclass would have; built on first use, not at import."""

    def __get__(self, obj: object, cls: type[Frozen]) -> inspect.Signature:
        parameters = [
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=(
                    f.default
                    if f.default is not MISSING
                    else _FACTORY
                    if f.default_factory is not MISSING
                    else inspect.Parameter.empty
                ),
                annotation=f.type,
            )
            for f in cls.__dataclass_fields__.values()
        ]
        return inspect.Signature(parameters, return_annotation=None)


class _Factory:
    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()  # the default a signature shows for a default_factory field


@dataclass_transform(
    kw_only_default=True, frozen_default=True, field_specifiers=(dataclasses.field, Field)
)
class Frozen:
    """Base class: subclasses are frozen, keyword-only dataclasses (module docstring)."""

    __slots__ = ()
    __match_args__: ClassVar[tuple[str, ...]] = ()
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]
    __signature__ = _Signature()
    # (name, default, default_factory) per init field, in order.
    _init_table: ClassVar[tuple[tuple[str, Any, Any], ...]]
    _repr_names: ClassVar[tuple[str, ...]]
    _compare_names: ClassVar[tuple[str, ...]]
    _hash_names: ClassVar[tuple[str, ...]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__post_init__" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: Frozen classes do not run __post_init__")
        table: dict[str, Field[Any]] = {}
        for base in reversed(cls.__mro__[1:]):
            table.update(base.__dict__.get("__dataclass_fields__", {}))
        for name, annotation in inspect.get_annotations(cls).items():
            if _is_classvar(annotation):
                continue
            table[name] = _field(cls, name, annotation)
        cls.__dataclass_fields__ = table
        fields = tuple(table.values())
        cls._init_table = tuple((f.name, f.default, f.default_factory) for f in fields)
        cls._repr_names = tuple(f.name for f in fields if f.repr)
        cls._compare_names = tuple(f.name for f in fields if f.compare)
        cls._hash_names = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
        if "__eq__" in cls.__dict__ and cls.__dict__.get("__hash__") is None:
            cls.__hash__ = Frozen.__hash__  # type: ignore[method-assign]  # as dataclasses do

    def __init__(self, /, **kwargs: Any) -> None:
        setter = object.__setattr__
        for name, default, factory in self._init_table:
            if name in kwargs:
                setter(self, name, kwargs.pop(name))
            elif default is not MISSING:
                setter(self, name, default)
            elif factory is not MISSING:
                setter(self, name, factory())
            else:
                raise TypeError(
                    f"{type(self).__qualname__}.__init__() missing required keyword-only"
                    f" argument: {name!r}"
                )
        if kwargs:
            raise TypeError(
                f"{type(self).__qualname__}.__init__() got an unexpected keyword argument"
                f" {next(iter(kwargs))!r}"
            )

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._repr_names)
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        # Tuples, as dataclasses compare: an element identical in both (a NaN) counts as equal.
        names = self._compare_names
        return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, name) for name in self._hash_names))

    def __replace__(self, /, **changes: Any) -> Any:
        """``copy.replace`` (Python 3.13): ``dataclasses.replace``."""
        return dataclasses.replace(self, **changes)

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")


def _is_classvar(annotation: object) -> bool:
    if isinstance(annotation, str):
        return annotation.startswith(_CLASSVAR_PREFIXES)
    return annotation is ClassVar or getattr(annotation, "__origin__", None) is ClassVar


def _field(cls: type, name: str, annotation: object) -> Field[Any]:
    value = cls.__dict__.get(name, MISSING)
    f: Field[Any] = value if isinstance(value, Field) else dataclasses.field(default=value)
    if isinstance(annotation, str) and annotation.startswith(("InitVar", "dataclasses.InitVar")):
        raise TypeError(f"{cls.__name__}.{name}: Frozen classes have no InitVar fields")
    if not f.init:
        raise TypeError(f"{cls.__name__}.{name}: Frozen classes have no init=False fields")
    if f.default is not MISSING and f.default.__class__.__hash__ is None:
        # As dataclasses: a mutable default would be shared by every instance.
        raise ValueError(
            f"{cls.__name__}.{name}: mutable default {type(f.default)} is not allowed:"
            " use default_factory"
        )
    f.name = name
    f.type = annotation
    f._field_type = _FIELD  # type: ignore[attr-defined]
    f.kw_only = True
    # As dataclasses: the class attribute holds the default, or nothing for a required field.
    if f.default is MISSING:
        if name in cls.__dict__:
            delattr(cls, name)
    else:
        setattr(cls, name, f.default)
    return f
