"""Server spans alongside metrics (``tracing: true``): OpenTelemetry's own ASGI middleware.

The monitoring middleware wraps the app in ``opentelemetry-instrumentation-asgi``'s
``OpenTelemetryMiddleware`` (inside it, so ``/metrics`` and the other monitoring endpoints are not
traced) with its metrics switched off: the HTTP metrics are this package's, nothing is counted
twice. One server span per request (the middleware's per-message send/receive spans are off).
Spans go to the ``TracerProvider`` given to ``instrument()`` or, by default, the global one.

Exemplars: the middleware's request hook notes the server span's context in the ASGI scope when
the span is recording and sampled (``OTEL_METRICS_EXEMPLAR_FILTER``, read once per app:
``always_on`` notes any valid context, ``always_off`` installs no hook); after the request, the monitoring middleware hands its trace
and span ids to the recorder, which keeps the latest one per duration bucket. With tracing off
none of this runs: the request path pays one attribute read.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.trace import Span, SpanContext, TracerProvider

from fluxstack_otel._internal.runtime.failures import report_failure
from fluxstack_otel.errors import MissingDependencyError

if TYPE_CHECKING:
    from fluxstack_otel._internal.asgi_types import ASGIApp

__all__ = ["SPAN_CONTEXT", "require_instrumentation", "span_context", "traced"]

SPAN_CONTEXT = "fluxstack_otel.span_context"
"""The ASGI scope key under which the request hook leaves the sampled server span's context."""


def require_instrumentation() -> None:
    """Check that ``opentelemetry-instrumentation-asgi`` is importable.

    Raises:
        MissingDependencyError: With the ``pip install 'fluxstack-otel[tracing]'`` line.
    """
    try:
        import opentelemetry.instrumentation.asgi  # noqa: F401
    except ImportError:
        raise MissingDependencyError("tracing: true", "tracing") from None


def traced(app: ASGIApp, tracer_provider: TracerProvider | None = None) -> ASGIApp:
    """``app`` wrapped in OpenTelemetry's ASGI middleware: server spans, its metrics off.

    Args:
        app: The ASGI app.
        tracer_provider: Where spans go; ``None`` means the global ``TracerProvider``.
    """
    require_instrumentation()
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    from fluxstack_otel._internal.metrics.exemplars import exemplar_filter

    hooks = {"trace_based": _note_span, "always_on": _note_any_span, "always_off": None}
    wrapped: ASGIApp = OpenTelemetryMiddleware(
        app,
        tracer_provider=tracer_provider,
        meter_provider=NoOpMeterProvider(),
        server_request_hook=hooks[exemplar_filter()],
        # One server span per request: the per-message "http send"/"http receive" spans would
        # double the cost of tracing and carry nothing the server span lacks.
        exclude_spans=["receive", "send"],
    )
    return wrapped


def _note_span(span: Span, scope: MutableMapping[str, Any]) -> None:
    # Runs inside the OpenTelemetry middleware, which does not guard its hooks.
    try:
        if span.is_recording():
            context = span.get_span_context()
            if context.trace_flags.sampled:
                scope[SPAN_CONTEXT] = context
    except Exception:
        report_failure("noting the request span for exemplars")


def _note_any_span(span: Span, scope: MutableMapping[str, Any]) -> None:
    try:
        context = span.get_span_context()
        if context.is_valid:
            scope[SPAN_CONTEXT] = context
    except Exception:
        report_failure("noting the request span for exemplars")


def span_context(scope: MutableMapping[str, Any]) -> SpanContext | None:
    """The sampled server span context the hook left in ``scope``, if any."""
    context = scope.get(SPAN_CONTEXT)
    return context if isinstance(context, SpanContext) else None
