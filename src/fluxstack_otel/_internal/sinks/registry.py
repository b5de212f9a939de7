"""Sinks of the metric stream, one module per kind; ``sink_factory`` maps a type to its sink.

Each exporter module is imported when a configuration first uses its type, so an app pays the
import of only the exporters it runs (the OTLP and webhook ones pull in HTTP clients and TLS).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from fluxstack_otel._internal.sinks.base import Sink, SinkContext

__all__ = ["SINK_TYPES", "sink_factory"]

SinkFactory = Callable[[Any, SinkContext], Sink]

# exporter ``type`` -> (module, class). Each factory takes its own config class.
_FACTORIES: dict[str, tuple[str, str]] = {
    "console": ("fluxstack_otel._internal.sinks.console", "ConsoleSink"),
    "file": ("fluxstack_otel._internal.sinks.file", "FileSink"),
    "json": ("fluxstack_otel._internal.sinks.json_endpoint", "JsonSink"),
    "otlp": ("fluxstack_otel._internal.sinks.otlp", "OtlpSink"),
    "prometheus": ("fluxstack_otel._internal.sinks.prometheus.sink", "PrometheusSink"),
}

SINK_TYPES: tuple[str, ...] = tuple(sorted(_FACTORIES))
"""Every exporter ``type`` this version knows."""


def sink_factory(kind: str) -> SinkFactory | None:
    """The sink class for exporter type ``kind`` (its module imported now), or None if unknown."""
    where = _FACTORIES.get(kind)
    if where is None:
        return None
    factory: SinkFactory = getattr(importlib.import_module(where[0]), where[1])
    return factory
