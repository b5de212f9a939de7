"""The json exporter: the JSON document served at ``endpoint``, POSTed to ``url``, written to
``file_path``, in any combination.

The document itself is built by ``_document.document`` (re-exported here); its schema is
``docs/json-schema.json``. The endpoint is pulled like ``/metrics``; the POST and the file are
pushed every interval from the exporter's own thread, so a slow or failing webhook never touches
a request, and at shutdown both are done once more within the shutdown bound.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from fluxstack_otel._internal.asgi_types import Receive, Scope, Send
from fluxstack_otel._internal.runtime import background
from fluxstack_otel._internal.runtime.failures import report_failure
from fluxstack_otel._internal.sinks.base import ALLOWED_METHODS, method_not_allowed, plain_response
from fluxstack_otel._internal.sinks.document import (
    CONTENT_TYPE,
    HttpJson,
    document,
    document_text,
    safe_extras,
)
from fluxstack_otel._internal.sinks.periodic import PeriodicWorker, Tick
from fluxstack_otel._internal.sinks.reuse import Collect, KeptScope
from fluxstack_otel._internal.transport.atomic import write_atomic
from fluxstack_otel._internal.transport.post import PostError, post_with_retries, public_url

if TYPE_CHECKING:
    from fluxstack_otel._internal.config.model import JsonExporterConfig
    from fluxstack_otel._internal.sinks.base import Endpoint, SinkContext

__all__ = ["JsonEndpoint", "JsonSink", "document"]

_log = logging.getLogger("fluxstack_otel")


class JsonEndpoint:
    """The JSON document served by the middleware (an ASGI app for one path, GET and HEAD).

    The document is built on the package's render thread (``runtime/background.py``, low
    priority), so a large one never stalls requests.

    Args:
        collect: The stream's ``collect(names)`` (cumulative data).
        extras: Returns the extra top-level sections.
        version: The recorder's ``version``: the HTTP scope's entries are reused while it holds
            (None: every document is built afresh).
    """

    def __init__(
        self,
        collect: Collect,
        extras: Callable[[], Mapping[str, Any]] = dict,
        version: Callable[[], int | None] | None = None,
    ) -> None:
        self._collect = collect
        self._extras = extras
        self._kept = KeptScope[HttpJson](version)

    def text(
        self, collect: Collect | None = None, made_at: Callable[[], int | None] | None = None
    ) -> str:
        """The document now (``collect``: instead of the stream's, such as a round's, whose
        ``made_at`` says which version it was made at)."""
        extras = safe_extras(self._extras)
        return self._kept.encode(
            collect or self._collect,
            lambda data, http, keep: document_text(data, extras, http=http, keep=keep),
            made_at=made_at,
        )

    def body(self) -> bytes:
        """The document as served now."""
        return self.text().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method", "GET")
        if method not in ALLOWED_METHODS:
            await method_not_allowed(send)
            return
        try:
            body = await background.run(self.body)
        except Exception:
            _log.exception("building the JSON metrics document failed")
            await plain_response(send, 500, b"metrics collection failed", head=method == "HEAD")
            return
        await _respond(send, 200, body, CONTENT_TYPE.encode(), head=method == "HEAD")


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
    *,
    head: bool = False,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


class JsonSink:
    """A json exporter entry.

    Args:
        exporter: The entry's configuration (at least one of endpoint, url, file_path).
        context: The monitoring's sink context.
    """

    def __init__(self, exporter: JsonExporterConfig, context: SinkContext) -> None:
        self._config = exporter
        self._source = context.stream
        self._extras = context.extras
        self._headers = {"Content-Type": CONTENT_TYPE, **dict(exporter.headers)}
        # One kept HTTP part for the endpoint and the pushes: both read the same stream.
        self._endpoint = JsonEndpoint(context.stream.collect, self._extras, context.http_version)
        self._worker: PeriodicWorker | None = None
        if exporter.url is not None or exporter.file_path is not None:
            interval = exporter.interval or context.config.collect_interval
            target = public_url(exporter.url) if exporter.url else exporter.file_path
            self._worker = PeriodicWorker(f"fluxstack-otel-json {target}", interval, self.push)

    def endpoints(self) -> dict[str, Endpoint]:
        if self._config.endpoint is None:
            return {}
        return {self._config.endpoint: self._endpoint}

    def start(self) -> None:
        if self._worker is not None:
            self._worker.start()

    def shutdown(self, timeout: float) -> None:
        if self._worker is not None:
            self._worker.stop(timeout)

    def push(self, tick: Tick) -> None:
        """One run: write the file and POST the document (each failure reported on its own)."""
        # The round's collection, shared
        source, shared = self._source, tick.round
        text = self._endpoint.text(
            partial(source.collect_in, shared), partial(source.made_at, shared)
        )
        body = (text + "\n").encode()
        path, url = self._config.file_path, self._config.url
        if path is not None:
            try:
                write_atomic(path, body)
            except OSError:
                report_failure(f"writing the JSON document to {path!r}")
        if url is not None:
            try:
                post_with_retries(url, body, self._headers, timeout=self._config.timeout, tick=tick)
            except PostError as exc:
                report_failure(f"posting the JSON document ({exc})", exc_info=False)
