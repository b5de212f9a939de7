"""The otlp exporter: the stream pushed to an OpenTelemetry collector with the official exporters.

The official ``OTLPMetricExporter`` (HTTP/protobuf or gRPC) encodes and sends our ``MetricsData``
directly; no second SDK pipeline aggregates the data again. Only the keys the configuration sets
are passed to it, so its own handling of ``OTEL_EXPORTER_OTLP_*`` applies to everything else.

Temporality. ``cumulative`` sends the stream as collected. ``delta`` reads through a
``DeltaView`` whose baseline advances only after a successful export: an export that fails is
not lost, its counts are part of the next delta (sent at least once; exactly once unless a
backend stored a payload and still reported a failure).

Export timeout. ``OTEL_METRIC_EXPORT_TIMEOUT`` (milliseconds), as the SDK's periodic reader reads
it, bounds each export besides the interval and the entry's ``timeout``: the smaller applies (a
bound below the entry's timeout is also given to the official exporter, which reads no other).

Failures. Each run collects afresh, so nothing queues while a backend is down; the failure is
reported (rate-limited) and the next interval tries again. The official exporters log their own
errors too; records they log from this package's export threads are rate-limited the same way.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from opentelemetry.sdk.metrics.export import Metric, MetricExportResult, MetricsData

from fluxstack_otel._internal.config.model import OtlpExporterConfig
from fluxstack_otel._internal.metrics.catalog import SYSTEM_SCOPE
from fluxstack_otel._internal.metrics.stream import DeltaView
from fluxstack_otel._internal.metrics.views import HTTP_SCOPE_NAME
from fluxstack_otel._internal.redact import LOG_FILTER, mask_in_logs, redact_record
from fluxstack_otel._internal.runtime.failures import report_failure
from fluxstack_otel._internal.sinks.periodic import PeriodicSink, PeriodicWorker, Round, Tick
from fluxstack_otel._internal.transport.post import public_url
from fluxstack_otel.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    from fluxstack_otel._internal.sinks.base import SinkContext

__all__ = ["OtlpSink", "export_timeout", "signal_url", "strip_empty", "with_environment"]

_THREAD_PREFIX = "fluxstack-otel-"
_EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
)
# Where the official exporters find an endpoint the entry does not set.
_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
_DEFAULTS = OtlpExporterConfig()
_DEFAULT_TIMEOUT = _DEFAULTS.timeout


class _MetricExporter(Protocol):
    def export(self, metrics_data: MetricsData, timeout_millis: float = ...) -> MetricExportResult:
        pass

    def shutdown(self, timeout_millis: float = ...) -> None:
        pass


class OtlpSink(PeriodicSink):
    """An otlp exporter entry.

    Args:
        exporter: The entry's configuration.
        context: The monitoring's sink context.

    Raises:
        MissingDependencyError: The ``otlp`` extra is not installed.
    """

    def __init__(self, exporter: OtlpExporterConfig, context: SinkContext) -> None:
        exporter = with_environment(exporter)
        self._config = exporter
        self._export_timeout = export_timeout()
        self._exporter = _build_exporter(exporter, self._export_timeout)
        self._source = context.stream
        self._delta: DeltaView | None = None
        if exporter.temporality == "delta":
            self._delta = DeltaView(context.stream)
        elif exporter.temporality == "lowmemory":
            self._delta = DeltaView(context.stream, LowMemory(context.asynchronous))
        self._target = (
            public_url(exporter.endpoint)
            if exporter.endpoint
            else f"the default {exporter.protocol} endpoint"
        )
        interval = exporter.interval or context.config.collect_interval
        self._worker = PeriodicWorker(f"{_THREAD_PREFIX}otlp {self._target}", interval, self._run)
        _rate_limit_exporter_logs()
        mask_in_logs(exporter.endpoint, *(os.environ.get(v) for v in _ENDPOINT_VARIABLES))

    def shutdown(self, timeout: float) -> None:
        super().shutdown(timeout)
        try:
            # Closes the connection, which also ends an export a stuck thread is still waiting on.
            self._exporter.shutdown(timeout_millis=max(0.0, timeout) * 1000)
        except Exception:
            report_failure(f"closing the OTLP exporter to {self._target}")

    def export(self, timeout: float | None = None, shared: Round | None = None) -> bool:
        """Collect and export once.

        Args:
            timeout: Seconds the export may take (None: the exporter's own timeout).
            shared: The scheduler round of this run: its collection is read (None: a
                collection of its own).

        Returns:
            True on success; a failure is reported, not raised.
        """
        commit: Callable[[], None] | None = None
        if self._delta is not None:
            data, commit = self._delta.peek(shared)
        else:
            data = self._source.collect() if shared is None else self._source.collect_in(shared)
        data = strip_empty(data)
        if data.resource_metrics:
            seconds = self._config.timeout if timeout is None else timeout
            if self._export_timeout is not None:
                seconds = min(seconds, self._export_timeout)
            millis = seconds * 1000
            try:
                result = self._exporter.export(data, timeout_millis=millis)
            except Exception:
                report_failure(f"exporting OTLP to {self._target}")
                return False
            if result is not MetricExportResult.SUCCESS:
                report_failure(f"exporting OTLP to {self._target}", exc_info=False)
                return False
        if commit is not None:
            commit()
        return True

    def _run(self, tick: Tick) -> None:
        self.export(tick.remaining(), tick.round)


class LowMemory:
    """``lowmemory`` temporality: deltas for synchronous counters and histograms only.

    The HTTP metrics are synchronous (a Counter and a Histogram per request); the process CPU
    time is observed (an ObservableCounter) and stays cumulative, as do the asynchronous custom
    and third-party counters. Up-down counters and gauges stay as they are in every temporality.

    Args:
        asynchronous: The asynchronous SDK instruments, as (scope, name); asked again when a
            metric not seen before shows up.
    """

    def __init__(self, asynchronous: Callable[[], frozenset[tuple[str, str]]]) -> None:
        self._asynchronous = asynchronous
        self._delta: dict[tuple[str, str], bool] = {}

    def __call__(self, scope: str, metric: Metric) -> bool:
        if scope == HTTP_SCOPE_NAME:
            return True
        if scope == SYSTEM_SCOPE:
            return False
        key = (scope, metric.name)
        delta = self._delta.get(key)
        if delta is None:
            delta = self._delta[key] = key not in self._asynchronous()
        return delta


def with_environment(config: OtlpExporterConfig) -> OtlpExporterConfig:
    """Apply the standard variables the official exporters do not read themselves.

    ``OTEL_EXPORTER_OTLP_[METRICS_]PROTOCOL`` (``grpc`` or ``http/protobuf``) and
    ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`` (``delta`` or ``lowmemory``)
    apply where the entry keeps the default. Endpoint, headers, timeout, compression and TLS
    variables are read by the official exporters.
    """
    changes: dict[str, str] = {}
    if config.protocol == _DEFAULTS.protocol:
        protocol = _env("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
        if protocol == "grpc":
            changes["protocol"] = "grpc"
    if config.temporality == _DEFAULTS.temporality:
        preference = _env("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE")
        if preference in ("delta", "lowmemory"):
            changes["temporality"] = preference
    return replace(config, **changes) if changes else config  # type: ignore[arg-type]


def export_timeout() -> float | None:
    """``OTEL_METRIC_EXPORT_TIMEOUT`` in seconds, or None when unset or empty.

    Raises:
        ConfigError: The value is not a whole number of milliseconds, 0 or more.
    """
    name = "OTEL_METRIC_EXPORT_TIMEOUT"
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        millis = int(text)
    except ValueError:
        millis = -1
    if millis < 0:
        raise ConfigError(f"expected whole milliseconds, 0 or more, got {text!r}", path=name)
    return millis / 1000


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name, "").strip().lower()
        if value:
            return value
    return None


def strip_empty(data: MetricsData) -> MetricsData:
    """Drop metrics without data points, then scopes and resources left empty.

    A metric without points is legal in OTLP but collectors warn about it, and the six HTTP
    metrics have none before the first request.
    """
    resource_metrics = []
    for rm in data.resource_metrics:
        scopes = []
        for sm in rm.scope_metrics:
            metrics = [m for m in sm.metrics if getattr(m.data, "data_points", None)]
            if metrics:
                scopes.append(replace(sm, metrics=metrics))
        if scopes:
            resource_metrics.append(replace(rm, scope_metrics=scopes))
    return MetricsData(resource_metrics=resource_metrics)


def _build_exporter(config: OtlpExporterConfig, bound: float | None = None) -> _MetricExporter:
    kwargs: dict[str, Any] = {}
    if config.timeout != _DEFAULT_TIMEOUT:
        # The default equals the official one; leaving it out lets OTEL_EXPORTER_OTLP_TIMEOUT apply.
        kwargs["timeout"] = config.timeout
    if bound is not None and bound < config.timeout:
        # The official exporters bound a request by their own timeout only (export's
        # timeout_millis is not read), so the export timeout is handed to them.
        kwargs["timeout"] = bound
    if config.protocol == "grpc":
        try:
            from grpc import Compression as GrpcCompression  # type: ignore[import-untyped]
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter as GrpcExporter,
            )
        except ImportError:
            raise MissingDependencyError("the otlp exporter", "otlp") from None
        if config.endpoint is not None:
            kwargs["endpoint"] = config.endpoint
        if config.headers:
            # gRPC metadata keys must be lowercase.
            kwargs["headers"] = tuple((k.lower(), v) for k, v in config.headers)
        if config.compression is not None:
            kwargs["compression"] = (
                GrpcCompression.Gzip
                if config.compression == "gzip"
                else GrpcCompression.NoCompression
            )
        exporter: _MetricExporter = GrpcExporter(**kwargs)
        return exporter
    try:
        from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpExporter,
        )
    except ImportError:
        raise MissingDependencyError("the otlp exporter", "otlp") from None
    if config.endpoint is not None:
        kwargs["endpoint"] = signal_url(config.endpoint)
    if config.headers:
        kwargs["headers"] = dict(config.headers)
    if config.compression is not None:
        kwargs["compression"] = (
            HttpCompression.Gzip if config.compression == "gzip" else HttpCompression.NoCompression
        )
    return HttpExporter(**kwargs)


def signal_url(endpoint: str) -> str:
    """The OTLP/HTTP metrics URL: a bare collector address gets ``/v1/metrics``, as
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` does; a URL with a path is used as given."""
    parts = urlsplit(endpoint)
    if parts.path in ("", "/"):
        return urlunsplit(parts._replace(path="/v1/metrics"))
    return endpoint


class _OwnThreadsRateLimit(logging.Filter):
    """Lets through each message template of the official exporters once a minute, when it is
    logged from one of this package's threads, masked (``redact_record``: the gRPC exporter logs
    its target as ``user:password@host:port``); records from other threads pass untouched."""

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self._interval = interval
        self._last: dict[tuple[str, object], float] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not (record.threadName or "").startswith(_THREAD_PREFIX):
            return True
        key = (record.name, record.msg)
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                return False
            if len(self._last) < 1000:
                self._last[key] = now
        redact_record(record, LOG_FILTER.secrets)
        return True


_filter = _OwnThreadsRateLimit()


def _rate_limit_exporter_logs() -> None:
    for name in _EXPORTER_LOGGERS:
        logger = logging.getLogger(name)
        if _filter not in logger.filters:
            logger.addFilter(_filter)
