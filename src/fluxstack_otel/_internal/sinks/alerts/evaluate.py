"""Alert evaluation: a pure function of rules, a history of snapshots, states and a clock reading.

No I/O, no threads, no clock of its own: the processor (or a test) supplies everything.

Windows. For a rule with window ``w`` evaluated at the newest sample (time ``t``), the
*baseline* is the newest older sample taken at or before ``t - w``; when the history does not
reach that far back yet, the oldest older sample. Rates are ``(now - baseline) / elapsed``;
histogram aggregations read the bucket counts added between baseline and now. A series absent
from the baseline, or restarted since (new start time, or a value that went down), counts from
zero. Picking the sample at or before the window start (rather than the oldest one inside it)
keeps a rule with ``window == interval`` working despite timer jitter, and makes a window
shorter than the evaluation interval mean "since the previous evaluation".

No data. An instance with no value (no baseline yet, no observation in the window, 0/0) is
treated like a false condition, as Prometheus treats a series missing from a rule's result: a
pending alert goes back to inactive, a firing one resolves once ``keep_firing_for`` has passed.

Lifecycle per instance (a rule and one label set): inactive -> pending (condition holds) ->
firing (it held for ``for``; notify) -> resolved (it stopped holding for ``keep_firing_for``;
notify once, forget). While firing, a notification repeats every ``repeat_interval``.
"""

from __future__ import annotations

import math
import operator as op
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, NamedTuple, TypeAlias

from fluxstack_otel._internal.metrics.catalog import Kind
from fluxstack_otel._internal.metrics.exponential import (
    DEFAULT_MAX_SIZE,
    merged,
    quantile,
    subtracted,
)
from fluxstack_otel._internal.metrics.quantile import histogram_quantile
from fluxstack_otel._internal.sinks.alerts.alert import Alert
from fluxstack_otel._internal.sinks.alerts.rules import (
    QUANTILES,
    Labels,
    Ratio,
    Rule,
    Select,
    render_message,
)
from fluxstack_otel._internal.sinks.alerts.snapshot import (
    HistogramPoint,
    NumberPoint,
    Point,
    Sample,
    Snapshot,
)

__all__ = ["Evaluation", "InstanceKey", "InstanceState", "active_alerts", "evaluate"]

InstanceKey: TypeAlias = tuple[int, Labels]
"""(index of the rule, label set of the series)."""

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": op.gt,
    ">=": op.ge,
    "<": op.lt,
    "<=": op.le,
    "==": op.eq,
    "!=": op.ne,
}


class InstanceState(NamedTuple):
    """What the evaluator remembers about one pending or firing instance."""

    state: Literal["pending", "firing"]
    value: float
    active_at: float
    fired_at: float | None = None
    notified_at: float | None = None
    keep_firing_since: float | None = None


class Evaluation(NamedTuple):
    """The result of one evaluation.

    Attributes:
        states: The pending and firing instances; inactive and resolved ones are left out.
        events: The notifications due now: new and repeated ``firing`` alerts and ``resolved``
            ones, in rule order.
    """

    states: dict[InstanceKey, InstanceState]
    events: tuple[Alert, ...]


def evaluate(
    rules: Sequence[Rule],
    history: Sequence[Sample],
    states: Mapping[InstanceKey, InstanceState],
    now: float,
) -> Evaluation:
    """Evaluate every rule at the newest sample of ``history``.

    Args:
        rules: The compiled rules; an instance is keyed by its rule's index here.
        history: Samples in time order; the last one is the present.
        states: The previous evaluation's ``states``.
        now: The clock reading (Unix seconds) stamped on state changes and notifications.

    Returns:
        The new states and the notifications due.
    """
    new_states: dict[InstanceKey, InstanceState] = {}
    events: list[Alert] = []
    for index, rule in enumerate(rules):
        values = values_of(rule, history) if history else {}
        keys = {labels for (i, labels) in states if i == index} | values.keys()
        for labels in sorted(keys):
            key = (index, labels)
            state, event = _step(rule, labels, states.get(key), values.get(labels), now)
            if state is not None:
                new_states[key] = state
            if event is not None:
                events.append(event)
    return Evaluation(new_states, tuple(events))


def active_alerts(
    rules: Sequence[Rule], states: Mapping[InstanceKey, InstanceState]
) -> list[Alert]:
    """The pending and firing alerts of ``states``, in rule and label order."""
    return [
        _alert(rules[index], labels, s, s.state, s.value)
        for (index, labels), s in sorted(states.items(), key=lambda item: item[0])
    ]


def _step(
    rule: Rule,
    labels: Labels,
    prev: InstanceState | None,
    value: float | None,
    now: float,
) -> tuple[InstanceState | None, Alert | None]:
    if value is not None and _COMPARE[rule.operator](value, rule.threshold):
        if prev is None or prev.state == "pending":
            active_at = now if prev is None else prev.active_at
            if now - active_at < rule.for_:
                return InstanceState(state="pending", value=value, active_at=active_at), None
            fired = InstanceState(
                state="firing", value=value, active_at=active_at, fired_at=now, notified_at=now
            )
            return fired, _alert(rule, labels, fired, "firing", value)
        return _still_firing(rule, labels, prev._replace(value=value, keep_firing_since=None), now)
    if prev is None or prev.state == "pending":
        return None, None
    last = prev.value if value is None else value
    since = now if prev.keep_firing_since is None else prev.keep_firing_since
    if now - since >= rule.keep_firing_for:
        ended = prev._replace(value=last)
        return None, _alert(rule, labels, ended, "resolved", last, ended_at=now)
    return _still_firing(rule, labels, prev._replace(value=last, keep_firing_since=since), now)


def _still_firing(
    rule: Rule, labels: Labels, state: InstanceState, now: float
) -> tuple[InstanceState, Alert | None]:
    notified = state.notified_at if state.notified_at is not None else now
    if now - notified < rule.repeat_interval:
        return state, None
    state = state._replace(notified_at=now)
    return state, _alert(rule, labels, state, "firing", state.value, repeat=True)


def _alert(
    rule: Rule,
    labels: Labels,
    state: InstanceState,
    kind: Literal["pending", "firing", "resolved"],
    value: float,
    *,
    ended_at: float | None = None,
    repeat: bool = False,
) -> Alert:
    label_map = dict(labels)
    return Alert(
        name=rule.name,
        state=kind,
        severity=rule.severity,
        value=value,
        threshold=rule.threshold,
        operator=rule.operator,
        labels=label_map,
        message=render_message(rule, value, label_map),
        subject=rule.subject,
        active_at=state.active_at,
        started_at=state.fired_at,
        ended_at=ended_at,
        repeat=repeat,
    )


# --- values ---------------------------------------------------------------------------------


def values_of(rule: Rule, history: Sequence[Sample]) -> dict[Labels, float]:
    """The rule's scaled value per instance at the newest sample; instances without data absent.

    Args:
        rule: The rule.
        history: Samples in time order, at least one.
    """
    current = history[-1]
    base = baseline(history, rule.window)
    base_snapshot = base.snapshot if base is not None and current.time > base.time else None

    def elapsed(metric: str) -> float:
        # Between the two readings of this metric, whatever the collection took around them.
        return current.time_of(metric) - base.time_of(metric) if base is not None else 0.0

    expr = rule.expr
    if isinstance(expr, Select):
        values = _select(expr, current.snapshot, base_snapshot, elapsed)
    else:
        values = _ratio(expr, current.snapshot, base_snapshot, elapsed)
    # NaN is no data: it must not satisfy "!=".
    return {labels: v * rule.scale for labels, v in values.items() if not math.isnan(v)}


def baseline(history: Sequence[Sample], window: float) -> Sample | None:
    """The sample a window is measured from (see the module docstring), or None."""
    if len(history) < 2:
        return None
    start = history[-1].time - window
    found = history[0]
    for sample in history[1:-1]:
        if sample.time > start:
            break
        found = sample
    return found


def _ratio(
    expr: Ratio, current: Snapshot, base: Snapshot | None, elapsed: Callable[[str], float]
) -> dict[Labels, float]:
    num = _select(expr.numerator, current, base, elapsed).get(())
    den = _select(expr.denominator, current, base, elapsed).get(())
    if num is None or den is None or den == 0:
        return {}
    return {(): num / den}


def _select(
    sel: Select, current: Snapshot, base: Snapshot | None, elapsed: Callable[[str], float]
) -> dict[Labels, float]:
    name = sel.metric.name
    series = {
        labels: point
        for labels, point in current.get(name, {}).items()
        if all(pair in labels for pair in sel.labels)
    }
    if sel.aggregation == "value":
        values = {k: p.value for k, p in series.items() if isinstance(p, NumberPoint)}
        if sel.by_series:
            return values
        return {(): sum(values.values())} if values else {}
    if base is None:
        return {}
    before = base.get(name, {})
    if sel.metric.kind is Kind.COUNTER:
        seconds = elapsed(name)
        if seconds <= 0:
            return {}
        rates = {
            k: _increase(p, before.get(k)) / seconds
            for k, p in series.items()
            if isinstance(p, NumberPoint)
        }
        # Summed over no series a counter has simply not increased: 0, not "no data".
        return rates if sel.by_series else {(): sum(rates.values())}
    deltas = {
        k: _delta(p, before.get(k)) for k, p in series.items() if isinstance(p, HistogramPoint)
    }
    if sel.by_series:
        out = {k: _reduce(sel.aggregation, d) for k, d in deltas.items()}
        return {k: v for k, v in out.items() if v is not None}
    merged = _merge(list(deltas.values()))
    value = _reduce(sel.aggregation, merged) if merged is not None else None
    return {} if value is None else {(): value}


def _increase(now: NumberPoint, before: Point | None) -> float:
    if (
        not isinstance(before, NumberPoint)
        or before.start_ns != now.start_ns
        or now.value < before.value
    ):
        return now.value  # new or restarted since the baseline: it counted from zero
    return now.value - before.value


def _delta(now: HistogramPoint, before: Point | None) -> HistogramPoint:
    if (
        not isinstance(before, HistogramPoint)
        or before.start_ns != now.start_ns
        or before.bounds != now.bounds
        or any(a < b for a, b in zip(now.counts, before.counts, strict=True))
    ):
        return now
    counts = tuple(a - b for a, b in zip(now.counts, before.counts, strict=True))
    exp = None
    if now.exponential is not None and before.exponential is not None:
        exp = subtracted(now.exponential, before.exponential)
    return HistogramPoint(counts, now.bounds, now.sum - before.sum, now.start_ns, exp)


def _merge(points: list[HistogramPoint]) -> HistogramPoint | None:
    if not points:
        return None
    # Series of one histogram share their bounds; a series with other bounds (a config
    # change mid-run) cannot be added bucket by bucket and is left out.
    bounds = points[0].bounds
    same = [p for p in points if p.bounds == bounds]
    counts = tuple(sum(column) for column in zip(*(p.counts for p in same), strict=True))
    exp = same[0].exponential
    for p in same[1:]:
        exp = (
            None
            if exp is None or p.exponential is None
            else merged(exp, p.exponential, DEFAULT_MAX_SIZE)
        )
    return HistogramPoint(counts, bounds, sum(p.sum for p in same), 0, exp)


def _reduce(aggregation: str, point: HistogramPoint) -> float | None:
    count = point.observations
    if count <= 0 or not point.bounds:
        return None
    if aggregation == "mean":
        return point.sum / count
    if aggregation == "max_bucket":
        # The upper bound of the highest non-empty bucket; for the +Inf bucket the highest
        # finite bound, which is what PromQL's histogram_quantile(1, ...) answers, so the
        # exported rule agrees.
        top = max(i for i, n in enumerate(point.counts) if n > 0)
        return point.bounds[min(top, len(point.bounds) - 1)]
    if point.exponential is not None and point.exponential.observations == count:
        # Finer than the classic buckets: read in the exponential ones (docs/alerts.md).
        value = quantile(point.exponential, QUANTILES[aggregation])
    else:
        value = histogram_quantile(QUANTILES[aggregation], point.bounds, point.counts)
    return None if math.isnan(value) else value
