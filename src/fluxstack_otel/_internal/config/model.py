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

Layout. This module holds the top level (``MonitoringConfig``, thresholds, auth, dashboard,
multiprocess, endpoint server), the key-style rule and ``load_config``; the exporter entries live
in ``_config_exporters`` and the alert rules and notifiers in ``_config_alerts``. Every model name
is re-exported here, so ``fluxstack_otel._internal.config.model`` stays the one place to import the model from.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import field, fields, replace
from typing import Any, Literal

from fluxstack_otel._internal.config.alerts import (
    AGGREGATIONS,
    AlertmanagerNotifierConfig,
    AlertRule,
    LogNotifierConfig,
    NotifierConfig,
    WebhookNotifierConfig,
    parse_alerts,
    parse_notifiers,
)
from fluxstack_otel._internal.config.checks import (
    CHECK,
    DOC,
    PATH_TEXT,
    UNIT,
    boolean,
    buckets,
    build,
    choice,
    duration,
    entries,
    fail,
    integer,
    items,
    join,
    key_of,
    number,
    option,
    optional_text,
    param,
    read_document,
    text,
)
from fluxstack_otel._internal.config.endpoints import endpoint_paths
from fluxstack_otel._internal.config.exporters import (
    ConsoleExporterConfig,
    ExporterConfig,
    FileExporterConfig,
    JsonExporterConfig,
    OtlpExporterConfig,
    PrometheusExporterConfig,
    parse_exporters,
)
from fluxstack_otel._internal.config.frozen import Frozen
from fluxstack_otel._internal.metrics.catalog import (
    DEFAULT_DURATION_BUCKETS,
    DEFAULT_SIZE_BUCKETS,
    HTTP_ERRORS,
    PROFILES,
)
from fluxstack_otel.errors import ConfigError

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
    "LabelConfig",
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


_S = "s"  # the unit of a duration parameter: seconds, or milliseconds in FluxStack style
_threshold_off = (None, False)  # TOML has no null: false turns a threshold off too
_excluded_path = text(
    f"{PATH_TEXT} ('*' only at its end, '{{...}}' for a route template)"
    " or 're:' and a regular expression",
    lambda t: t.startswith("re:") or (t[:1] == "/" and "*" not in t[:-1]),
)


def _excluded(value: object, path: str, camel: bool) -> tuple[str, ...]:
    listed = items(value, path)
    out = tuple(_excluded_path(item, f"{path}[{i}]", camel) for i, item in enumerate(listed))
    for i, entry in enumerate(out):
        if entry.startswith("re:"):
            import re  # only a configuration with a pattern needs it

            try:
                re.compile(entry[3:])
            except (re.error, RecursionError, OverflowError) as exc:
                raise fail(
                    f"{path}[{i}]", f"a valid regular expression after 're:' ({exc})", entry
                ) from None
    return out


# The labels the HTTP metrics have already, and Prometheus's reserved ones.
_TAKEN_LABELS = frozenset(
    {"method", "route", "status_code", "error_type", "le", "quantile", "job", "instance"}
)
_LABEL_TEXT = "a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with '__')"


def _label_name(name: str, path: str) -> str:
    import re  # only a configuration with labels needs it

    if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name) or name.startswith("__"):
        raise fail(path, _LABEL_TEXT, name)
    if name in _TAKEN_LABELS:
        raise fail(path, f"a label name other than {', '.join(sorted(_TAKEN_LABELS))}", name)
    return name


def _constant_labels(value: object, path: str, camel: bool) -> tuple[tuple[str, str], ...]:
    check = text("a string", lambda _: True)
    return tuple(
        (_label_name(k, join(path, k)), check(v, join(path, k), camel))
        for k, v in entries(value, path).items()
    )


def _callback(value: object, path: str, camel: bool) -> Any:
    if value is None or callable(value):
        return value
    raise fail(path, "a function taking the ASGI scope and returning a string or None", value)


_header_name = text(
    "an HTTP header name (letters, digits, -)",
    lambda t: bool(t) and t.isascii() and all(c.isalnum() or c in "-_" for c in t),
)


class LabelConfig(Frozen):
    """One label of the HTTP metrics taken from each request: a header's value or a callback's."""

    name: str = ""
    """The label key (the key of its entry in ``labels``)."""
    header: str | None = option(None, lambda v, p, c: _header_name(v, p, c).lower())
    """The request header whose value is the label's (case-insensitive)."""
    callback: Any = option(None, _callback)
    """Or a function ``(scope) -> str | None``; what it raises is counted and gives ``default``."""
    default: str = option("", text("a string", lambda _: True))
    """The value when the header is absent or the callback returns None."""
    max_values: int = option(100, integer(1, 100_000))
    """Distinct values kept; every further one is recorded as ``<overflow>``."""


def _labels(value: object, path: str, camel: bool) -> tuple[LabelConfig, ...]:
    out = []
    for name, spec in entries(value, path).items():
        where = join(path, name)
        config = build(LabelConfig, spec, where, camel)
        if (config.header is None) == (config.callback is None):
            raise ConfigError("expected exactly one of 'header' and 'callback'", path=where)
        out.append(replace(config, name=_label_name(name, where)))
    return tuple(out)


# --- the model ----------------------------------------------------------------------------------


class Thresholds(Frozen):
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


class MultiprocessConfig(Frozen):
    """Host-wide metrics for several worker processes on one host (docs/deployment.md)."""

    enabled: bool = option(False, boolean)
    """Every worker publishes its metrics to ``directory``; ``/metrics`` and the JSON document
    then report the whole host."""
    directory: str | None = option(None, optional_text)
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


class DashboardConfig(Frozen):
    """The built-in HTML dashboard, served on the app (off by default)."""

    enabled: bool = option(False, boolean)
    """Serve the dashboard page."""
    path: str = option(
        "/metrics/dashboard",
        text(f"{PATH_TEXT}, not ending with '/'", lambda t: t[:1] == "/" and t[-1:] != "/"),
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


class BasicAuthConfig(Frozen):
    """HTTP basic credentials of the monitoring endpoints; ``repr`` masks the password."""

    username: str = field(
        metadata={CHECK: text("a non-empty string without ':'", lambda t: ":" not in t)}
    )
    """The user name (required)."""
    password: str | None = option(None, _secret)
    """The password; one of ``password`` and ``password_env`` is required."""
    password_env: str | None = option(None, optional_text)
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


class AuthConfig(Frozen):
    """Who may read the monitoring endpoints (docs/security.md); ``repr`` masks the secrets."""

    bearer_token: str | None = option(None, _secret)
    """The token of an ``Authorization: Bearer`` header."""
    bearer_token_env: str | None = option(None, optional_text)
    """The environment variable holding the token, read when the config is loaded."""
    basic: BasicAuthConfig | None = option(None, _basic)
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


class EndpointServerConfig(Frozen):
    """Where the monitoring endpoints are served: on the app, or on an address of their own."""

    host: str = option("127.0.0.1", text())
    """The interface of the endpoint server (needs ``port``)."""
    port: int | None = option(None, integer(0, 65535))
    """With a port (0 picks a free one) every endpoint leaves the app for this server."""


def _auth(value: object, path: str, camel: bool) -> AuthConfig:
    config = build(AuthConfig, value, path, camel)
    token = _from_env(config.bearer_token, config.bearer_token_env, path, "bearer_token", camel)
    return replace(config, bearer_token=token)


class MonitoringConfig(Frozen):
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
    excluded_paths: tuple[str, ...] = param((), _excluded, "Requests not recorded: a path, a prefix ending in ``*``, a route template (``/users/{id}``) or ``re:`` and a regular expression of the whole path.")
    error_status_threshold: int = param(500, integer(400, 600), f"Responses with a status at or above this count in ``{HTTP_ERRORS.name}``.")
    duration_buckets: tuple[float, ...] = param(DEFAULT_DURATION_BUCKETS, buckets, "Histogram bounds of request durations, in seconds in both styles.")
    size_buckets: tuple[float, ...] = param(DEFAULT_SIZE_BUCKETS, buckets, "Histogram bounds of request and response body sizes, in bytes.")
    max_series_per_metric: int = param(2000, integer(1), "Cap on distinct label sets per built-in metric, against cardinality blow-ups.")
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
    dashboard: DashboardConfig = param(DashboardConfig(), lambda v, p, c: build(DashboardConfig, v, p, c), "The built-in HTML dashboard page: ``enabled`` and ``path``.")
    auth: AuthConfig = param(AuthConfig(), _auth, "Who may read the monitoring endpoints: a bearer token, basic credentials, client networks.")
    constant_labels: tuple[tuple[str, str], ...] = param((), _constant_labels, "Labels added to every HTTP metric: ``{\"team\": \"shop\"}``.")
    labels: tuple[LabelConfig, ...] = param((), _labels, "Labels of the HTTP metrics taken from each request: ``{\"tenant\": {\"header\": \"x-tenant\"}}`` or a ``callback``; ``max_values`` (100) caps each.")
    group_status_codes: bool = param(False, boolean, "Record ``status_code`` as its class (``2xx``, ``4xx``...), and a status's ``error_type`` too.")
    in_progress: bool = param(False, boolean, "Export ``http_requests_in_progress``, the requests being served now, by method and route.")
    record_unmatched: bool = param(True, boolean, "Record requests that matched no route (``route=\"<unmatched>\"``); false drops them.")
    zero_error_series: bool = param(False, boolean, "Export ``http_errors_total`` at 0 for every method and route without errors, so error ratios read 0, not no data.")
    endpoint_server: EndpointServerConfig = param(EndpointServerConfig(), lambda v, p, c: build(EndpointServerConfig, v, p, c), "Serve /metrics, the JSON endpoint and the dashboard on ``host``:``port`` instead of the app.")
    # fmt: on


class Param(Frozen):
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
    config = build(MonitoringConfig, raw, root, _is_camel(raw, root))
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
