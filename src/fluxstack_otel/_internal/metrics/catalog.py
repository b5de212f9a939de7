"""The built-in metrics: the one place their names, kinds, units and help texts live.

Nothing else in the package spells a built-in metric name as a string literal; code refers to the
``MetricSpec`` constants below (``HTTP_REQUESTS.name``) or iterates ``BUILTIN_METRICS``.
The names are the FluxStack plugin's exact Prometheus names, so its dashboards keep working; the
thirteenth, ``system_cpu_cores``, is this package's own (the plugin has no CPU count), so that CPU
thresholds divide by the real host's CPUs in PromQL as they do in-process.

Naming profiles (``naming`` in the configuration) say how the built-ins are presented to exporters:
``FLUXSTACK`` (those exact names and labels) or ``SEMCONV`` (OpenTelemetry semantic-convention
names, units and attribute keys). Inside the package every metric keeps its FluxStack identity;
the profile's views are applied once per collection, on the way out (``views.py``), never per
request.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

__all__ = [
    "ALERT_ALIASES",
    "BUILTIN_METRICS",
    "DEFAULT_DURATION_BUCKETS",
    "DEFAULT_SIZE_BUCKETS",
    "EVENT_LOOP_LAG",
    "FLUXSTACK",
    "HTTP_ERRORS",
    "HTTP_IN_PROGRESS",
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
    "OPTIONAL_METRICS",
    "OVERFLOW",
    "PROCESS_CPU_USER",
    "PROCESS_HEAP_USED",
    "PROCESS_RSS",
    "PROFILES",
    "SEMCONV",
    "SYSTEM_CPU_CORES",
    "SYSTEM_LOAD_1M",
    "SYSTEM_MEMORY_TOTAL",
    "SYSTEM_METRICS",
    "SYSTEM_SCOPE",
    "UNMATCHED_ROUTE",
    "AlertAlias",
    "Kind",
    "MetricSpec",
    "Naming",
    "Profile",
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
OVERFLOW = "<overflow>"
"""The label value of the one series per metric that absorbs label sets beyond the cap."""

# A 1-2.5-5 series from 250 µs to 10 s (15 bounds): fast APIs answer in well under a millisecond,
# and with a lowest bound of 5 ms their p50 read 2.7 ms for a true 0.5 ms. Each bucket spans at
# most a factor of 2.5, so an interpolated quantile is off by less than that anywhere in the range.
# It keeps every bound of the FluxStack plugin (0.1, 0.5, 1, 2.5, 5, 10), so a query on one of its
# le values still finds that bucket.
DEFAULT_DURATION_BUCKETS: tuple[float, ...] = (
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
# The FluxStack plugin's size buckets, extended downwards for small JSON bodies.
DEFAULT_SIZE_BUCKETS: tuple[float, ...] = (
    10.0, 100.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0, 10_000_000.0,
)  # fmt: skip


class MetricSpec(NamedTuple):
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

HTTP_IN_PROGRESS = MetricSpec(
    "http_requests_in_progress",
    Kind.GAUGE,
    "1",
    "HTTP requests being served now (in_progress: true); a request counts under its route once "
    "the router has matched it.",
    _HTTP_LABELS,
)
"""Opt-in (``in_progress: true``), so not one of the twelve ``BUILTIN_METRICS``."""

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

SYSTEM_CPU_CORES = MetricSpec(
    "system_cpu_cores",
    Kind.GAUGE,
    "{cpu}",
    "CPUs the process may use: its CPU affinity, capped by a cgroup CPU quota where one is set.",
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
    SYSTEM_CPU_CORES,
)
BUILTIN_METRICS: tuple[MetricSpec, ...] = HTTP_METRICS + SYSTEM_METRICS
OPTIONAL_METRICS: tuple[MetricSpec, ...] = (HTTP_IN_PROGRESS,)
"""Built-in metrics that exist only when configured."""
METRICS_BY_NAME: dict[str, MetricSpec] = {m.name: m for m in BUILTIN_METRICS + OPTIONAL_METRICS}


class AlertAlias(NamedTuple):
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


# The instrumentation scope of the system metrics (the HTTP metrics have "fluxstack_otel.http").
SYSTEM_SCOPE = "fluxstack_otel.system"


class Naming(NamedTuple):
    """How one built-in metric is presented in a naming profile.

    Attributes:
        name: The OpenTelemetry metric name (Prometheus derives its name from it and the unit).
        unit: The UCUM unit.
        attributes: Constant attributes every point carries (``process.cpu.time`` is the user
            mode only, so it says ``cpu.mode="user"``).
        convention: False where the semantic conventions define nothing for this figure and the
            name is ours, in their style.
    """

    name: str
    unit: str
    attributes: tuple[tuple[str, str], ...] = ()
    convention: bool = True


class Profile(NamedTuple):
    """A naming profile: a presentation of every built-in metric and label.

    Attributes:
        name: The ``naming`` configuration value.
        metrics: Built-in metric name -> its presentation.
        labels: Built-in label key -> the attribute key presented.
        integer_status: Present the status code as an integer attribute (OpenTelemetry's type
            for ``http.response.status_code``) rather than a string.
    """

    name: str
    metrics: dict[str, Naming]
    labels: dict[str, str]
    integer_status: bool = False

    def naming(self, spec: MetricSpec) -> Naming:
        """The presentation of a built-in metric."""
        return self.metrics[spec.name]

    @property
    def identity(self) -> bool:
        """True when the profile presents every metric as it is recorded (nothing to rewrite)."""
        return (
            all(n.name == name and not n.attributes for name, n in self.metrics.items())
            and all(k == v for k, v in self.labels.items())
            and not self.integer_status
        )


_LABELS = (LABEL_METHOD, LABEL_ROUTE, LABEL_STATUS_CODE, LABEL_ERROR_TYPE)

FLUXSTACK = Profile(
    "fluxstack",
    {m.name: Naming(m.name, m.unit) for m in BUILTIN_METRICS + OPTIONAL_METRICS},
    {key: key for key in _LABELS},
)

# OpenTelemetry semantic conventions (HTTP: stable; process and system: development). Units follow
# UCUM; annotations in braces are dropped from Prometheus names. docs/naming.md has the table and
# the reasons behind the four names the conventions do not define.
SEMCONV = Profile(
    "semconv",
    {
        HTTP_REQUESTS.name: Naming("http.server.request.count", "{request}", convention=False),
        HTTP_RESPONSES.name: Naming("http.server.response.count", "{response}", convention=False),
        HTTP_ERRORS.name: Naming("http.server.error.count", "{error}", convention=False),
        HTTP_REQUEST_DURATION.name: Naming("http.server.request.duration", "s"),
        HTTP_REQUEST_SIZE.name: Naming("http.server.request.body.size", "By"),
        HTTP_RESPONSE_SIZE.name: Naming("http.server.response.body.size", "By"),
        HTTP_IN_PROGRESS.name: Naming("http.server.active_requests", "{request}"),
        PROCESS_RSS.name: Naming("process.memory.usage", "By"),
        PROCESS_HEAP_USED.name: Naming("process.memory.heap.usage", "By", convention=False),
        PROCESS_CPU_USER.name: Naming("process.cpu.time", "s", (("cpu.mode", "user"),)),
        EVENT_LOOP_LAG.name: Naming("asyncio.eventloop.delay.max", "s", convention=False),
        SYSTEM_MEMORY_TOTAL.name: Naming("system.memory.limit", "By"),
        SYSTEM_LOAD_1M.name: Naming("system.cpu.load_average.1m", "{thread}", convention=False),
        SYSTEM_CPU_CORES.name: Naming("system.cpu.available", "{cpu}", convention=False),
    },
    {
        LABEL_METHOD: "http.request.method",
        LABEL_ROUTE: "http.route",
        LABEL_STATUS_CODE: "http.response.status_code",
        LABEL_ERROR_TYPE: "error.type",
    },
    integer_status=True,
)

PROFILES: dict[str, Profile] = {p.name: p for p in (FLUXSTACK, SEMCONV)}
"""The naming profiles by their configuration value."""
