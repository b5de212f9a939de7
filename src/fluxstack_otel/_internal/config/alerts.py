"""The alert rules and notifiers of the configuration, and their parsers.

Part of the configuration model (``_config`` re-exports every name); the generic checks come
from ``_config_parse``. A rule is checked against the catalogue here: its metric (a built-in, an
alias, or a custom instrument with its ``kind``), aggregation and label keys.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import ClassVar, Literal, TypeAlias

from fluxstack_otel._internal.config.checks import (
    CHECK,
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
    optional_text,
    suggest,
    text,
)
from fluxstack_otel._internal.config.fields import build, option, validate
from fluxstack_otel._internal.metrics.catalog import (
    ALERT_ALIASES,
    METRICS_BY_NAME,
    Kind,
    MetricSpec,
)
from fluxstack_otel.errors import ConfigError

__all__ = [
    "AGGREGATIONS",
    "TEMPLATE_FIELDS",
    "AlertRule",
    "AlertmanagerNotifierConfig",
    "LogNotifierConfig",
    "NotifierConfig",
    "WebhookNotifierConfig",
    "custom_metric_spec",
    "parse_alerts",
    "parse_notifiers",
    "rule_spec",
]

AGGREGATIONS: dict[Kind, tuple[str, ...]] = {
    Kind.COUNTER: ("rate", "value"),
    Kind.HISTOGRAM: ("p95", "mean", "p50", "p90", "p99", "max_bucket"),
    Kind.GAUGE: ("value",),
}
"""How an alert rule may reduce a metric's window to one number, per kind; the first is the
default."""


TEMPLATE_FIELDS = ("name", "value", "threshold", "operator", "severity", "subject", "labels")
"""The fields an alert's ``message`` template may use, besides the metric's label keys."""

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


@dataclass(frozen=True, kw_only=True)
class AlertRule:
    """One alert: it fires while ``aggregation(metric) * scale`` compares true with ``value``."""

    metric: str = field(metadata={CHECK: _alert_metric})
    """The metric read: a built-in (an alias is stored as its target's name, its factor in
    ``scale``), or a custom metric's instrument name, which then needs ``kind``."""
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
    """How the window becomes one number (see ``AGGREGATIONS``); ``None`` is replaced by the
    kind's default when the rule is constructed."""
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

    def __post_init__(self) -> None:
        validate(self)
        _check_rule(self)


@dataclass(frozen=True, kw_only=True)
class LogNotifierConfig:
    """Alerts logged by the ``fluxstack_otel`` logger, at a level that follows their severity."""

    type: ClassVar[Literal["log"]] = "log"

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True, kw_only=True, repr=False)  # its own __repr__ masks secrets
class WebhookNotifierConfig:
    """Alerts POSTed as JSON to ``url``, with retries."""

    type: ClassVar[Literal["webhook"]] = "webhook"
    url: str = field(metadata={CHECK: text("an http:// or https:// URL", is_url)})
    """The URL the notifications are POSTed to (required)."""
    timeout: float = option(5.0, duration)
    """Seconds one POST may take."""
    headers: tuple[tuple[str, str], ...] = option((), headers)
    """Extra HTTP headers as (name, value) pairs; ``repr`` masks the values."""

    def __post_init__(self) -> None:
        validate(self)

    def __repr__(self) -> str:
        return masked_repr(self)


@dataclass(frozen=True, kw_only=True, repr=False)  # its own __repr__ masks secrets
class AlertmanagerNotifierConfig:
    """Alerts sent to a Prometheus Alertmanager's ``/api/v2/alerts``."""

    type: ClassVar[Literal["alertmanager"]] = "alertmanager"
    url: str = field(metadata={CHECK: text("an http:// or https:// URL", is_url)})
    """The Alertmanager's base URL, such as ``http://alertmanager:9093`` (required)."""
    timeout: float = option(5.0, duration)
    """Seconds one POST may take."""

    def __post_init__(self) -> None:
        validate(self)

    def __repr__(self) -> str:
        return masked_repr(self)


NotifierConfig: TypeAlias = LogNotifierConfig | WebhookNotifierConfig | AlertmanagerNotifierConfig
_NOTIFIERS: dict[str, type[NotifierConfig]] = {
    c.type: c for c in (LogNotifierConfig, WebhookNotifierConfig, AlertmanagerNotifierConfig)
}


def parse_alerts(value: object, path: str, camel: bool) -> tuple[AlertRule, ...]:
    """The ``alerts`` list, each rule checked against the catalogue (``AlertRule`` itself)."""
    return tuple(_alert(item, f"{path}[{i}]", camel) for i, item in enumerate(items(value, path)))


def _alert(value: object, path: str, camel: bool) -> AlertRule:
    return build(AlertRule, value, path, camel)


def rule_spec(rule: AlertRule) -> MetricSpec:
    """The catalogue metric a (validated) rule reads: a built-in, or its custom metric's."""
    builtin = METRICS_BY_NAME.get(rule.metric)
    return builtin if builtin is not None else custom_metric_spec(rule)


def _check_rule(rule: AlertRule) -> None:
    """The rules across a rule's keys, and its normal form: an alias becomes its target's name
    with its scale, ``aggregation`` gets the kind's default. Idempotent, so ``replace`` works."""
    alias = ALERT_ALIASES.get(rule.metric)
    builtin = alias.target if alias is not None else METRICS_BY_NAME.get(rule.metric)
    if builtin is None:
        if rule.kind is None:
            known = [*METRICS_BY_NAME, *ALERT_ALIASES]
            raise fail(
                "metric",
                "a built-in metric or alias, or a custom metric with 'kind' "
                "('counter', 'gauge' or 'histogram')",
                rule.metric,
                suggest(rule.metric, known),
            )
        spec = custom_metric_spec(rule)
    else:
        spec = builtin
        if rule.kind is not None and rule.kind != spec.kind:
            raise fail("kind", f"{spec.kind.value!r} for {spec.name!r}", rule.kind)
    allowed = AGGREGATIONS[spec.kind]
    aggregation = allowed[0] if rule.aggregation is None else rule.aggregation
    if aggregation not in allowed:
        names = ", ".join(map(repr, allowed))
        hint = suggest(aggregation, list(allowed))
        raise fail("aggregation", f"one of {names} (for a {spec.kind})", aggregation, hint)
    for key, _ in rule.labels:
        if key not in spec.labels:
            names = ", ".join(map(repr, spec.labels)) or "none"
            raise ConfigError(
                f"unknown label {key!r} for {rule.metric!r}{suggest(key, list(spec.labels))};"
                f" allowed labels: {names}",
                path=join("labels", key),
            )
    if rule.message is not None:
        _check_template(rule.message, spec.labels, "message")
    setter = object.__setattr__
    setter(rule, "metric", spec.name)
    setter(rule, "aggregation", aggregation)
    if alias is not None:
        setter(rule, "scale", rule.scale * alias.scale)


def _check_template(template: str, label_keys: tuple[str, ...], path: str) -> None:
    allowed = (*TEMPLATE_FIELDS, *label_keys)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"not a valid template: {exc} (in {template!r})", path=path) from None
    for _, field_name, _, _ in parsed:
        if field_name is None:
            continue
        head = re.split(r"[.\[]", field_name, maxsplit=1)[0]
        if head not in allowed:
            raise ConfigError(
                f"unknown field {{{field_name}}} in {template!r}{suggest(head, list(allowed))};"
                f" allowed fields: {', '.join(allowed)}",
                path=path,
            )
        if head == "labels" and field_name != "labels":
            key = field_name.removeprefix("labels[").removesuffix("]")
            if not field_name.startswith("labels[") or key not in label_keys:
                raise ConfigError(
                    f"{{{field_name}}} in {template!r} names no label of the metric;"
                    f" labels: {', '.join(label_keys) or 'none'}",
                    path=path,
                )
    sample: dict[str, object] = _Sample(dict.fromkeys(label_keys, "x"))
    sample.update(
        name="n",
        value=1.5,
        threshold=1.0,
        operator=">",
        severity="info",
        subject="s",
        labels=_Sample(sample),
    )
    try:
        template.format_map(sample)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ConfigError(
            f"cannot render {template!r}: {type(exc).__name__}: {exc}", path=path
        ) from None


class _Sample(dict[str, object]):
    """Template fields of the test render; a label the series does not carry renders empty."""

    def __missing__(self, key: str) -> str:
        return ""


def parse_notifiers(value: object, path: str, camel: bool) -> tuple[NotifierConfig, ...]:
    """The ``notifiers`` list: each entry by its ``type``."""
    return tuple(
        _notifier(item, f"{path}[{i}]", camel) for i, item in enumerate(items(value, path))
    )


def _notifier(value: object, path: str, camel: bool) -> NotifierConfig:
    if isinstance(value, LogNotifierConfig | WebhookNotifierConfig | AlertmanagerNotifierConfig):
        return value
    raw = entries(value, path)
    kind = entry_type(raw, _NOTIFIERS, path, camel)
    return build(_NOTIFIERS[kind], raw, path, camel, {"type": lambda *_: None})
