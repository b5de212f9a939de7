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
from fluxstack_otel._internal.sinks.prometheus import exposition
from fluxstack_otel._internal.sinks.prometheus.deflate import (
    Deflated,
    GzipBody,
    PlainBody,
    gathered,
)
from fluxstack_otel._internal.sinks.prometheus.exposition import (
    DEFAULT_OPTIONS,
    HttpText,
    RenderOptions,
    chunked,
    head,
    render,
    tail,
)
from fluxstack_otel._internal.sinks.prometheus.http_text import http_stream, http_text
from fluxstack_otel._internal.sinks.prometheus.labels import labels_inner
from fluxstack_otel._internal.sinks.reuse import Collect, KeptScope

__all__ = ["KEEP_MAX", "PIECE", "Exposition"]

KEEP_MAX = 8 << 20
"""Compressed bytes of a streamed scrape's HTTP text kept for the next one: about 115 bytes per
label set with the default buckets, so the text of 50,000 label sets (139 MB, 5.8 MB compressed)
is kept; beyond it every scrape writes the scope afresh from the series."""

PIECE = 1 << 14
"""Bytes of body gathered before they are sent (16 KiB, a chunk's worth): zlib hands back a
gzip header alone at first, and a body that fits one piece must stay one message with its
length."""


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

    def stream(self, openmetrics: bool, gzip: bool = False) -> Iterator[bytes]:
        """The exposition now, plain or as one gzip member, in pieces of at least ``PIECE``
        bytes (a small body is one), made as they are read: the HTTP scope is the kept fragment
        while the version holds, else written from the series chunk by chunk and kept,
        compressed, for the next scrape (up to ``KEEP_MAX`` bytes). A scrape's working set is a
        chunk and the series' tally, never the text."""
        body = GzipBody(KEEP_MAX) if gzip else PlainBody(exposition.CHUNK)
        return gathered(self._written(openmetrics, body), PIECE)

    def _written(self, openmetrics: bool, body: PlainBody | GzipBody) -> Iterator[bytes]:
        kept = self._kept[openmetrics]
        version, part = kept.current()
        made = None
        if part is None:
            series = None if version is None or self._series is None else self._series()
            if series is not None:
                made = http_stream(series, openmetrics=openmetrics, scope_labels=self._scope_labels)
            if version is None or made is None:
                # The points path (in-progress counts, exemplars...): the series were read
                # already, or say nothing, so they are not read again.
                yield body.start()
                yield body.write(self.render(openmetrics, direct=False))
                yield body.finish()
                return
        data = self._collect(())
        options = self._options
        families: dict[str, str] = {}
        yield body.start()
        for chunk in chunked(head(data, openmetrics, options)):
            yield body.write(chunk)
        if made is not None and version is not None:
            families.update(made.families)
            yield body.begin()
            for chunk in chunked(made.pieces):
                yield body.write(chunk)
            out, fragment = body.end()
            yield out
            if fragment is not None:
                kept.keep(version, HttpText(fragment, made.families))
        elif part is not None:
            families.update(part.families)
            if isinstance(part.text, Deflated):
                yield from body.splice(part.text)
            else:  # a text the points path kept
                texts = (part.text,) if isinstance(part.text, str) else part.text
                for chunk in chunked(texts):
                    yield body.write(chunk)
        for chunk in chunked(tail(data, openmetrics, options, families, True)):
            yield body.write(chunk)
        yield body.finish()

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
