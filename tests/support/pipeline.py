"""A metric stream fed by a real HTTP recorder and a real SDK ``MeterProvider`` (custom metrics).

The sinks' tests build their sink on ``Pipeline.context()``; requests are recorded straight into
the recorder, as the middleware would, so no server is needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from fluxstack_otel._internal.config.model import MonitoringConfig
from fluxstack_otel._internal.http.recorder import HttpRecorder
from fluxstack_otel._internal.metrics.stream import MetricStream
from fluxstack_otel._internal.sinks.base import SinkContext


class Pipeline:
    """Recorder, SDK provider and stream as ``Monitoring`` wires them, for one test."""

    def __init__(self, instance_id: str = "i-1", service: str = "svc") -> None:
        self.recorder = HttpRecorder(duration_buckets=(0.1, 1.0), size_buckets=(100.0,))
        self.reader = InMemoryMetricReader()
        attributes = {"service.name": service, "service.instance.id": instance_id}
        self.resource = Resource.create(attributes)
        self.provider = MeterProvider(metric_readers=[self.reader], resource=self.resource)
        self.stream = MetricStream(
            [self.reader], self.recorder.to_metrics, self.resource, version=self.recorder.version
        )
        self.sent = 0
        """How many requests ``request``/``requests`` recorded."""

    def request(self, route: str = "/a", status: int = 200) -> None:
        """Record one GET of ``route`` (50 ms, 3 bytes in, 30 out)."""
        self.recorder.record("GET", route, status, None, 0.05, 3, 30, time.perf_counter())
        self.sent += 1

    def requests(self, n: int, route: str = "/a") -> None:
        """Record ``n`` GETs of ``route`` answered 200 (50 ms, 10 bytes out)."""
        for _ in range(n):
            self.recorder.record("GET", route, 200, None, 0.05, 0, 10, time.perf_counter())
        self.sent += n

    def context(self, extras: Callable[[], dict[str, Any]] = dict, **config: Any) -> SinkContext:
        """A sink context on this stream, with a ``MonitoringConfig(**config)``."""
        return SinkContext(config=MonitoringConfig(**config), stream=self.stream, extras=extras)

    def close(self) -> None:
        """Shut the SDK provider down."""
        self.provider.shutdown()
