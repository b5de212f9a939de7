"""A scrape of an idle server renders only what moved (``sinks/reuse.py``): the HTTP scope's
text is kept between scrapes while the recorder's version holds.

In: the source's ``collect(names)``, the recorder's ``version()``, the render options. Out:
``Exposition.render(openmetrics)``, the same bytes a fresh render gives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from opentelemetry.sdk.metrics.export import MetricsData

from fluxstack_otel._internal.http.tally import HttpSeries
from fluxstack_otel._internal.metrics.stream import HTTP_SCOPE
from fluxstack_otel._internal.sinks.prometheus.exposition import (
    CHUNK,
    DEFAULT_OPTIONS,
    HttpStream,
    HttpText,
    RenderOptions,
    chunked,
    pieces,
    render,
)
from fluxstack_otel._internal.sinks.prometheus.http_text import http_stream, http_text
from fluxstack_otel._internal.sinks.prometheus.labels import labels_inner
from fluxstack_otel._internal.sinks.reuse import Collect, KeptScope

__all__ = ["KEEP_MAX", "Exposition"]

KEEP_MAX = 8 << 20
"""Characters of a streamed scrape's HTTP text kept for the next one: the text of the default
cap of 2,000 label sets (about 5.6 MB with the default buckets) is kept; beyond it every scrape
writes the scope afresh from the series, so memory never holds a second copy of a large
exposition (a text of 50,000 label sets is 139 MB)."""


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
        direct: bool = True,
    ) -> bytes:
        """The exposition now: text 0.0.4, or OpenMetrics (``collect``: instead of the source's,
        such as a scheduler round's shared collection, whose ``made_at`` says which version it
        was made at; ``direct`` False: the HTTP scope from its points, without trying the
        series first)."""
        options = self._options

        def encode(
            data: MetricsData, http: HttpText | None, keep: Callable[[HttpText], None] | None
        ) -> bytes:
            return render(data, openmetrics=openmetrics, options=options, http=http, keep=keep)

        from_series = None
        if direct and self._series is not None:
            from_series = partial(self._direct, openmetrics)
        return self._kept[openmetrics].encode(
            collect or self._collect, encode, from_series, made_at
        )

    def stream(self, openmetrics: bool) -> Iterator[bytes]:
        """The exposition now, in chunks of about ``exposition.CHUNK`` characters, made as they
        are read: the kept HTTP text while the version holds, else the scope written from the
        series piece by piece (kept for the next scrape up to ``KEEP_MAX``), so a scrape's
        working set is a chunk and the series' tally, not the text."""
        kept = self._kept[openmetrics]
        version, part = kept.current()
        if part is not None:
            data = self._collect(())
            yield from chunked(pieces(data, openmetrics, self._options, part))
            return
        series = None if version is None or self._series is None else self._series()
        made = None
        if series is not None:
            made = http_stream(series, openmetrics=openmetrics, scope_labels=self._scope_labels)
        if version is None or made is None:
            # The points path (in-progress counts, exemplars...): the series were read already,
            # or say nothing, so they are not read again.
            yield self.render(openmetrics, direct=False)
            return
        # The text kept as it streams, in pieces of about a chunk (never joined whole).
        texts: list[str] | None = []
        pending: list[str] = []

        def teed(texts_of: Iterator[str]) -> Iterator[str]:
            nonlocal texts
            held = waiting = 0
            for text in texts_of:
                if texts is not None:
                    held += len(text)
                    if held > KEEP_MAX:
                        texts = None
                        pending.clear()
                    else:
                        pending.append(text)
                        waiting += len(text)
                        if waiting >= CHUNK:
                            texts.append("".join(pending))
                            pending.clear()
                            waiting = 0
                yield text

        http = HttpStream(teed(made.pieces), made.families)
        yield from chunked(pieces(self._collect(()), openmetrics, self._options, http))
        if texts is not None:
            texts.append("".join(pending))
            kept.keep(version, HttpText(tuple(texts), made.families))

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
