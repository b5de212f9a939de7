"""The configuration: a typed, frozen model and the one parser that builds it.

``load_config`` accepts ``None`` (defaults), a ``MonitoringConfig`` (returned as is), a mapping, or
the path of a ``.toml`` or ``.json`` file (a TOML file may hold the configuration at its top level
or under ``[tool.fluxstack.monitoring]``, as in ``pyproject.toml``). Every bad value raises
``ConfigError`` naming the key path, quoting the value received and saying what is allowed.

Key styles. The native style is snake_case with durations in seconds. The FluxStack plugin's
config object is accepted as-is: camelCase keys, and every interval and duration in
milliseconds (``collectInterval``, ``retentionPeriod``, ``alertEvaluationInterval``, exporter
``interval`` and ``timeout``, alert ``window``, ``for``, ``keepFiringFor`` and ``repeatInterval``,
``thresholds.responseTime``); the model always holds seconds. The rule: a mapping is read in
FluxStack style when any config key in it contains an uppercase letter, counting the keys at the
top level, in ``thresholds`` and in every entry of ``exporters`` and ``alerts`` (header names and
alert label keys are data, not config keys, and do not count). Keys spelled alike in both styles
(``enabled``, ``endpoint``) fit either; a mapping holding a camelCase key and a key with an
underscore is refused, since the two styles read durations in different units.

One table, one resolver. Each config dataclass declares its keys once, in its fields: a field's
metadata holds the check that reads and validates it, and for ``MonitoringConfig`` also its
documentation and unit. ``PARAMETERS`` exposes the top-level rows (name, keys, type, default,
unit, doc, environment variable) to the generated reference and to a future environment source;
``_config_parse.build`` is the one resolver that reads any of these dataclasses from a mapping,
and ``_config_parse`` holds the generic checks it runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias

from fluxstack_otel._catalog import (
    ALERT_ALIASES,
    DEFAULT_DURATION_BUCKETS,
    DEFAULT_SIZE_BUCKETS,
    HTTP_ERRORS,
    METRICS_BY_NAME,
    PROFILES,
    Kind,
    MetricSpec,
)
from fluxstack_otel._config_parse import (
    CHECK,
    DOC,
    UNIT,
    Check,
    boolean,
    buckets,
    build,
    choice,
    entries,
    fail,
    headers,
    integer,
    is_url,
    items,
    join,
    key_of,
    labels,
    number,
    option,
    param,
    read_document,
    suggest,
    text,
)
from fluxstack_otel._errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "AGGREGATIONS",
    "PARAMETERS",
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
    "LogNotifierConfig",
    "MonitoringConfig",
    "MultiprocessConfig",
    "NotifierConfig",
    "OtlpExporterConfig",
    "Param",
    "PrometheusExporterConfig",
    "Thresholds",
    "WebhookNotifierConfig",
    "load_config",
]

AGGREGATIONS: dict[Kind, tuple[str, ...]] = {
    Kind.COUNTER: ("rate", "value"),
    Kind.HISTOGRAM: ("p95", "mean", "p50", "p90", "p99", "max_bucket"),
    Kind.GAUGE: ("value",),
}
"""How an alert rule may reduce a metric's window to one number, per kind; the first is the
default."""

_S = "s"  # the unit of a duration parameter: seconds, or milliseconds in FluxStack style
_PATH = "a path starting with '/'"
_endpoint = text(_PATH, lambda t: t.startswith("/"))
_optional_text = text(null=True)
_duration = number(gt=0, duration=True)
_delay = number(ge=0, duration=True)
_threshold_off = (None, False)  # TOML has no null: false turns a threshold off too


_excluded_path = text(f"{_PATH}, '*' only at its end", lambda t: t[:1] == "/" and "*" not in t[:-1])


def _excluded(value: object, path: str, camel: bool) -> tuple[str, ...]:
    listed = items(value, path)
    return tuple(_excluded_path(item, f"{path}[{i}]", camel) for i, item in enumerate(listed))


def _masked_repr(config: DataclassInstance) -> str:
    parts = []
    for f in fields(config):
        value = getattr(config, f.name)
        if f.name == "headers":
            value = {name: "***" for name, _ in value}
        parts.append(f"{f.name}={value!r}")
    return f"{type(config).__name__}({', '.join(parts)})"


# --- the model ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class _ExporterBase:
    """What every exporter entry has."""

    type: ClassVar[str]
    """The entry's ``type`` key."""
    enabled: bool = option(True, boolean)
    """A disabled exporter is still validated and kept here; consumers skip it."""
    interval: float | None = option(None, number(gt=0, duration=True, off=(None,)))
    """Seconds between runs of a periodic exporter; ``None`` means ``collect_interval``."""


@dataclass(frozen=True, kw_only=True, slots=True)
class PrometheusExporterConfig(_ExporterBase):
    """Prometheus exposition, served on the app at ``endpoint`` or, with ``port``, on its own."""

    type: ClassVar[Literal["prometheus"]] = "prometheus"
    endpoint: str = option("/metrics", _endpoint)
    """The path that serves the exposition."""
    host: str | None = option(None, _optional_text)
    """Interface of the standalone server (needs ``port``); ``None`` means ``127.0.0.1``."""
    port: int | None = option(None, integer(0, 65535))
    """Port of a standalone server (0 picks a free one); ``None`` serves on the app itself."""
    openmetrics: bool = option(True, boolean)
    """Answer in OpenMetrics when the scraper asks for it."""
    gzip: bool = option(True, boolean)
    """Compress the answer when the scraper accepts gzip."""
    target_info: bool = option(False, boolean)
    """Expose the resource as a ``target_info`` series."""
    scope_labels: bool = option(False, boolean)
    """Add ``otel_scope_*`` labels to every series."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ConsoleExporterConfig(_ExporterBase):
    """A periodic snapshot written to the log or to standard output."""

    type: ClassVar[Literal["console"]] = "console"
    format: Literal["text", "json"] = option("text", choice("text", "json"))
    """``text`` for people, ``json`` for log pipelines."""
    stream: Literal["log", "stdout"] = option("log", choice("log", "stdout"))
    """``log`` writes through the ``fluxstack_otel`` logger, ``stdout`` prints."""


@dataclass(frozen=True, kw_only=True, slots=True)
class JsonExporterConfig(_ExporterBase):
    """The JSON document: served at ``endpoint``, POSTed to ``url``, written to ``file_path``."""

    type: ClassVar[Literal["json"]] = "json"
    endpoint: str | None = option(
        None, text(f"{_PATH} or an http(s) URL", lambda t: t[:1] == "/" or is_url(t), null=True)
    )
    """The path that serves the document on the app (FluxStack's URL form becomes ``url``)."""
    url: str | None = option(None, text("an http:// or https:// URL", is_url, null=True))
    """An http(s) URL the document is POSTed to every interval."""
    file_path: str | None = option(None, _optional_text)
    """A file the document is written to every interval."""
    timeout: float = option(5.0, _duration)
    """Seconds a POST may take."""
    headers: tuple[tuple[str, str], ...] = option((), headers)
    """Extra HTTP headers of the POST as (name, value) pairs; ``repr`` masks the values."""

    def __repr__(self) -> str:
        return _masked_repr(self)


@dataclass(frozen=True, kw_only=True, slots=True)
class FileExporterConfig(_ExporterBase):
    """A file rewritten every interval."""

    type: ClassVar[Literal["file"]] = "file"
    file_path: str = field(metadata={CHECK: text()})
    """The file to write (required)."""
    format: Literal["prometheus", "json"] = option(
        "prometheus", choice("prometheus", "json", aliases={"text": "prometheus"})
    )
    """Prometheus text or the JSON document (FluxStack's ``text`` means ``prometheus``)."""
    history: bool = option(False, boolean)
    """Append one JSON line per interval instead of rewriting the file."""


@dataclass(frozen=True, kw_only=True, slots=True)
class OtlpExporterConfig(_ExporterBase):
    """OTLP push to a collector, over HTTP/protobuf or gRPC."""

    type: ClassVar[Literal["otlp"]] = "otlp"
    endpoint: str | None = option(None, _optional_text)
    """The collector; ``None`` leaves it to ``OTEL_EXPORTER_OTLP_*`` and the exporter's default."""
    protocol: Literal["http/protobuf", "grpc"] = option(
        "http/protobuf", choice("http/protobuf", "grpc")
    )
    """The OTLP transport."""
    headers: tuple[tuple[str, str], ...] = option((), headers)
    """Extra headers (gRPC metadata) as (name, value) pairs; ``repr`` masks the values."""
    timeout: float = option(10.0, _duration)
    """Seconds an export may take."""
    compression: Literal["gzip", "none"] | None = option(None, choice("gzip", "none", null=True))
    """Payload compression; ``None`` leaves it to the environment and the exporter's default."""
    temporality: Literal["cumulative", "delta"] = option(
        "cumulative", choice("cumulative", "delta")
    )
    """Aggregation temporality of sums and histograms."""

    def __repr__(self) -> str:
        return _masked_repr(self)


ExporterConfig: TypeAlias = (
    PrometheusExporterConfig
    | ConsoleExporterConfig
    | JsonExporterConfig
    | FileExporterConfig
    | OtlpExporterConfig
)
_EXPORTERS: dict[str, type[ExporterConfig]] = {
    c.type: c
    for c in (
        PrometheusExporterConfig,
        ConsoleExporterConfig,
        JsonExporterConfig,
        FileExporterConfig,
        OtlpExporterConfig,
    )
}
# FluxStack gives every exporter ``format: "text" | "json"``; where it means nothing here, the one
# value that fits is accepted and ignored.
_IGNORED_FORMAT: dict[str, Check] = {"prometheus": choice("text"), "json": choice("json")}


@dataclass(frozen=True, kw_only=True, slots=True)
class Thresholds:
    """Health thresholds; ``None`` (``null``, or ``false`` where TOML has no null) turns one off."""

    response_time: float | None = option(1.0, number(gt=0, duration=True, off=_threshold_off))
    """Seconds above which a request is slow (milliseconds in FluxStack style)."""
    error_rate: float | None = option(0.05, number(ge=0, le=1, off=_threshold_off))
    """Share of responses that are errors, from 0 to 1, above which health degrades."""
    memory_usage: float | None = option(0.8, number(gt=0, le=1, off=_threshold_off))
    """Share of memory in use, above 0 and up to 1, above which health degrades."""
    cpu_usage: float | None = option(0.8, number(gt=0, off=_threshold_off))
    """CPU use (1.0 = one core busy) above which health degrades."""
    slow_request_log: bool = option(False, boolean)
    """Log a warning for every request slower than ``response_time``."""


@dataclass(frozen=True, kw_only=True, slots=True)
class MultiprocessConfig:
    """Host-wide metrics for several worker processes on one host (docs/deployment.md)."""

    enabled: bool = option(False, boolean)
    """Every worker publishes its metrics to ``directory``; ``/metrics`` and the JSON document
    then report the whole host."""
    directory: str | None = option(None, _optional_text)
    """The directory the workers of one host share (required when enabled); one per app."""


def _multiprocess(value: object, path: str, camel: bool) -> MultiprocessConfig:
    config = build(MultiprocessConfig, value, path, camel)
    if config.enabled and config.directory is None:
        # No default: a directory derived from the parent pid or a temp dir silently splits or
        # mixes hosts' workers depending on the process tree; the deployment must name one.
        raise ConfigError(
            "multiprocess needs a 'directory' shared by the workers of this host",
            path=join(path, "directory"),
        )
    return config


# OpenTelemetry's instrument name syntax: what a custom metric an alert reads can be called.
_INSTRUMENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-/]{0,254}")


def _alert_metric(value: object, path: str, camel: bool) -> str:
    if isinstance(value, str):
        got = str.__str__(value)
        if got in METRICS_BY_NAME or got in ALERT_ALIASES or _INSTRUMENT_NAME.fullmatch(got):
            return got
    names = [*METRICS_BY_NAME, *ALERT_ALIASES]
    raise fail(
        path, "a built-in metric, an alias or a custom metric's instrument name", value,
        suggest(value, names),
    )  # fmt: skip


def _unit_text(value: object, path: str, camel: bool) -> str:
    if isinstance(value, str) and len(value) <= 63:
        return str.__str__(value)
    raise fail(path, "a unit string (UCUM, such as 's' or 'By')", value)


def custom_metric_spec(rule: AlertRule) -> MetricSpec:
    """The catalogue-shaped description of the custom metric an alert rule reads.

    Its labels are the rule's matcher keys: a custom metric's attributes are known only when
    it records.
    """
    kind = Kind(rule.kind) if rule.kind is not None else Kind.GAUGE
    return MetricSpec(rule.metric, kind, rule.unit, "", tuple(k for k, _ in rule.labels))


@dataclass(frozen=True, kw_only=True, slots=True)
class AlertRule:
    """One alert: it fires while ``aggregation(metric) * scale`` compares true with ``value``."""

    metric: str = field(metadata={CHECK: _alert_metric})
    """The metric read: a built-in (an alias in configuration is stored as its target's name),
    or a custom metric's instrument name, which then needs ``kind``."""
    operator: Literal[">", ">=", "<", "<=", "==", "!="] = field(
        metadata={CHECK: choice(">", ">=", "<", "<=", "==", "!=")}
    )
    """How the metric compares with ``value``."""
    value: float = field(metadata={CHECK: number()})
    """The threshold, in the metric's unit as configured (ms for FluxStack's ``_ms`` alias)."""
    severity: Literal["info", "warning", "error", "critical"] = field(
        metadata={CHECK: choice("info", "warning", "error", "critical")}
    )
    """How loud the notification is."""
    name: str | None = option(None, _optional_text)
    """A name for notifications; ``None`` derives one from the rule."""
    message: str | None = option(None, _optional_text)
    """The notification text; ``None`` derives one from the rule."""
    labels: tuple[tuple[str, str], ...] = option((), labels)
    """Only series with these label values count, as sorted (key, value) pairs."""
    kind: Literal["counter", "gauge", "histogram"] | None = option(
        None, choice("counter", "gauge", "histogram", null=True)
    )
    """A custom metric's kind (required for one, since it is created at run time); for a
    built-in it may be given and must match."""
    unit: str = option("", _unit_text)
    """A custom metric's unit as created (``s``, ``By``): only the Prometheus rules export uses
    it, to spell the exposed name (``orders.latency`` in ``s`` is ``orders_latency_seconds``)."""
    aggregation: str | None = option(None, _optional_text)
    """How the window becomes one number (see ``AGGREGATIONS``); ``load_config`` fills in the
    kind's default, ``None`` means it when a rule is built in code."""
    window: float = option(60.0, _duration)
    """Seconds of data the aggregation reads."""
    for_: float = option(0.0, _delay)
    """Seconds the condition must hold before the alert fires (configuration key ``for``)."""
    keep_firing_for: float = option(0.0, _delay)
    """Seconds the alert keeps firing after the condition clears."""
    repeat_interval: float = option(3600.0, _duration)
    """Seconds between repeated notifications while the alert fires."""
    scale: float = 1.0
    """Not a configuration key: the evaluator multiplies the metric by this before comparing
    (1000 for FluxStack's millisecond alias of a metric in seconds)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class LogNotifierConfig:
    """Alerts logged by the ``fluxstack_otel`` logger, at a level that follows their severity."""

    type: ClassVar[Literal["log"]] = "log"


@dataclass(frozen=True, kw_only=True, slots=True)
class WebhookNotifierConfig:
    """Alerts POSTed as JSON to ``url``, with retries."""

    type: ClassVar[Literal["webhook"]] = "webhook"
    url: str = field(metadata={CHECK: text("an http:// or https:// URL", is_url)})
    """The URL the notifications are POSTed to (required)."""
    timeout: float = option(5.0, _duration)
    """Seconds one POST may take."""
    headers: tuple[tuple[str, str], ...] = option((), headers)
    """Extra HTTP headers as (name, value) pairs; ``repr`` masks the values."""

    def __repr__(self) -> str:
        return _masked_repr(self)


@dataclass(frozen=True, kw_only=True, slots=True)
class AlertmanagerNotifierConfig:
    """Alerts sent to a Prometheus Alertmanager's ``/api/v2/alerts``."""

    type: ClassVar[Literal["alertmanager"]] = "alertmanager"
    url: str = field(metadata={CHECK: text("an http:// or https:// URL", is_url)})
    """The Alertmanager's base URL, such as ``http://alertmanager:9093`` (required)."""
    timeout: float = option(5.0, _duration)
    """Seconds one POST may take."""


@dataclass(frozen=True, kw_only=True, slots=True)
class DashboardConfig:
    """The built-in HTML dashboard, served on the app (off by default)."""

    enabled: bool = option(False, boolean)
    """Serve the dashboard page."""
    path: str = option(
        "/metrics/dashboard",
        text(f"{_PATH}, not ending with '/'", lambda t: t[:1] == "/" and t[-1:] != "/"),
    )
    """The page's path; its script, stylesheet and data (``data.json``) are served under it."""


def _secret(value: object, path: str, camel: bool) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value and "\r" not in value and "\n" not in value:
        return str.__str__(value)
    # A secret is never echoed, not even a wrong one: name its type only.
    shown = (
        "an empty string or one with a line break"
        if isinstance(value, str)
        else type(value).__name__
    )
    raise ConfigError(
        f"expected a non-empty string without line breaks or null, got {shown}", path=path
    )


def _from_env(
    value: str | None, variable: str | None, path: str, key: str, camel: bool
) -> str | None:
    """The secret itself, or the value of the environment variable ``variable`` names."""
    if variable is None:
        return value
    name, env_name = key_of(key, camel), key_of(f"{key}_env", camel)
    if value is not None:
        raise ConfigError(f"{name!r} and {env_name!r} are both set; keep one", path=path)
    found = os.environ.get(variable)
    if not found or "\r" in found or "\n" in found:
        raise ConfigError(
            f"environment variable {variable!r} is unset, empty or holds a line break",
            path=join(path, env_name),
        )
    return found


def _networks(value: object, path: str, camel: bool) -> tuple[str, ...]:
    out = []
    for i, item in enumerate(items(value, path)):
        try:
            if not isinstance(item, str):
                raise ValueError(item)
            import ipaddress

            out.append(str(ipaddress.ip_network(str.__str__(item).strip(), strict=False)))
        except ValueError:
            allowed = "an IP network such as '10.0.0.0/8' or '::1'"
            raise fail(f"{path}[{i}]", allowed, item) from None
    return tuple(out)


@dataclass(frozen=True, kw_only=True, slots=True)
class BasicAuthConfig:
    """HTTP basic credentials of the monitoring endpoints; ``repr`` masks the password."""

    username: str = field(
        metadata={CHECK: text("a non-empty string without ':'", lambda t: ":" not in t)}
    )
    """The user name (required)."""
    password: str | None = option(None, _secret)
    """The password; one of ``password`` and ``password_env`` is required."""
    password_env: str | None = option(None, _optional_text)
    """The environment variable holding the password, read when the config is loaded."""

    def __repr__(self) -> str:
        return (
            f"BasicAuthConfig(username={self.username!r}, password='***',"
            f" password_env={self.password_env!r})"
        )


def _basic(value: object, path: str, camel: bool) -> BasicAuthConfig | None:
    if value is None:
        return None
    config = build(BasicAuthConfig, value, path, camel)
    password = _from_env(config.password, config.password_env, path, "password", camel)
    if password is None:
        keys = f"{key_of('password', camel)!r} or {key_of('password_env', camel)!r}"
        raise ConfigError(f"missing required key {keys}", path=path)
    return replace(config, password=password)


@dataclass(frozen=True, kw_only=True, slots=True)
class AuthConfig:
    """Who may read the monitoring endpoints (docs/security.md); ``repr`` masks the secrets."""

    bearer_token: str | None = option(None, _secret)
    """The token of an ``Authorization: Bearer`` header."""
    bearer_token_env: str | None = option(None, _optional_text)
    """The environment variable holding the token, read when the config is loaded."""
    basic: BasicAuthConfig | None = option(None, _basic)  # noqa: RUF009 (option() returns a Field)
    """HTTP basic credentials; with a token as well, either one lets a request through."""
    allow_networks: tuple[str, ...] = option((), _networks)
    """Client networks allowed (``127.0.0.0/8``, ``10.0.0.0/8``, ``::1``); empty allows all."""

    @property
    def restricts(self) -> bool:
        """True when the section sets a rule (without one the endpoints are open)."""
        return self.bearer_token is not None or self.basic is not None or bool(self.allow_networks)

    def __repr__(self) -> str:
        token = None if self.bearer_token is None else "***"
        return (
            f"AuthConfig(bearer_token={token!r}, bearer_token_env={self.bearer_token_env!r},"
            f" basic={self.basic!r}, allow_networks={self.allow_networks!r})"
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class EndpointServerConfig:
    """Where the monitoring endpoints are served: on the app, or on an address of their own."""

    host: str = option("127.0.0.1", text())
    """The interface of the endpoint server (needs ``port``)."""
    port: int | None = option(None, integer(0, 65535))
    """With a port (0 picks a free one) every endpoint leaves the app for this server."""


def _auth(value: object, path: str, camel: bool) -> AuthConfig:
    config = build(AuthConfig, value, path, camel)
    token = _from_env(config.bearer_token, config.bearer_token_env, path, "bearer_token", camel)
    return replace(config, bearer_token=token)


NotifierConfig: TypeAlias = LogNotifierConfig | WebhookNotifierConfig | AlertmanagerNotifierConfig
_NOTIFIERS: dict[str, type[NotifierConfig]] = {
    c.type: c for c in (LogNotifierConfig, WebhookNotifierConfig, AlertmanagerNotifierConfig)
}


@dataclass(frozen=True, kw_only=True, slots=True)
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
    collect_interval: float = param(5.0, _duration, "How often system metrics are sampled and periodic exporters run.", _S)
    retention_period: float = param(300.0, _duration, "How long a series without new data is kept in memory.", _S)
    excluded_paths: tuple[str, ...] = param((), _excluded, "Request paths not recorded; a trailing ``*`` makes an entry a prefix.")
    error_status_threshold: int = param(500, integer(400, 600), f"Responses with a status at or above this count in ``{HTTP_ERRORS.name}``.")
    duration_buckets: tuple[float, ...] = param(DEFAULT_DURATION_BUCKETS, buckets, "Histogram bounds of request durations, in seconds in both styles.")
    size_buckets: tuple[float, ...] = param(DEFAULT_SIZE_BUCKETS, buckets, "Histogram bounds of request and response body sizes, in bytes.")
    max_series_per_metric: int = param(2000, integer(1), "Cap on distinct label sets per built-in metric, against cardinality blow-ups.")
    naming: Literal["fluxstack", "semconv"] = param("fluxstack", choice(*PROFILES), "Metric names and labels: FluxStack's exact names, or the OpenTelemetry semantic conventions (docs/naming.md).")
    set_global: bool = param(True, boolean, "Make this monitoring's MeterProvider the process-wide OpenTelemetry one, for third-party instrumentations (docs/custom-metrics.md).")
    tracing: bool = param(False, boolean, "Also trace requests with OpenTelemetry's ASGI middleware; duration buckets carry trace exemplars.")
    multiprocess: MultiprocessConfig = param(MultiprocessConfig(), _multiprocess, "Several workers on one host: each publishes to ``directory``, any worker serves the host's totals.")  # noqa: RUF009
    exporters: tuple[ExporterConfig, ...] = param((PrometheusExporterConfig(),), lambda v, p, c: _exporters(v, p, c), "Where metrics go; disabled entries are kept.")
    alerts: tuple[AlertRule, ...] = param((), lambda v, p, c: _alerts(v, p, c), "Alert rules over the built-in metrics.")
    alert_evaluation_interval: float = param(30.0, _duration, "How often alert rules are evaluated.", _S)
    notifiers: tuple[NotifierConfig, ...] = param((LogNotifierConfig(),), lambda v, p, c: _notifiers(v, p, c), "Where alert notifications go: the log, a webhook, an Alertmanager.")
    # RUF009 reads param() as a call; it returns a dataclasses.Field, and Thresholds is frozen.
    thresholds: Thresholds = param(Thresholds(), lambda v, p, c: build(Thresholds, v, p, c), "Health thresholds (``response_time`` is a duration).")  # noqa: RUF009
    dashboard: DashboardConfig = param(DashboardConfig(), lambda v, p, c: build(DashboardConfig, v, p, c), "The built-in HTML dashboard page: ``enabled`` and ``path``.")  # noqa: RUF009
    auth: AuthConfig = param(AuthConfig(), _auth, "Who may read the monitoring endpoints: a bearer token, basic credentials, client networks.")  # noqa: RUF009
    endpoint_server: EndpointServerConfig = param(EndpointServerConfig(), lambda v, p, c: build(EndpointServerConfig, v, p, c), "Serve /metrics, the JSON endpoint and the dashboard on ``host``:``port`` instead of the app.")  # noqa: RUF009
    # fmt: on


@dataclass(frozen=True, kw_only=True, slots=True)
class Param:
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

# --- rules across keys --------------------------------------------------------------------------


def _exporters(value: object, path: str, camel: bool) -> tuple[ExporterConfig, ...]:
    out = tuple(_exporter(item, f"{path}[{i}]", camel) for i, item in enumerate(items(value, path)))
    # Two enabled Prometheus entries at one address would shadow each other without a word (on
    # the app) or fail to bind at start-up (standalone); port 0 picks a free port each time.
    taken: dict[str, int] = {}
    for i, e in enumerate(out):
        if isinstance(e, PrometheusExporterConfig) and e.enabled and e.port != 0:
            where = e.endpoint if e.port is None else f"{e.host or '127.0.0.1'}:{e.port}"
            if where in taken:
                raise ConfigError(
                    f"serves {where!r}, as {path}[{taken[where]}] does already",
                    path=f"{path}[{i}]",
                )
            taken[where] = i
    return out


def _exporter(value: object, path: str, camel: bool) -> ExporterConfig:
    raw = entries(value, path)
    if "type" not in raw:
        kinds = ", ".join(map(repr, _EXPORTERS))
        raise ConfigError(f"missing required key 'type', one of {kinds}", path=path)
    kind = choice(*_EXPORTERS)(raw["type"], join(path, "type"), camel)
    extra: dict[str, Check] = {"type": lambda *_: None}  # already read above
    if kind in _IGNORED_FORMAT:
        extra["format"] = _IGNORED_FORMAT[kind]
    config = build(_EXPORTERS[kind], raw, path, camel, extra)
    if isinstance(config, PrometheusExporterConfig) and config.host and config.port is None:
        raise ConfigError(
            f"host {config.host!r} is for a standalone server and needs a port;"
            " without one the app itself serves the endpoint",
            path=join(path, "host"),
        )
    if isinstance(config, JsonExporterConfig):
        if config.endpoint is not None and is_url(config.endpoint):
            # FluxStack POSTs to a json ``endpoint`` URL: that is ``url`` here.
            if config.url is not None:
                raise ConfigError(
                    f"endpoint {config.endpoint!r} is a URL and url is set too; keep one",
                    path=join(path, "endpoint"),
                )
            config = replace(config, endpoint=None, url=config.endpoint)
        if config.endpoint is None and config.url is None and config.file_path is None:
            keys = ", ".join(repr(key_of(k, camel)) for k in ("endpoint", "url", "file_path"))
            raise ConfigError(
                f"a json exporter needs at least one of {keys}"
                " (for JSON in the log, use a console exporter with format 'json')",
                path=path,
            )
    if (
        isinstance(config, OtlpExporterConfig)
        and config.endpoint is not None
        and config.protocol == "http/protobuf"
        and not is_url(config.endpoint)
    ):
        allowed = "an http:// or https:// URL with protocol 'http/protobuf'"
        raise fail(join(path, "endpoint"), allowed, config.endpoint)
    return config


def _alerts(value: object, path: str, camel: bool) -> tuple[AlertRule, ...]:
    return tuple(_alert(item, f"{path}[{i}]", camel) for i, item in enumerate(items(value, path)))


def _alert(value: object, path: str, camel: bool) -> AlertRule:
    rule = build(AlertRule, value, path, camel)
    alias = ALERT_ALIASES.get(rule.metric)
    builtin = alias.target if alias is not None else METRICS_BY_NAME.get(rule.metric)
    if builtin is None:
        if rule.kind is None:
            known = [*METRICS_BY_NAME, *ALERT_ALIASES]
            raise fail(
                join(path, "metric"),
                "a built-in metric or alias, or a custom metric with 'kind' "
                "('counter', 'gauge' or 'histogram')",
                rule.metric,
                suggest(rule.metric, known),
            )
        spec = custom_metric_spec(rule)
    else:
        spec = builtin
        if rule.kind is not None and rule.kind != spec.kind:
            raise fail(join(path, "kind"), f"{spec.kind.value!r} for {spec.name!r}", rule.kind)
    allowed = AGGREGATIONS[spec.kind]
    aggregation = allowed[0] if rule.aggregation is None else rule.aggregation
    if aggregation not in allowed:
        names = ", ".join(map(repr, allowed))
        hint = suggest(aggregation, list(allowed))
        raise fail(
            join(path, "aggregation"), f"one of {names} (for a {spec.kind})", aggregation, hint
        )
    for key, _ in rule.labels:
        if key not in spec.labels:
            names = ", ".join(map(repr, spec.labels)) or "none"
            raise ConfigError(
                f"unknown label {key!r} for {rule.metric!r}{suggest(key, list(spec.labels))};"
                f" allowed labels: {names}",
                path=join(join(path, "labels"), key),
            )
    scale = alias.scale if alias is not None else 1.0
    return replace(rule, metric=spec.name, aggregation=aggregation, scale=scale)


def _notifiers(value: object, path: str, camel: bool) -> tuple[NotifierConfig, ...]:
    return tuple(
        _notifier(item, f"{path}[{i}]", camel) for i, item in enumerate(items(value, path))
    )


def _notifier(value: object, path: str, camel: bool) -> NotifierConfig:
    raw = entries(value, path)
    if "type" not in raw:
        kinds = ", ".join(map(repr, _NOTIFIERS))
        raise ConfigError(f"missing required key 'type', one of {kinds}", path=path)
    kind = choice(*_NOTIFIERS)(raw["type"], join(path, "type"), camel)
    return build(_NOTIFIERS[kind], raw, path, camel, {"type": lambda *_: None})


def _config_keys(raw: dict[str, Any], root: str) -> Iterator[tuple[str, str]]:
    """(path, key) of every config key: top level, thresholds, exporter, alert, notifier entries."""
    for key in raw:
        yield join(root, key), key
    thresholds = raw.get("thresholds")
    if isinstance(thresholds, Mapping):
        where = join(root, "thresholds")
        for key in entries(thresholds, where):
            yield join(where, key), key
    for name in ("exporters", "alerts", "notifiers"):
        listed = raw.get(name)
        if isinstance(listed, list | tuple):
            for i, item in enumerate(listed):
                if isinstance(item, Mapping):
                    where = f"{join(root, name)}[{i}]"
                    for key in entries(item, where):
                        yield join(where, key), key


def _is_camel(raw: dict[str, Any], root: str) -> bool:
    """True for FluxStack style: some config key has an uppercase letter (module docstring)."""
    camel = snake = ""
    for where, key in _config_keys(raw, root):
        if any(ch.isupper() for ch in key):
            camel = camel or where
        elif "_" in key:
            snake = snake or where
        if camel and snake:
            raise ConfigError(
                f"a snake_case key next to the camelCase {camel!r}: use one style, camelCase"
                " with durations in milliseconds (FluxStack) or snake_case with seconds",
                path=snake,
            )
    return bool(camel)


# --- sources ------------------------------------------------------------------------------------


def _parse(value: object, root: str = "") -> MonitoringConfig:
    raw = entries(value, root)
    return build(MonitoringConfig, raw, root, _is_camel(raw, root))


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
