"""After a large render the C heap's free pages go back to the system, at most once a second."""

from __future__ import annotations

import platform

import pytest

from fluxstack_otel._internal.runtime import heap
from support.clocks import FakeClock


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_last", -float("inf"))


def test_a_small_render_trims_nothing() -> None:
    assert not heap.after_large_render(heap.MIN_BYTES - 1, clock=FakeClock())


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_large_renders_trim_at_most_once_a_second_on_glibc() -> None:
    clock = FakeClock(100.0)
    assert heap.after_large_render(heap.MIN_BYTES, clock=clock)
    clock.advance(heap.MIN_SECONDS / 2)
    assert not heap.after_large_render(heap.MIN_BYTES, clock=clock)
    clock.advance(heap.MIN_SECONDS)
    assert heap.after_large_render(10 * heap.MIN_BYTES, clock=clock)


def test_without_malloc_trim_nothing_is_called(monkeypatch: pytest.MonkeyPatch) -> None:
    """A C library without the call (musl, macOS): the render goes on, nothing trims."""
    monkeypatch.setattr(heap, "_looked_up", True)
    monkeypatch.setattr(heap, "_trim", None)
    assert not heap.after_large_render(heap.MIN_BYTES, clock=FakeClock())
