"""A scrape of an idle server renders only what moved (``sinks/reuse.py``): the HTTP scope's
text is kept between scrapes while the recorder's version holds.

In: the source's ``collect(names)``, the recorder's ``version()``, the render options. Out:
``Exposition.render(openmetrics)``, the same bytes a fresh render gives.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from opentelemetry.sdk.metrics.export import MetricsData

from fluxstack_otel._internal.http.tally import HttpSeries
from fluxstack_otel._internal.metrics.stream import HTTP_SCOPE
from fluxstack_otel._internal.sinks.prometheus.exposition import (
    DEFAULT_OPTIONS,
    HttpText,
    RenderOptions,
    render,
)
from fluxstack_otel._internal.sinks.prometheus.http_text import http_text
from fluxstack_otel._internal.sinks.prometheus.labels import labels_inner
from fluxstack_otel._internal.sinks.reuse import Collect, KeptScope

__all__ = ["Exposition"]


class Exposition:
    """Renders a source's text exposition, reusing the HTTP scope's text while nothing moved.

    Args:
        collect: The source's ``collect(names)``.
        version: The recorder's ``version`` (None: always render afresh).
        options: What the exposition includes.
        series: The recorder's ``series`` (None: the HTTP scope is rendered from its points):
            a render that cannot reuse the kept text writes the scope from it directly
            (``http_text.py``).
    """

    def __init__(
        self,
        collect: Collect,
        version: Callable[[], int | None] | None = None,
        options: RenderOptions = DEFAULT_OPTIONS,
        series: Callable[[], HttpSeries | None] | None = None,
    ) -> None:
        self._collect = collect
        self._options = options
        self._kept = {om: KeptScope[HttpText](version) for om in (False, True)}
        self._series = series
        self._scope_labels = (
            labels_inner(
                {"otel_scope_name": HTTP_SCOPE.name, "otel_scope_version": HTTP_SCOPE.version or ""}
            )
            if options.scope_labels
            else ""
        )

    def render(
        self,
        openmetrics: bool,
        collect: Collect | None = None,
        made_at: Callable[[], int | None] | None = None,
    ) -> bytes:
        """The exposition now: text 0.0.4, or OpenMetrics (``collect``: instead of the source's,
        such as a scheduler round's shared collection, whose ``made_at`` says which version it
        was made at)."""
        options = self._options

        def encode(
            data: MetricsData, http: HttpText | None, keep: Callable[[HttpText], None] | None
        ) -> bytes:
            return render(data, openmetrics=openmetrics, options=options, http=http, keep=keep)

        direct = None if self._series is None else partial(self._direct, openmetrics)
        return self._kept[openmetrics].encode(collect or self._collect, encode, direct, made_at)

    def fresh(self, openmetrics: bool) -> bytes:
        """The exposition now, reusing no kept text (the HTTP scope written from the series
        where it can be)."""
        http = self._direct(openmetrics) if self._series is not None else None
        data = self._collect(None if http is None else ())
        return render(data, openmetrics=openmetrics, options=self._options, http=http)

    def _direct(self, openmetrics: bool) -> HttpText | None:
        series = self._series() if self._series is not None else None
        if series is None:
            return None
        return http_text(series, openmetrics=openmetrics, scope_labels=self._scope_labels)
