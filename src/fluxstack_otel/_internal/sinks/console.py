"""The console exporter: a compact snapshot every interval, for development.

``format: "text"`` writes a header and one line per series::

    fluxstack-otel my-app 1f0c… 2025-01-02T03:04:05.678Z
      http_requests_total{method="GET",route="/items"} 42
      http_request_duration_seconds{method="GET",route="/items",status_code="200"} count=42 mean=0.0123 p50=0.00875 p95=0.0456 p99=0.0491

Values are cumulative since start. Histogram quantiles are interpolated within buckets exactly as
PromQL ``histogram_quantile`` does, or read from the exponential buckets where a histogram keeps
them (``histograms: exponential``). ``format: "json"`` writes the JSON document instead, compact on
one line, for log shippers. ``stream: "log"`` sends the snapshot as one INFO record of the
``fluxstack_otel`` logger; ``stream: "stdout"`` prints it.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.metrics.export import (
    ExponentialHistogram,
    Gauge,
    Histogram,
    HistogramDataPoint,
    MetricsData,
    Sum,
)

from fluxstack_otel._internal.metrics.dual import exponential_of
from fluxstack_otel._internal.metrics.exponential import quantile
from fluxstack_otel._internal.metrics.points import attribute_text, rfc3339_ns
from fluxstack_otel._internal.metrics.quantile import histogram_quantiles
from fluxstack_otel._internal.metrics.selection import HTTP_SCOPE_NAME
from fluxstack_otel._internal.sinks.document import HttpJson, document_text, safe_extras
from fluxstack_otel._internal.sinks.periodic import PeriodicSink, PeriodicWorker, Round, Tick
from fluxstack_otel._internal.sinks.reuse import KeptScope

if TYPE_CHECKING:
    from fluxstack_otel._internal.config.model import ConsoleExporterConfig
    from fluxstack_otel._internal.sinks.base import SinkContext

__all__ = ["ConsoleSink", "format_text"]

_log = logging.getLogger("fluxstack_otel")
_QUANTILES = ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))
_QS = tuple(q for q, _ in _QUANTILES)


class ConsoleSink(PeriodicSink):
    """A console exporter entry.

    Args:
        exporter: The entry's configuration.
        context: The monitoring's sink context.
    """

    def __init__(self, exporter: ConsoleExporterConfig, context: SinkContext) -> None:
        self._config = exporter
        self._source = context.stream
        self._extras = context.extras
        # The HTTP scope's lines (or JSON entries), kept while the recorder's version holds.
        self._kept_lines = KeptScope[tuple[str, ...]](context.http_version)
        self._kept_json = KeptScope[HttpJson](context.http_version)
        interval = exporter.interval or context.config.collect_interval
        self._worker = PeriodicWorker("fluxstack-otel-console", interval, self._run)

    def snapshot(self, shared: Round | None = None) -> str:
        """The snapshot as it would be written now (no trailing newline).

        Args:
            shared: The scheduler round this run belongs to: its collection is read (None: a
                collection of its own).
        """
        source = self._source
        collect = source.collect if shared is None else partial(source.collect_in, shared)
        made_at = None if shared is None else partial(source.made_at, shared)
        if self._config.format == "json":
            extras = safe_extras(self._extras)
            return self._kept_json.encode(
                collect,
                lambda data, http, keep: document_text(data, extras, http=http, keep=keep),
                made_at=made_at,
            )
        return self._kept_lines.encode(
            collect, lambda data, http, keep: format_text(data, http=http, keep=keep), None, made_at
        )

    def emit(self, shared: Round | None = None) -> None:
        """Write one snapshot to the configured stream (``shared``: as in ``snapshot``)."""
        text = self.snapshot(shared)
        if self._config.stream == "stdout":
            out = sys.stdout  # looked up each time: it may be replaced (capture, redirection)
            out.write(text + "\n")
            out.flush()
        else:
            _log.info("%s", text)

    def _run(self, tick: Tick) -> None:
        self.emit(tick.round)


def format_text(
    data: MetricsData,
    *,
    now_ns: int | None = None,
    http: tuple[str, ...] | None = None,
    keep: Callable[[tuple[str, ...]], None] | None = None,
) -> str:
    """The text snapshot: a header line, then one indented line per series.

    Args:
        data: The collection.
        now_ns: The header's time (default: now).
        http: The HTTP scope's lines of an earlier snapshot, in place of what ``data`` holds for
            that scope (``data`` was collected without it: ``sinks/reuse.py``).
        keep: Called with the HTTP scope's lines of this snapshot.
    """
    lines: list[str] = []
    service = instance = ""
    for rm in data.resource_metrics:
        attrs = rm.resource.attributes
        service = str(attrs.get("service.name", service))
        instance = str(attrs.get("service.instance.id", instance))
        if http is not None:  # the HTTP scope comes first in every collection (metrics/stream)
            lines.extend(http)
        for sm in rm.scope_metrics:
            is_http = sm.scope.name == HTTP_SCOPE_NAME
            if is_http and http is not None:
                continue
            mark = len(lines)
            for metric in sm.metrics:
                _format_metric(lines, metric.name, metric.data)
            if is_http and keep is not None:
                keep(tuple(lines[mark:]))
        http = None  # one resource per collection: spliced once
    stamp = rfc3339_ns(time.time_ns() if now_ns is None else now_ns)
    header = " ".join(part for part in ("fluxstack-otel", service, instance[:8], stamp) if part)
    return "\n".join([header, *lines])


def _format_metric(lines: list[str], name: str, data: Any) -> None:
    if isinstance(data, Sum | Gauge):
        for p in data.data_points:
            lines.append(f"  {name}{_labels(p.attributes)} {_num(p.value)}")
    elif isinstance(data, Histogram | ExponentialHistogram):
        for hp in data.data_points:
            head = f"  {name}{_labels(hp.attributes)} count={hp.count}"
            if not hp.count:
                lines.append(head)
                continue
            parts = [head, f"mean={_num(hp.sum / hp.count)}"]
            # Quantiles from the exponential buckets where the point has them (finer), else
            # interpolated in the classic buckets.
            snap = exponential_of(hp)
            if snap is not None:
                values = [quantile(snap, q) for q, _ in _QUANTILES]
            elif isinstance(hp, HistogramDataPoint):
                values = histogram_quantiles(_QS, hp.explicit_bounds, hp.bucket_counts)
            else:  # negative exponential buckets: no quantile read here
                values = [math.nan] * len(_QUANTILES)
            parts.extend(
                f"{label}={_num(v)}" for (_, label), v in zip(_QUANTILES, values, strict=True)
            )
            lines.append(" ".join(parts))


def _labels(attributes: Any) -> str:
    if not attributes:
        return ""
    inner = ",".join(f'{k}="{attribute_text(v)}"' for k, v in attributes.items())
    return f"{{{inner}}}"


def _num(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if value.is_integer() and abs(value) < 1e15:  # byte counts read better whole than 3.1871e+07
        return str(int(value))
    return f"{value:.6g}"
