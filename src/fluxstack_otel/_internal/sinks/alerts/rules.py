"""Alert rules as the evaluator and the PromQL export read them.

``compile_rules`` turns the configuration into ``Rule`` objects: one per configured alert (read
per series) and one per enabled FluxStack threshold (``HighResponseTime``, ``HighErrorRate``,
``HighMemoryUsage``, ``HighCpuUsage``), which read several series or metrics at once. An
expression is a small closed set of nodes, ``Select`` and ``Ratio``, so the evaluator and the
PromQL export each handle every rule the same way and cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple, TypeAlias

from fluxstack_otel._internal.config.alerts import AlertRule, rule_spec
from fluxstack_otel._internal.config.model import MonitoringConfig
from fluxstack_otel._internal.metrics import catalog as cat

__all__ = [
    "QUANTILES",
    "Expr",
    "Labels",
    "Ratio",
    "Rule",
    "Select",
    "compile_rules",
    "render_message",
    "template_fields",
    "threshold_window",
]

Labels: TypeAlias = tuple[tuple[str, str], ...]
"""A label set as sorted (key, value) pairs: hashable, and one spelling per set."""

QUANTILES: dict[str, float] = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}

_OPERATOR_WORDS = {">": "gt", ">=": "ge", "<": "lt", "<=": "le", "==": "eq", "!=": "ne"}


class Select(NamedTuple):
    """One metric reduced over the window.

    Attributes:
        metric: The catalogue metric read.
        aggregation: ``value`` or ``rate`` (counters), ``value`` (gauges), ``mean``, ``p50``..
            ``p99`` or ``max_bucket`` (histograms).
        labels: Only series carrying these label values count.
        by_series: One result per series; False sums every matching series into one result.
    """

    metric: cat.MetricSpec
    aggregation: str
    labels: Labels = ()
    by_series: bool = True


class Ratio(NamedTuple):
    """``numerator / denominator`` of two single-result selections (no result when 0/0)."""

    numerator: Select
    denominator: Select


Expr: TypeAlias = Select | Ratio


class Rule(NamedTuple):
    """One compiled alert rule: fires while ``expr * scale`` compares true with ``threshold``.

    Attributes:
        name: The alert name.
        expr: What is evaluated.
        scale: Multiplies the expression's result (1000 for milliseconds of a metric in seconds,
            for a FluxStack milliseconds alias).
        operator: One of ``>``, ``>=``, ``<``, ``<=``, ``==``, ``!=``.
        threshold: The value compared with.
        severity: ``info``, ``warning``, ``error`` or ``critical``.
        message: A ``str.format`` template (fields: name, value, threshold, operator, severity,
            subject, labels, and each label key of the metric).
        subject: What is compared, for people (``http_request_duration_ms p95``).
        window: Seconds of data rates and histogram aggregations read.
        for_: Seconds the condition must hold before the alert fires.
        keep_firing_for: Seconds the alert keeps firing after the condition stops holding.
        repeat_interval: Seconds between notifications while it fires.
        builtin: True for a rule made from ``thresholds``.
    """

    name: str
    expr: Expr
    operator: str
    threshold: float
    severity: str
    message: str
    subject: str
    window: float
    scale: float = 1.0
    for_: float = 0.0
    keep_firing_for: float = 0.0
    repeat_interval: float = 3600.0
    builtin: bool = False

    @property
    def label_keys(self) -> tuple[str, ...]:
        """The label keys an instance of this rule can carry."""
        return self.expr.metric.labels if isinstance(self.expr, Select) else ()

    @property
    def metrics(self) -> tuple[cat.MetricSpec, ...]:
        """The catalogue metrics the rule reads."""
        if isinstance(self.expr, Select):
            return (self.expr.metric,)
        return (self.expr.numerator.metric, self.expr.denominator.metric)


def threshold_window(config: MonitoringConfig) -> float:
    """The window of the built-in threshold rules: a minute, or two evaluation intervals."""
    return max(60.0, 2 * config.alert_evaluation_interval)


def compile_rules(config: MonitoringConfig) -> tuple[Rule, ...]:
    """The rules a configuration asks for: its alerts, then its enabled thresholds.

    Every ``AlertRule`` was checked against the catalogue when it was constructed (its metric,
    kind, aggregation, labels and message template), so compiling cannot fail.

    Args:
        config: The validated configuration.

    Returns:
        The rules, configured alerts first, in configuration order.
    """
    rules = [_user_rule(rule) for rule in config.alerts]
    rules.extend(_threshold_rules(config))
    return tuple(rules)


def _user_rule(rule: AlertRule) -> Rule:
    spec, scale, aggregation = rule_spec(rule), rule.scale, rule.aggregation or "value"
    display = next(
        (n for n, a in cat.ALERT_ALIASES.items() if a.target == spec and a.scale == scale),
        spec.name,
    )
    subject = display if aggregation == "value" else f"{display} {aggregation}"
    over = "" if aggregation == "value" else f" over {rule.window:g}s"
    message = rule.message or f"{subject}{over} is {{value:.4g}} ({{operator}} {{threshold:g}})"
    name = rule.name or _derived_name(display, aggregation, rule.operator, rule.value)
    return Rule(
        name=name,
        expr=Select(spec, aggregation, tuple(sorted(rule.labels))),
        scale=scale,
        operator=rule.operator,
        threshold=rule.value,
        severity=rule.severity,
        message=message,
        subject=subject,
        window=rule.window,
        for_=rule.for_,
        keep_firing_for=rule.keep_firing_for,
        repeat_interval=rule.repeat_interval,
    )


def _derived_name(metric: str, aggregation: str, operator: str, value: float) -> str:
    raw = f"{metric}_{aggregation}_{_OPERATOR_WORDS[operator]}_{value:g}"
    return re.sub(r"[^a-zA-Z0-9_]", "_", raw)


class _Builtin(NamedTuple):
    """One FluxStack threshold: the ``Thresholds`` field that sets it and the rule it becomes."""

    field: str
    name: str
    expr: Expr
    severity: str
    message: str
    scale: float = 1.0


def _total(metric: cat.MetricSpec, aggregation: str) -> Select:
    return Select(metric, aggregation, by_series=False)


_BUILTINS: tuple[_Builtin, ...] = (
    _Builtin(
        "response_time",
        "HighResponseTime",
        _total(cat.HTTP_REQUEST_DURATION, "p95"),
        "warning",
        "p95 response time is {value:.0f} ms (threshold {threshold:g} ms)",
        scale=1000.0,
    ),
    _Builtin(
        "error_rate",
        "HighErrorRate",
        Ratio(_total(cat.HTTP_ERRORS, "rate"), _total(cat.HTTP_REQUESTS, "rate")),
        "error",
        "error rate is {value:.2%} of requests (threshold {threshold:.2%})",
    ),
    _Builtin(
        "memory_usage",
        "HighMemoryUsage",
        Ratio(_total(cat.PROCESS_RSS, "value"), _total(cat.SYSTEM_MEMORY_TOTAL, "value")),
        "warning",
        "memory usage is {value:.1%} of system memory (threshold {threshold:.1%})",
    ),
    # Over the CPU count the app's host reports (system_cpu_cores), not a number fixed here:
    # the same rule, exported as PromQL, stays true on every host it runs on.
    _Builtin(
        "cpu_usage",
        "HighCpuUsage",
        Ratio(_total(cat.PROCESS_CPU_USER, "rate"), _total(cat.SYSTEM_CPU_CORES, "value")),
        "warning",
        "CPU usage is {value:.1%} of the available CPUs (threshold {threshold:.1%})",
    ),
)


def _threshold_rules(config: MonitoringConfig) -> list[Rule]:
    window = threshold_window(config)
    rules: list[Rule] = []
    for b in _BUILTINS:
        value: float | None = getattr(config.thresholds, b.field)
        if value is None:
            continue
        # Scaled thresholds are rounded so 0.3 s reads 300 ms, not 300.00000000000006.
        threshold = value if b.scale == 1.0 else round(value * b.scale, 6)
        rules.append(
            Rule(
                name=b.name,
                expr=b.expr,
                operator=">",
                threshold=threshold,
                severity=b.severity,
                message=b.message,
                subject=b.message.split(" is ", 1)[0],
                window=window,
                scale=b.scale,
                builtin=True,
            )
        )
    return rules


# --- message templates ----------------------------------------------------------------------


class _Fields(dict[str, object]):
    """Template fields; a label the series does not carry renders empty."""

    def __missing__(self, key: str) -> str:
        return ""


def render_message(rule: Rule, value: float, labels: Mapping[str, str]) -> str:
    """The rule's message for one value and series; never raises.

    A template that fails at run time (it was checked when the rule was compiled, so only an
    exotic value can do this) falls back to a plain sentence rather than losing the alert.
    """
    try:
        return rule.message.format_map(template_fields(rule, value, labels))
    except Exception:
        return f"{rule.subject} is {value!r} ({rule.operator} {rule.threshold!r})"


def template_fields(rule: Rule, value: float, labels: Mapping[str, str]) -> dict[str, object]:
    """The fields a message template may use; a label the series lacks renders empty."""
    fields = _Fields(labels)
    fields.update(
        name=rule.name,
        value=value,
        threshold=rule.threshold,
        operator=rule.operator,
        severity=rule.severity,
        subject=rule.subject,
        labels=_Fields(labels),
    )
    return fields
