"""The file exporter: Prometheus text or the JSON document, rewritten atomically every interval.

``format: "prometheus"`` writes the same text 0.0.4 bytes ``/metrics`` serves, so pointing
``file_path`` at node_exporter's textfile directory (a name ending in ``.prom``) publishes the
app's metrics through node_exporter. ``format: "json"`` writes the JSON document. The file is
written again at shutdown.

Failures (a read-only directory, a full disk) are reported rate-limited and the write is tried
again next interval; nothing is raised into the app. With ``history: true`` every write also
leaves a timestamped snapshot next to the file, and snapshots older than ``retention_period``
are deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from fluxstack_otel._internal.runtime.failures import report_failure
from fluxstack_otel._internal.sinks.document import HttpJson, document_text, safe_extras
from fluxstack_otel._internal.sinks.periodic import PeriodicSink, PeriodicWorker, Round, Tick
from fluxstack_otel._internal.sinks.prometheus.reuse import Exposition
from fluxstack_otel._internal.sinks.prometheus.sink import prometheus_options
from fluxstack_otel._internal.sinks.reuse import KeptScope
from fluxstack_otel._internal.transport.atomic import history_path, prune_history, write_atomic

if TYPE_CHECKING:
    from fluxstack_otel._internal.config.model import FileExporterConfig
    from fluxstack_otel._internal.sinks.base import SinkContext

__all__ = ["FileSink"]


class FileSink(PeriodicSink):
    """A file exporter entry.

    Args:
        exporter: The entry's configuration.
        context: The monitoring's sink context.
        wall_clock_ns: Wall clock for snapshot names and retention, injectable for tests.
    """

    def __init__(
        self,
        exporter: FileExporterConfig,
        context: SinkContext,
        *,
        wall_clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._config = exporter
        self._source = context.stream
        self._extras = context.extras
        # The HTTP scope's text (or JSON entries), kept while the recorder's version holds.
        self._exposition = Exposition(
            self._source.collect,
            context.http_version,
            prometheus_options(context.config),
            context.http_series,
        )
        self._kept_json = KeptScope[HttpJson](context.http_version)
        self._retention_ns = int(context.config.retention_period * 1e9)
        self._now_ns = wall_clock_ns
        interval = exporter.interval or context.config.collect_interval
        self._worker = PeriodicWorker(
            f"fluxstack-otel-file {exporter.file_path}", interval, self._run
        )

    def render(self, shared: Round | None = None) -> bytes:
        """The file's content as it would be written now (from the round ``shared``'s collection)."""
        source = self._source
        collect = source.collect if shared is None else partial(source.collect_in, shared)
        made_at = None if shared is None else partial(source.made_at, shared)
        if self._config.format == "json":
            extras = safe_extras(self._extras)
            text = self._kept_json.encode(
                collect,
                lambda data, http, keep: document_text(data, extras, http=http, keep=keep),
                made_at=made_at,
            )
            return (text + "\n").encode()
        return self._exposition.render(False, collect, made_at)

    def write(self, shared: Round | None = None) -> bool:
        """Write the file (and a snapshot, with history) now (``shared``: as in ``render``).

        Returns:
            True when the file was written; a failure is reported, not raised.
        """
        path = self._config.file_path
        try:
            body = self.render(shared)
            write_atomic(path, body)
        except OSError:
            report_failure(f"writing the file exporter's {path!r}")
            return False
        if self._config.history:
            now = self._now_ns()
            try:
                write_atomic(history_path(path, now), body)
                prune_history(path, now - self._retention_ns)
            except OSError:
                report_failure(f"keeping the history of {path!r}")
        return True

    def _run(self, tick: Tick) -> None:
        self.write(tick.round)
