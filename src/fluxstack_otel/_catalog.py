"""The twelve built-in metrics: the one place their names, kinds, units and help texts live.

Nothing else in the package spells a built-in metric name as a string literal; code refers to the
``MetricSpec`` constants below (``HTTP_REQUESTS.name``) or iterates ``BUILTIN_METRICS``.
The names are the FluxStack plugin's exact Prometheus names, so its dashboards keep working.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ALERT_ALIASES",
    "BUILTIN_METRICS",
    "DEFAULT_DURATION_BUCKETS",
    "DEFAULT_SIZE_BUCKETS",
    "EVENT_LOOP_LAG",
    "HTTP_ERRORS",
    "HTTP_METRICS",
    "HTTP_REQUESTS",
    "HTTP_REQUEST_DURATION",
    "HTTP_REQUEST_SIZE",
    "HTTP_RESPONSES",
    "HTTP_RESPONSE_SIZE",
    "LABEL_ERROR_TYPE",
    "LABEL_METHOD",
    "LABEL_ROUTE",
    "LABEL_STATUS_CODE",
    "METRICS_BY_NAME",
    "PROCESS_CPU_USER",
    "PROCESS_HEAP_USED",
    "PROCESS_RSS",
    "SYSTEM_LOAD_1M",
    "SYSTEM_MEMORY_TOTAL",
    "SYSTEM_METRICS",
    "UNMATCHED_ROUTE",
    "AlertAlias",
    "Kind",
    "MetricSpec",
]


class Kind(StrEnum):
    """How a metric aggregates, in Prometheus terms."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


LABEL_METHOD = "method"
LABEL_ROUTE = "route"
LABEL_STATUS_CODE = "status_code"
LABEL_ERROR_TYPE = "error_type"

# The route label of a request that matched no route: one fixed value, never the raw path.
UNMATCHED_ROUTE = "<unmatched>"

# Prometheus client defaults: a superset of the FluxStack plugin's (0.1, 0.5, 1, 2.5, 5, 10),
# fine enough below 100 ms that p95 of a fast API means something.
DEFAULT_DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
# The FluxStack plugin's size buckets, extended downwards for small JSON bodies.
DEFAULT_SIZE_BUCKETS: tuple[float, ...] = (
    10.0, 100.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0, 10_000_000.0,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One built-in metric.

    Attributes:
        name: The exact Prometheus name (also the OpenTelemetry instrument name).
        kind: Counter, gauge or histogram.
        unit: UCUM unit for OpenTelemetry (``s``, ``By``, ``1``).
        help: The HELP text.
        labels: Label keys in exposition order (``status_code`` and ``error_type`` appear only on
            series where they exist).
    """

    name: str
    kind: Kind
    unit: str
    help: str
    labels: tuple[str, ...] = ()


_HTTP_LABELS = (LABEL_METHOD, LABEL_ROUTE)

HTTP_REQUESTS = MetricSpec(
    "http_requests_total",
    Kind.COUNTER,
    "1",
    "Total number of HTTP requests received, including those that ended without a response.",
    _HTTP_LABELS,
)
HTTP_RESPONSES = MetricSpec(
    "http_responses_total",
    Kind.COUNTER,
    "1",
    "Total number of HTTP responses sent.",
    (*_HTTP_LABELS, LABEL_STATUS_CODE),
)
HTTP_ERRORS = MetricSpec(
    "http_errors_total",
    Kind.COUNTER,
    "1",
    "Total number of HTTP errors: unhandled exceptions and responses at or above the error status.",
    (*_HTTP_LABELS, LABEL_STATUS_CODE, LABEL_ERROR_TYPE),
)
HTTP_REQUEST_DURATION = MetricSpec(
    "http_request_duration_seconds",
    Kind.HISTOGRAM,
    "s",
    "HTTP request duration in seconds, from request start to the last response body byte sent.",
    (*_HTTP_LABELS, LABEL_STATUS_CODE),
)
HTTP_REQUEST_SIZE = MetricSpec(
    "http_request_size_bytes",
    Kind.HISTOGRAM,
    "By",
    "HTTP request body size in bytes, counted as received.",
    _HTTP_LABELS,
)
HTTP_RESPONSE_SIZE = MetricSpec(
    "http_response_size_bytes",
    Kind.HISTOGRAM,
    "By",
    "HTTP response body size in bytes, counted as sent.",
    (*_HTTP_LABELS, LABEL_STATUS_CODE),
)

PROCESS_RSS = MetricSpec(
    "process_memory_rss_bytes", Kind.GAUGE, "By", "Process resident set size in bytes."
)
PROCESS_HEAP_USED = MetricSpec(
    "process_memory_heap_used_bytes",
    Kind.GAUGE,
    "By",
    "Process heap used in bytes: resident anonymous memory (malloc heap, Python object arenas).",
)
PROCESS_CPU_USER = MetricSpec(
    "process_cpu_user_seconds_total",
    Kind.COUNTER,
    "s",
    "Process CPU time spent in user mode, in seconds.",
)
EVENT_LOOP_LAG = MetricSpec(
    "nodejs_eventloop_lag_seconds",
    Kind.GAUGE,
    "s",
    "asyncio event loop lag in seconds: the worst delay of a probe timer over the last interval.",
)
SYSTEM_MEMORY_TOTAL = MetricSpec(
    "system_memory_total_bytes", Kind.GAUGE, "By", "Total physical memory of the host in bytes."
)
SYSTEM_LOAD_1M = MetricSpec(
    "system_load_average_1m", Kind.GAUGE, "1", "System load average over 1 minute."
)

HTTP_METRICS: tuple[MetricSpec, ...] = (
    HTTP_REQUESTS,
    HTTP_RESPONSES,
    HTTP_ERRORS,
    HTTP_REQUEST_DURATION,
    HTTP_REQUEST_SIZE,
    HTTP_RESPONSE_SIZE,
)
SYSTEM_METRICS: tuple[MetricSpec, ...] = (
    PROCESS_RSS,
    PROCESS_HEAP_USED,
    PROCESS_CPU_USER,
    EVENT_LOOP_LAG,
    SYSTEM_MEMORY_TOTAL,
    SYSTEM_LOAD_1M,
)
BUILTIN_METRICS: tuple[MetricSpec, ...] = HTTP_METRICS + SYSTEM_METRICS
METRICS_BY_NAME: dict[str, MetricSpec] = {m.name: m for m in BUILTIN_METRICS}


@dataclass(frozen=True, slots=True)
class AlertAlias:
    """A FluxStack alert metric name that maps onto a built-in metric with a unit scale.

    Attributes:
        target: The built-in metric the alias reads.
        scale: Multiply the target's value by this to get the alias's unit (ms = s * 1000).
    """

    target: MetricSpec
    scale: float


# The FluxStack plugin recorded request durations in milliseconds under this name.
ALERT_ALIASES: dict[str, AlertAlias] = {
    "http_request_duration_ms": AlertAlias(HTTP_REQUEST_DURATION, 1000.0),
}
