"""A sink's encoding of the HTTP scope, kept between collections while nothing in it moved.

Between two collections of an idle server only the system and SDK scopes change: the HTTP scope
(thousands of series) stays as it was, and the recorder's ``version()`` says so. A sink that
encodes a collection (the Prometheus text of a scrape or of the file exporter, the console
snapshot, the JSON document) keeps what it made of the HTTP scope under the version it read;
while the version holds it collects without the HTTP metrics (``names=()``: no snapshot, no
point built) and splices the kept part in, so only a few dozen points are encoded afresh.

In: the recorder's ``version`` (None where the HTTP scope may change without it: in-progress
counts, a multiprocess host's merged stream), a collection that takes ``names``, and the sink's
encoder. Out: what the encoder returns, the same bytes a fresh encoding gives.

The version is read before the collection, so a kept part is never older than the version it is
kept under: a request recorded before a collection moves the version and always shows in it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from typing import Generic, TypeVar

from opentelemetry.sdk.metrics.export import MetricsData

__all__ = ["Collect", "Encoder", "KeptScope"]

_T = TypeVar("_T")
_R = TypeVar("_R")

Collect = Callable[[Collection[str] | None], MetricsData]
"""A collection: ``names`` None for everything, empty for everything but the HTTP metrics."""

Encoder = Callable[[MetricsData, _T | None, Callable[[_T], None] | None], _R]
"""Encodes a collection, given the HTTP scope's kept part (to splice in: the collection was made
without the HTTP metrics) or a function to hand this encoding's part to (None: nothing to keep)."""

_NONE: tuple[str, ...] = ()


class KeptScope(Generic[_T]):
    """One encoding's HTTP part, kept while the recorder's version holds.

    Args:
        version: The recorder's ``version`` (None: every encoding is made afresh).
    """

    __slots__ = ("_kept", "_lock", "_version")

    def __init__(self, version: Callable[[], int | None] | None) -> None:
        self._version = version
        self._lock = threading.Lock()
        self._kept: tuple[int, _T] | None = None

    def encode(
        self,
        collect: Collect,
        encoder: Encoder[_T, _R],
        direct: Callable[[], _T | None] | None = None,
        made_at: Callable[[], int | None] | None = None,
    ) -> _R:
        """``encoder``'s output for a collection now, reusing the kept HTTP part if it holds.

        ``direct`` makes the HTTP part straight from the recorder (None where it cannot): then
        the collection is made without the HTTP metrics, as for a kept part. ``made_at`` says
        which version a shared collection (a round's) was made at: another job may have made it
        before this one read the version, and the part is kept under that older one.
        """
        version, kept = self.current()
        if version is None:
            return encoder(collect(None), None, None)
        if kept is not None:
            return encoder(collect(_NONE), kept, None)
        made: list[_T] = []
        part = None if direct is None else direct()
        if part is not None:
            made.append(part)
            out = encoder(collect(_NONE), part, None)
        else:
            out = encoder(collect(None), None, made.append)
            if made_at is not None:
                at = made_at()
                if at is None:
                    return out  # a collection of unknown age: nothing kept
                version = min(version, at)
        if made:
            self.keep(version, made[0])
        return out

    def current(self) -> tuple[int | None, _T | None]:
        """The recorder's version now, and the part kept under it (None: none holds)."""
        version = None if self._version is None else self._version()
        if version is None:
            return None, None
        with self._lock:
            kept = self._kept
        return version, kept[1] if kept is not None and kept[0] == version else None

    def keep(self, version: int, part: _T) -> None:
        """Keep ``part``, made at ``version``, unless a part of a later version is kept."""
        with self._lock:
            if self._kept is None or self._kept[0] <= version:
                self._kept = (version, part)
