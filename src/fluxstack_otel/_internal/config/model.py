"""The configuration: a typed, frozen model and the one parser that builds it.

``load_config`` accepts ``None`` (defaults), a ``MonitoringConfig`` (returned as is), a mapping, or
the path of a ``.toml`` or ``.json`` file (a TOML file may hold the configuration at its top level
or under ``[tool.fluxstack.monitoring]``, as in ``pyproject.toml``). Every bad value raises
``ConfigError`` naming the key path, quoting the value received and saying what is allowed.

Key styles and units. The native style is snake_case with bare durations in seconds; the
FluxStack plugin's object is accepted as-is, camelCase with bare durations in milliseconds, and
every duration also takes a unit string (``"30s"``). ``style`` holds the rule that tells the
style, refuses the ambiguous cases and finds a configuration wrapped as the plugin keeps it;
the model always holds seconds.

Validated on construction. Every config class is a frozen, keyword-only dataclass whose
``__post_init__`` runs its fields' checks (``fields.validate``) and the rules across its keys,
so an object built in code meets the checks a mapping, a file or the environment meets.

One table, one resolver. Each config dataclass declares its keys once, in its fields: a field's
metadata holds the check that reads and validates it, and for ``MonitoringConfig`` also its
documentation and unit. ``PARAMETERS`` exposes the top-level rows (name, keys, type, default,
unit, doc, environment variable) to the generated reference and the environment source;
``fields.build`` is the one resolver that reads any of these dataclasses from a mapping, and
``checks`` holds the checks it runs.

Layout. This module holds the top level (``MonitoringConfig``, thresholds, dashboard,
multiprocess, endpoint server) and ``load_config``; the request exclusions and labels live in
``labels``, the ``auth`` section lives in ``auth``, the
exporter entries in ``exporters``, the alert rules and notifiers in ``alerts``. Every model
name is re-exported here, so ``fluxstack_otel._internal.config.model`` stays the one place to
import the model from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache
from typing import Any, Literal, NamedTuple

from fluxstack_otel._internal.config.alerts import (
    AlertmanagerNotifierConfig,
    AlertRule,
    LogNotifierConfig,
    NotifierConfig,
    WebhookNotifierConfig,
    parse_alerts,
    parse_notifiers,
)
from fluxstack_otel._internal.config.auth import AuthConfig, BasicAuthConfig, parse_auth
from fluxstack_otel._internal.config.checks import (
    CHECK,
    DOC,
    PATH_TEXT,
    UNIT,
    boolean,
    buckets,
    choice,
    duration,
    entries,
    fail,
    host_name,
    integer,
    is_duration_check,
    key_of,
    number,
    optional_text,
    text,
)
from fluxstack_otel._internal.config.endpoints import endpoint_paths
from fluxstack_otel._internal.config.exporters import (
    ConsoleExporterConfig,
    ExporterConfig,
    FileExporterConfig,
    JsonExporterConfig,
    OtelExporterConfig,
    OtlpExporterConfig,
    PrometheusExporterConfig,
    parse_exporters,
)
from fluxstack_otel._internal.config.fields import build, option, param, read_document, validate
from fluxstack_otel._internal.config.labels import (
    LabelConfig,
    excluded_paths,
    request_labels,
)
from fluxstack_otel._internal.config.labels import (
    constant_labels as parse_constant_labels,
)
from fluxstack_otel._internal.config.style import is_camel, unwrap
from fluxstack_otel._internal.metrics.catalog import (
    DEFAULT_DURATION_BUCKETS,
    DEFAULT_SIZE_BUCKETS,
    HTTP_ERRORS,
    PROFILES,
)
from fluxstack_otel.errors import ConfigError

# The public configuration surface, re-exported as it stands by fluxstack_otel.config and the
# package. PARAMETERS and Param are defined here and imported by name where they are needed.
__all__ = [
    "AlertRule",
    "AlertmanagerNotifierConfig",
    "AuthConfig",
    "BasicAuthConfig",
    "ConsoleExporterConfig",
    "DashboardConfig",
    "EndpointServerConfig",
    "ExporterConfig",
    "FileExporterConfig",
    "JsonExporterConfig",
    "LabelConfig",
    "LogNotifierConfig",
    "MonitoringConfig",
    "MultiprocessConfig",
    "NotifierConfig",
    "OtelExporterConfig",
    "OtlpExporterConfig",
    "PrometheusExporterConfig",
    "Thresholds",
    "WebhookNotifierConfig",
    "load_config",
]


_S = "s"  # the unit of a duration parameter: seconds, or milliseconds in FluxStack style
_threshold_off = (None, False)  # TOML has no null: false turns a threshold off too
# --- the model ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    """Health thresholds; ``None`` (``null``, or ``false`` where TOML has no null) turns one off."""

    response_time: float | None = option(1.0, number(gt=0, duration=True, off=_threshold_off))
    """Seconds above which a request is slow (milliseconds in FluxStack style)."""
    error_rate: float | None = option(0.05, number(ge=0, le=1, off=_threshold_off))
    """Share of responses that are errors, from 0 to 1, above which health degrades."""
    memory_usage: float | None = option(0.8, number(gt=0, le=1, off=_threshold_off))
    """Share of memory in use, above 0 and up to 1, above which health degrades."""
    cpu_usage: float | None = option(0.8, number(gt=0, off=_threshold_off))
    """Share of the CPUs the process may use (``system_cpu_cores``) kept busy, above which health
    degrades."""
    slow_request_log: bool = option(False, boolean)
    """Log a warning for every request slower than ``response_time``."""

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True, kw_only=True)
class MultiprocessConfig:
    """Host-wide metrics for several worker processes on one host (docs/deployment.md)."""

    enabled: bool = option(False, boolean)
    """Every worker publishes its metrics to ``directory``; ``/metrics`` and the JSON document
    then report the whole host."""
    directory: str | None = option(None, optional_text)
    """The directory the workers of one host share (required when enabled); one per app."""

    def __post_init__(self) -> None:
        validate(self)
        if self.enabled and self.directory is None:
            # No default: a directory derived from the parent pid or a temp dir silently splits
            # or mixes hosts' workers depending on the process tree; the deployment must name one.
            raise ConfigError(
                "multiprocess needs a 'directory' shared by the workers of this host",
                path="directory",
            )


def _multiprocess(value: object, path: str, camel: bool) -> MultiprocessConfig:
    return build(MultiprocessConfig, value, path, camel)


@dataclass(frozen=True, kw_only=True)
class DashboardConfig:
    """The built-in HTML dashboard, served on the app (off by default)."""

    enabled: bool = option(False, boolean)
    """Serve the dashboard page."""
    path: str = option(
        "/metrics/dashboard",
        text(f"{PATH_TEXT}, not ending with '/'", lambda t: t[:1] == "/" and t[-1:] != "/"),
    )
    """The page's path; its script, stylesheet and data (``data.json``) are served under it."""
    history: float = option(900.0, number(ge=0, le=604800, duration=True))
    """Seconds of history the page draws from the moment it opens (0 keeps none); at most 720
    samples, one per ``collect_interval`` or coarser for a long history."""

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True, kw_only=True)
class EndpointServerConfig:
    """Where the monitoring endpoints are served: on the app, or on an address of their own."""

    host: str = option("127.0.0.1", host_name)
    """The interface of the endpoint server (needs ``port``)."""
    port: int | None = option(None, integer(0, 65535))
    """With a port (0 picks a free one) every endpoint leaves the app for this server."""

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True, kw_only=True)
class MonitoringConfig:
    """The whole monitoring configuration; ``load_config`` builds it from any source.

    Its fields are the table of top-level parameters: each one's ``param(default, check, doc,
    unit)`` is its single declaration, which the parser, ``PARAMETERS``, the generated reference
    and the environment source all read. The documentation therefore lives in ``doc`` rather
    than in attribute docstrings, where code could not read it.
    """

    # fmt: off
    enabled: bool = param(True, boolean, "Master switch: when false nothing is recorded, served or exported.")
    service_name: str = param("fluxstack-app", text(), "The OpenTelemetry ``service.name`` of the app.")
    http_metrics: bool = param(True, boolean, "Record the HTTP request metrics.")
    system_metrics: bool = param(True, boolean, "Sample process and host metrics: memory, CPU, load, event-loop lag.")
    custom_metrics: bool = param(True, boolean, "Export what app code records through the OpenTelemetry Meter API.")
    collect_interval: float = param(5.0, duration, "How often system metrics are sampled and periodic exporters run.", _S)
    retention_period: float = param(300.0, duration, "How long a series without new data is kept in memory.", _S)
    excluded_paths: tuple[str, ...] = param((), excluded_paths, "Requests not recorded: a path, a prefix ending in ``*``, a route template (``/users/{id}``) or ``re:`` and a regular expression of the whole path.")
    error_status_threshold: int = param(500, integer(400, 600), f"Responses with a status at or above this count in ``{HTTP_ERRORS.name}``.")
    duration_buckets: tuple[float, ...] = param(DEFAULT_DURATION_BUCKETS, buckets, "Histogram bounds of request durations, in seconds in both styles.")
    size_buckets: tuple[float, ...] = param(DEFAULT_SIZE_BUCKETS, buckets, "Histogram bounds of request and response body sizes, in bytes.")
    max_series_per_metric: int = param(2000, integer(1), "Cap on distinct label sets per built-in metric, against cardinality blow-ups.")
    histograms: Literal["explicit", "exponential"] = param("explicit", choice("explicit", "exponential"), "How the HTTP histograms and SDK instruments' histograms aggregate: classic explicit buckets, or also base-2 exponential buckets (Prometheus native histograms, OTLP ExponentialHistogram; docs/metrics.md). A View's aggregation overrides it per metric.")
    naming: Literal["fluxstack", "semconv"] = param("fluxstack", choice(*PROFILES), "Metric names and labels: FluxStack's exact names, or the OpenTelemetry semantic conventions (docs/naming.md).")
    set_global: bool = param(True, boolean, "Make this monitoring's MeterProvider the process-wide OpenTelemetry one, for third-party instrumentations (docs/custom-metrics.md).")
    tracing: bool = param(False, boolean, "Also trace requests with OpenTelemetry's ASGI middleware; duration buckets carry trace exemplars.")
    multiprocess: MultiprocessConfig = param(MultiprocessConfig(), _multiprocess, "Several workers on one host: each publishes to ``directory``, any worker serves the host's totals.")
    exporters: tuple[ExporterConfig, ...] = param((PrometheusExporterConfig(),), parse_exporters, "Where metrics go; disabled entries are kept.")
    alerts: tuple[AlertRule, ...] = param((), parse_alerts, "Alert rules over the built-in metrics.")
    alert_evaluation_interval: float = param(30.0, duration, "How often alert rules are evaluated.", _S)
    notifiers: tuple[NotifierConfig, ...] = param((LogNotifierConfig(),), parse_notifiers, "Where alert notifications go: the log, a webhook, an Alertmanager.")
    # RUF009 reads param() as a call; it returns a dataclasses.Field, and Thresholds is frozen.
    thresholds: Thresholds = param(Thresholds(), lambda v, p, c: build(Thresholds, v, p, c), "Health thresholds (``response_time`` is a duration).")
    dashboard: DashboardConfig = param(DashboardConfig(), lambda v, p, c: build(DashboardConfig, v, p, c), "The built-in HTML dashboard page: ``enabled``, ``path`` and ``history``.")
    auth: AuthConfig = param(AuthConfig(), parse_auth, "Who may read the monitoring endpoints: a bearer token, basic credentials, client networks.")
    constant_labels: tuple[tuple[str, str], ...] = param((), parse_constant_labels, "Labels added to every HTTP metric: ``{\"team\": \"shop\"}``.")
    labels: tuple[LabelConfig, ...] = param((), request_labels, "Labels of the HTTP metrics taken from each request: ``{\"tenant\": {\"header\": \"x-tenant\"}}`` or a ``callback``; ``max_values`` (100) caps each.")
    group_status_codes: bool = param(False, boolean, "Record ``status_code`` as its class (``2xx``, ``4xx``...), and a status's ``error_type`` too.")
    in_progress: bool = param(False, boolean, "Export ``http_requests_in_progress``, the requests being served now, by method and route.")
    record_unmatched: bool = param(True, boolean, "Record requests that matched no route (``route=\"<unmatched>\"``); false drops them.")
    zero_error_series: bool = param(False, boolean, "Export ``http_errors_total`` at 0 for every method and route without errors, so error ratios read 0, not no data.")
    endpoint_server: EndpointServerConfig = param(EndpointServerConfig(), lambda v, p, c: build(EndpointServerConfig, v, p, c), "Serve /metrics, the JSON endpoint and the dashboard on ``host``:``port`` instead of the app.")
    # fmt: on

    def __post_init__(self) -> None:
        validate(self)


class Param(NamedTuple):
    """One top-level parameter, as the configuration reference and environment source see it."""

    name: str
    """The snake_case key, also the ``MonitoringConfig`` field."""
    camel_name: str
    """The FluxStack (camelCase) key."""
    type: str
    """The field's annotation, as written."""
    default: object
    """The value when no source sets it."""
    unit: str | None
    """``"s"`` for a duration: seconds in snake_case style, milliseconds in FluxStack style."""
    doc: str
    """One sentence for the reference."""

    @property
    def env_var(self) -> str:
        """The environment variable that will set it."""
        return f"FLUXSTACK_MONITORING_{self.name.upper()}"


PARAMETERS: tuple[Param, ...] = tuple(
    Param(
        name=f.name,
        camel_name=key_of(f.name, camel=True),
        type=str(f.type),
        default=f.default,
        unit=f.metadata[UNIT],
        doc=f.metadata[DOC],
    )
    for f in fields(MonitoringConfig)
)
"""The top-level parameters in declaration order: the source for the reference and env vars."""

# --- sources ------------------------------------------------------------------------------------


@cache
def _own_keys() -> frozenset[str]:
    return frozenset(k for p in PARAMETERS for k in (p.name, p.camel_name))


@cache
def _duration_keys() -> frozenset[str]:
    """The keys whose value is a duration, in any section or entry of the model."""
    classes = (
        MonitoringConfig, Thresholds, AlertRule, WebhookNotifierConfig, AlertmanagerNotifierConfig,
        PrometheusExporterConfig, ConsoleExporterConfig, JsonExporterConfig, FileExporterConfig,
        OtlpExporterConfig, OtelExporterConfig,
    )  # fmt: skip
    return frozenset(
        key_of(f.name, camel)
        for cls in classes
        for f in fields(cls)
        if CHECK in f.metadata and is_duration_check(f.metadata[CHECK])
        for camel in (False, True)
    )


def unwrap_document(document: object, root: str = "") -> tuple[object, str]:
    """The configuration inside a mapping that wraps it as the FluxStack plugin does, and its
    key path; anything else as it is (``style.unwrap``)."""
    if not isinstance(document, Mapping):
        return document, root
    return unwrap(entries(document, root), root, _own_keys())


def _parse(value: object, root: str = "") -> MonitoringConfig:
    raw, root = unwrap(entries(value, root), root, _own_keys())
    config = build(MonitoringConfig, raw, root, is_camel(raw, root, _duration_keys()))
    endpoint_paths(config, root)  # two endpoints on one path
    return config


def load_config(
    source: MonitoringConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
) -> MonitoringConfig:
    """Build a validated ``MonitoringConfig``.

    Args:
        source: ``None`` for the defaults, a ``MonitoringConfig`` (returned as is), a mapping in
            snake_case style (seconds) or the FluxStack plugin's camelCase style (milliseconds),
            or the path of a ``.toml`` or ``.json`` file (TOML at its top level or under
            ``[tool.fluxstack.monitoring]``).

    Returns:
        The frozen configuration, durations in seconds.

    Raises:
        ConfigError: For any bad source or value, naming the key path, the value received and
            what is allowed. No other exception escapes.
    """
    if source is None:
        return MonitoringConfig()
    if isinstance(source, MonitoringConfig):
        return source
    try:
        if isinstance(source, Mapping):
            return _parse(source)
        if isinstance(source, str | os.PathLike):
            name, document, root = read_document(source)
            try:
                return _parse(document, root)
            except ConfigError as exc:
                message = str(exc).removeprefix(f"{exc.path}: ") if exc.path else str(exc)
                raise ConfigError(f"{message} (in {name})", path=exc.path) from None
    except RecursionError:
        raise ConfigError("the configuration is nested too deeply") from None
    raise fail("", "a MonitoringConfig, a mapping or the path of a .toml or .json file", source)
