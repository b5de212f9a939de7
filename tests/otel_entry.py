"""An exporter that an ``otel`` exporter entry names as ``otel_entry:RecordingExporter``."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData


class RecordingExporter(MetricExporter):
    """Keeps what it is given to export, per instance label."""

    exports: ClassVar[dict[str, list[MetricsData]]] = {}
    lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, label: str, token: str = "") -> None:
        super().__init__()
        self.label = label
        with self.lock:
            self.exports[label] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        with self.lock:
            self.exports[self.label].append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass
