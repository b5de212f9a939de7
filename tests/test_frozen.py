"""``Frozen`` behaves as ``@dataclass(frozen=True, kw_only=True)`` does, checked side by side."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from fluxstack_otel._internal.config.frozen import Frozen


@dataclass(frozen=True, kw_only=True)
class RealBase:
    kind: ClassVar[str] = "base"
    enabled: bool = True
    interval: float | None = None


@dataclass(frozen=True, kw_only=True)
class Real(RealBase):
    url: str = field(metadata={"check": "url"})
    tags: tuple[str, ...] = ()
    extra: dict[str, int] = field(default_factory=dict, compare=False, hash=False)
    secret: str = field(default="s", repr=False)
    enabled: bool = False


class MineBase(Frozen):
    kind: ClassVar[str] = "base"
    enabled: bool = True
    interval: float | None = None


class Mine(MineBase):
    url: str = field(metadata={"check": "url"})
    tags: tuple[str, ...] = ()
    extra: dict[str, int] = field(default_factory=dict, compare=False, hash=False)
    secret: str = field(default="s", repr=False)
    enabled: bool = False


def both(**kwargs: Any) -> tuple[Any, Any]:
    return Real(**kwargs), Mine(**kwargs)


def test_fields_match_the_dataclass_ones() -> None:
    """Same fields, in the same order (base first, an override keeps its place), same options."""
    attrs = ("name", "type", "default", "repr", "hash", "init", "compare", "metadata", "kw_only")
    real, mine = dataclasses.fields(Real), dataclasses.fields(Mine)
    assert [f.name for f in mine] == ["enabled", "interval", "url", "tags", "extra", "secret"]
    for r, m in zip(real, mine, strict=True):
        assert [getattr(m, a) for a in attrs] == [getattr(r, a) for a in attrs]
        assert (m.default_factory is dict) == (r.default_factory is dict)
    assert Mine.kind == "base"  # a ClassVar is not a field
    assert dataclasses.is_dataclass(Mine)
    assert dataclasses.is_dataclass(Mine(url="u"))  # type: ignore[call-arg]


def test_init_defaults_factories_and_errors() -> None:
    """Defaults, a fresh default_factory value per instance, and TypeError for bad calls."""
    real, mine = both(url="http://x")
    assert dataclasses.asdict(mine) == dataclasses.asdict(real)
    assert mine.extra == {}
    assert mine.extra is not Mine(url="y").extra
    assert mine.enabled is False
    assert mine.interval is None
    with pytest.raises(TypeError, match="missing required keyword-only argument: 'url'"):
        Mine()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        Mine(url="u", nope=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Mine("u")  # type: ignore[call-arg, arg-type]


def test_repr_eq_and_hash_match() -> None:
    """repr skips repr=False fields; equality and hash skip compare=False fields."""
    real, mine = both(url="u", tags=("a",), interval=2.0)
    assert repr(mine) == repr(real).replace("Real(", "Mine(")
    assert "secret" not in repr(mine)
    assert mine == Mine(url="u", tags=("a",), interval=2.0, extra={"x": 1})
    assert hash(mine) == hash(Mine(url="u", tags=("a",), interval=2.0, extra={"x": 1}))
    assert mine != Mine(url="v", tags=("a",), interval=2.0)
    assert mine != real
    assert real != mine
    assert len({mine, Mine(url="u", tags=("a",), interval=2.0)}) == 1
    nan = float("nan")
    assert Mine(url="u", interval=nan) == Mine(url="u", interval=nan)  # identity, as a tuple


def test_frozen_and_tools() -> None:
    """Assignment and deletion raise; replace, copy and pickle give equal, new records."""
    mine = Mine(url="u")
    with pytest.raises(dataclasses.FrozenInstanceError):
        mine.url = "v"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        mine.other = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        del mine.url
    changed = dataclasses.replace(mine, url="v")
    assert (changed.url, mine.url, type(changed)) == ("v", "u", Mine)
    assert copy.deepcopy(mine) == mine == copy.copy(mine)
    assert pickle.loads(pickle.dumps(mine)) == mine


def test_signature_matches_the_dataclass_one() -> None:
    """inspect.signature (help(), documentation tools) shows the keyword-only fields."""
    assert str(inspect.signature(Mine)) == str(inspect.signature(Real))
    assert "url: 'str'," in str(inspect.signature(Mine))
    assert "extra: 'dict[str, int]' = <factory>" in str(inspect.signature(Mine))
    assert Mine(url="u").__replace__(url="v") == Mine(url="v")  # copy.replace on 3.13


def test_own_methods_are_kept() -> None:
    """A class's own __repr__ and properties win over the shared ones."""

    class Masked(Frozen):
        token: str = "t"

        def __repr__(self) -> str:
            return "Masked(token='***')"

        @property
        def short(self) -> str:
            return self.token[:1]

    assert repr(Masked()) == "Masked(token='***')"
    assert Masked(token="abc").short == "a"

    class OwnEq(Frozen):
        a: int = 1

        def __eq__(self, other: object) -> bool:
            return isinstance(other, OwnEq) and abs(self.a) == abs(other.a)

    assert OwnEq(a=1) == OwnEq(a=-1)
    assert hash(OwnEq(a=1)) == hash(OwnEq(a=1))  # still hashable, as a frozen dataclass is


def test_unsupported_shapes_are_refused() -> None:
    """What the base does not implement fails when the class is defined, not later."""
    with pytest.raises(ValueError, match="mutable default"):

        class ListDefault(Frozen):
            items: list[int] = []  # noqa: RUF012

    with pytest.raises(TypeError, match="__post_init__"):

        class PostInit(Frozen):
            a: int = 1

            def __post_init__(self) -> None:
                pass

    with pytest.raises(TypeError, match="init=False"):

        class NoInit(Frozen):
            a: int = field(default=1, init=False)
