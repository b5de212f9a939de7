"""Sinks of the metric stream, one module per kind; ``SINK_FACTORIES`` maps a type to its sink."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fluxstack_otel._sinks import Sink, SinkContext
from fluxstack_otel.exporters._console import ConsoleSink
from fluxstack_otel.exporters._file import FileSink
from fluxstack_otel.exporters._json import JsonSink
from fluxstack_otel.exporters._otlp import OtlpSink
from fluxstack_otel.exporters._prometheus import PrometheusSink

__all__ = ["SINK_FACTORIES"]

# exporter ``type`` -> factory(exporter config, context). Each factory takes its own config class.
SINK_FACTORIES: dict[str, Callable[[Any, SinkContext], Sink]] = {
    "console": ConsoleSink,
    "file": FileSink,
    "json": JsonSink,
    "otlp": OtlpSink,
    "prometheus": PrometheusSink,
}
