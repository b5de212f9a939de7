"""The alert rules and notifiers of the configuration, and their parsers.

Part of the configuration model (``_config`` re-exports every name); the generic checks come
from ``_config_parse``. A rule is checked against the catalogue here: its metric (a built-in, an
alias, or a custom instrument with its ``kind``), aggregation and label keys.
"""

from __future__ import annotations

import re
from dataclasses import field, replace
from typing import ClassVar, Literal, TypeAlias

from fluxstack_otel._internal.config.checks import (
    CHECK,
    build,
    choice,
    delay,
    duration,
    entries,
    entry_type,
    fail,
    headers,
    is_url,
    items,
    join,
    labels,
    masked_repr,
    number,
    option,
    optional_text,
    suggest,
    text,
)
from fluxstack_otel._internal.config.frozen import Frozen
from fluxstack_otel._internal.metrics.catalog import (
    ALERT_ALIASES,
    METRICS_BY_NAME,
    Kind,
    MetricSpec,
)
from fluxstack_otel.errors import ConfigError

__all__ = [
    "AGGREGATIONS",
    "AlertRule",
    "AlertmanagerNotifierConfig",
    "LogNotifierConfig",
    "NotifierConfig",
    "WebhookNotifierConfig",
    "custom_metric_spec",
    "parse_alerts",
    "parse_notifiers",
]

AGGREGATIONS: dict[Kind, tuple[str, ...]] = {
    Kind.COUNTER: ("rate", "value"),
    Kind.HISTOGRAM: ("p95", "mean", "p50", "p90", "p99", "max_bucket"),
    Kind.GAUGE: ("value",),
}
"""How an alert rule may reduce a metric's window to one number, per kind; the first is the
default."""


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


class AlertRule(Frozen):
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
    name: str | None = option(None, optional_text)
    """A name for notifications; ``None`` derives one from the rule."""
    message: str | None = option(None, optional_text)
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
    aggregation: str | None = option(None, optional_text)
    """How the window becomes one number (see ``AGGREGATIONS``); ``load_config`` fills in the
    kind's default, ``None`` means it when a rule is built in code."""
    window: float = option(60.0, duration)
    """Seconds of data the aggregation reads."""
    for_: float = option(0.0, delay)
    """Seconds the condition must hold before the alert fires (configuration key ``for``)."""
    keep_firing_for: float = option(0.0, delay)
    """Seconds the alert keeps firing after the condition clears."""
    repeat_interval: float = option(3600.0, duration)
    """Seconds between repeated notifications while the alert fires."""
    scale: float = 1.0
    """Not a configuration key: the evaluator multiplies the metric by this before comparing
    (1000 for FluxStack's millisecond alias of a metric in seconds)."""


class LogNotifierConfig(Frozen):
    """Alerts logged by the ``fluxstack_otel`` logger, at a level that follows their severity."""

    type: ClassVar[Literal["log"]] = "log"


class WebhookNotifierConfig(Frozen):
    """Alerts POSTed as JSON to ``url``, with retries."""

    type: ClassVar[Literal["webhook"]] = "webhook"
    url: str = field(metadata={CHECK: text("an http:// or https:// URL", is_url)})
    """The URL the notifications are POSTed to (required)."""
    timeout: float = option(5.0, duration)
    """Seconds one POST may take."""
    headers: tuple[tuple[str, str], ...] = option((), headers)
    """Extra HTTP headers as (name, value) pairs; ``repr`` masks the values."""

    def __repr__(self) -> str:
        return masked_repr(self)


class AlertmanagerNotifierConfig(Frozen):
    """Alerts sent to a Prometheus Alertmanager's ``/api/v2/alerts``."""

    type: ClassVar[Literal["alertmanager"]] = "alertmanager"
    url: str = field(metadata={CHECK: text("an http:// or https:// URL", is_url)})
    """The Alertmanager's base URL, such as ``http://alertmanager:9093`` (required)."""
    timeout: float = option(5.0, duration)
    """Seconds one POST may take."""


NotifierConfig: TypeAlias = LogNotifierConfig | WebhookNotifierConfig | AlertmanagerNotifierConfig
_NOTIFIERS: dict[str, type[NotifierConfig]] = {
    c.type: c for c in (LogNotifierConfig, WebhookNotifierConfig, AlertmanagerNotifierConfig)
}


def parse_alerts(value: object, path: str, camel: bool) -> tuple[AlertRule, ...]:
    """The ``alerts`` list, each rule checked against the catalogue."""
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


def parse_notifiers(value: object, path: str, camel: bool) -> tuple[NotifierConfig, ...]:
    """The ``notifiers`` list: each entry by its ``type``."""
    return tuple(
        _notifier(item, f"{path}[{i}]", camel) for i, item in enumerate(items(value, path))
    )


def _notifier(value: object, path: str, camel: bool) -> NotifierConfig:
    raw = entries(value, path)
    kind = entry_type(raw, _NOTIFIERS, path, camel)
    return build(_NOTIFIERS[kind], raw, path, camel, {"type": lambda *_: None})
