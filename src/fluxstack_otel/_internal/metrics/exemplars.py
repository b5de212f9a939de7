"""``OTEL_METRICS_EXEMPLAR_FILTER``: which measurements may carry an exemplar, read once.

The SDK's ``MeterProvider`` reads the variable itself and raises ``ValueError`` for any value
but its three names, the empty value included, which ended start-up. Here the value is checked
first (empty means unset, as the specification says of every variable), and the same filter
applies to the SDK instruments and to the HTTP duration exemplars taken from server spans
(``http/tracing.py``):

- ``trace_based`` (the default): measurements inside a sampled span;
- ``always_on``: any measurement with a valid span context, sampled or not;
- ``always_off``: none.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
    ExemplarFilter,
    TraceBasedExemplarFilter,
)

from fluxstack_otel.errors import ConfigError

__all__ = ["VARIABLE", "exemplar_filter", "sdk_exemplar_filter"]

VARIABLE = "OTEL_METRICS_EXEMPLAR_FILTER"
FilterName = Literal["trace_based", "always_on", "always_off"]
_NAMES: tuple[FilterName, ...] = ("trace_based", "always_on", "always_off")


def exemplar_filter(environ: Mapping[str, str] | None = None) -> FilterName:
    """The filter the environment names.

    Args:
        environ: The environment; None reads ``os.environ``.

    Returns:
        ``trace_based`` when the variable is unset or empty, else its value.

    Raises:
        ConfigError: The value is not one of the three names.
    """
    text = (os.environ if environ is None else environ).get(VARIABLE, "").strip().lower()
    if not text:
        return "trace_based"
    for name in _NAMES:
        if text == name:
            return name
    raise ConfigError(f"expected one of {', '.join(_NAMES)}, got {text!r}", path=VARIABLE)


def sdk_exemplar_filter(environ: Mapping[str, str] | None = None) -> ExemplarFilter:
    """The SDK ``ExemplarFilter`` for the environment (see ``exemplar_filter``)."""
    name = exemplar_filter(environ)
    if name == "always_on":
        return AlwaysOnExemplarFilter()
    if name == "always_off":
        return AlwaysOffExemplarFilter()
    return TraceBasedExemplarFilter()
