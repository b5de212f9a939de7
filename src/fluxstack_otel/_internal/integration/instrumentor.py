"""The ``opentelemetry_instrumentor`` entry point: no app starts unmonitored beside another distro.

``opentelemetry-instrument`` runs one configurator but every instrumentor. When this package's
configurator ran, the instrumentor has nothing to do. When another one was chosen (it came first,
or ``OTEL_PYTHON_CONFIGURATOR`` names it), the instrumentor builds the monitoring as a guest of
that configurator (``distro.auto_configure(guest=...)``) and says so on stderr.
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=fluxstack_otel`` turns this off.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from importlib.metadata import entry_points
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from fluxstack_otel._internal.integration.autowrap import installed

__all__ = ["FluxstackInstrumentor"]


class FluxstackInstrumentor(BaseInstrumentor):  # type: ignore[misc]  # BaseInstrumentor is untyped
    """Monitors the process when a configurator other than this package's set OpenTelemetry up."""

    def instrumentation_dependencies(self) -> Collection[str]:
        """None: the package's own dependencies are what it needs."""
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        if installed() is not None:  # this package's configurator ran
            return
        from fluxstack_otel._internal.integration.distro import NAME, auto_configure

        named = os.environ.get("OTEL_PYTHON_CONFIGURATOR", "").strip()
        found = [ep.name for ep in entry_points(group="opentelemetry_configurator")]
        guest = named or (found[0] if found else "none")
        auto_configure(guest=guest if guest != NAME else "another", keep_global=_global_unset())

    def _uninstrument(self, **kwargs: Any) -> None:
        pass


def _global_unset() -> bool:
    """No one set the global MeterProvider: the guest may provide it as configured."""
    from opentelemetry import metrics

    return type(metrics.get_meter_provider()).__name__ == "_ProxyMeterProvider"
