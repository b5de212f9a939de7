"""Sinks of the metric stream, one module per kind; ``SINK_FACTORIES`` maps a type to its sink."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fluxstack_otel._sinks import Sink, SinkContext
from fluxstack_otel.exporters._prometheus import PrometheusSink

__all__ = ["SINK_FACTORIES"]

# exporter ``type`` -> factory(exporter config, context). Each factory takes its own config class.
SINK_FACTORIES: dict[str, Callable[[Any, SinkContext], Sink]] = {
    "prometheus": PrometheusSink,
}
