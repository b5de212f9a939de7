"""A scrape of an idle server renders only what moved: the HTTP scope's text is kept between
scrapes while the recorder's version holds.

In: the source's ``collect(names)``, the recorder's ``version()`` (None where the HTTP scope may
change without it: ``in_progress``, or a multiprocess host's merged stream), the render options.
Out: ``Exposition.render(openmetrics)``, the same bytes a fresh render gives.

When the version is the one the kept text was rendered at, the source is collected without the
built-in HTTP metrics (``names=()``: the recorder takes no snapshot and the projection builds no
point) and the kept text is spliced where the HTTP scope stands; the SDK scopes (system, custom,
third-party: a few dozen points) are rendered fresh. The version is read before the collection,
so a kept text is never older than the version it is kept under: a request recorded before a
scrape moves the version and always shows in it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection

from opentelemetry.sdk.metrics.export import MetricsData

from fluxstack_otel._internal.sinks.prometheus.exposition import (
    DEFAULT_OPTIONS,
    HttpText,
    RenderOptions,
    render,
)

__all__ = ["Exposition"]

_NONE: tuple[str, ...] = ()


class Exposition:
    """Renders a source's text exposition, reusing the HTTP scope's text while nothing moved.

    Args:
        collect: The source's ``collect(names)``.
        version: The recorder's ``version`` (None: always render afresh).
        options: What the exposition includes.
    """

    def __init__(
        self,
        collect: Callable[[Collection[str] | None], MetricsData],
        version: Callable[[], int | None] | None = None,
        options: RenderOptions = DEFAULT_OPTIONS,
    ) -> None:
        self._collect = collect
        self._version = version
        self._options = options
        self._lock = threading.Lock()
        self._kept: dict[bool, tuple[int, HttpText]] = {}  # openmetrics -> (version, text)

    def render(self, openmetrics: bool) -> bytes:
        """The exposition now: text 0.0.4, or OpenMetrics."""
        version = None if self._version is None else self._version()
        if version is not None:
            with self._lock:
                kept = self._kept.get(openmetrics)
            if kept is not None and kept[0] == version:
                return render(
                    self._collect(_NONE), openmetrics=openmetrics, options=self._options,
                    http=kept[1],
                )  # fmt: skip
        made: list[HttpText] = []
        body = render(
            self._collect(None), openmetrics=openmetrics, options=self._options, keep=made.append
        )
        if version is not None and made:
            with self._lock:
                self._kept[openmetrics] = (version, made[0])
        return body
