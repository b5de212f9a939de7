"""Pure alert evaluation with an injected clock: lifecycle, windows, rates, quantiles, series."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxstack_otel._internal.config.model import load_config
from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.metrics.quantile import histogram_quantile
from fluxstack_otel._internal.sinks.alerts.evaluate import (
    InstanceKey,
    InstanceState,
    active_alerts,
    baseline,
    evaluate,
    values_of,
)
from fluxstack_otel._internal.sinks.alerts.rules import Labels
from fluxstack_otel._internal.sinks.alerts.snapshot import (
    HistogramPoint,
    NumberPoint,
    Point,
    Sample,
)
from fluxstack_otel.alerts import Alert, Rule, compile_rules
from support.configs import NO_THRESHOLDS

BOUNDS = (0.1, 0.5, 1.0)
GET_A: Labels = (("method", "GET"), ("route", "/a"))
GET_B: Labels = (("method", "GET"), ("route", "/b"))
DUR_A: Labels = (*GET_A, ("status_code", "200"))
DUR_B: Labels = (*GET_B, ("status_code", "200"))
RSS = cat.PROCESS_RSS.name
REQUESTS = cat.HTTP_REQUESTS.name
ERRORS = cat.HTTP_ERRORS.name
DURATION = cat.HTTP_REQUEST_DURATION.name


def rule(**alert: Any) -> Rule:
    """One configured alert rule, compiled as the processor compiles it."""
    config = load_config({"alerts": [alert], "thresholds": NO_THRESHOLDS})
    (compiled,) = compile_rules(config)
    return compiled


def gauge_rule(**extra: Any) -> Rule:
    return rule(metric=RSS, operator=">", value=100, severity="warning", **extra)


def threshold_rules(**thresholds: Any) -> dict[str, Rule]:
    config = load_config(
        {"thresholds": {**NO_THRESHOLDS, **thresholds}, "alert_evaluation_interval": 10}
    )
    return {r.name: r for r in compile_rules(config)}


def hist(*counts: int, start: int = 1, bounds: tuple[float, ...] = BOUNDS) -> HistogramPoint:
    """A cumulative histogram point; ``counts`` per bucket, the last one +Inf."""
    return HistogramPoint(tuple(counts), bounds, 0.0, start)


class Run:
    """Feeds snapshots to the evaluator one tick at a time, as the processor does."""

    def __init__(self, *rules: Rule) -> None:
        self.rules = rules
        self.history: list[Sample] = []
        self.states: dict[InstanceKey, InstanceState] = {}

    def at(self, t: float, **metrics: dict[Labels, Point]) -> list[Alert]:
        self.history.append(Sample(t, metrics))
        result = evaluate(self.rules, self.history, self.states, t)
        self.states = result.states
        return list(result.events)

    def gauge(self, t: float, value: float | None) -> list[Alert]:
        return self.at(t, **({} if value is None else {RSS: {(): NumberPoint(value)}}))

    def alerts(self) -> list[Alert]:
        return active_alerts(self.rules, self.states)


def kinds(events: list[Alert]) -> list[str]:
    return [e.state + (" repeat" if e.repeat else "") for e in events]


# --- lifecycle ------------------------------------------------------------------------------


def test_without_for_a_true_condition_fires_at_once_and_notifies_once() -> None:
    """With for = 0 the first true evaluation fires; later true evaluations stay silent."""
    run = Run(gauge_rule())
    assert run.gauge(0, 50) == []
    (event,) = run.gauge(10, 150)
    assert (event.state, event.value, event.threshold, event.started_at) == ("firing", 150, 100, 10)
    assert run.gauge(20, 160) == []
    (current,) = run.alerts()
    assert (current.state, current.value, current.started_at) == ("firing", 160, 10)


def test_for_keeps_the_alert_pending_until_the_condition_held_long_enough() -> None:
    """An alert is pending while the condition holds for less than ``for``, then fires."""
    run = Run(gauge_rule(**{"for": 30}))
    assert run.gauge(0, 150) == []
    assert [a.state for a in run.alerts()] == ["pending"]
    assert run.gauge(20, 150) == []
    (event,) = run.gauge(30, 150)
    assert (event.state, event.active_at, event.started_at) == ("firing", 0, 30)


def test_a_pending_alert_that_stops_holding_goes_back_to_inactive_silently() -> None:
    """A condition that stops before ``for`` has passed produces no notification at all."""
    run = Run(gauge_rule(**{"for": 30}))
    run.gauge(0, 150)
    assert run.gauge(20, 50) == []
    assert run.alerts() == []
    assert run.gauge(40, 150) == []  # pending again, counted from 40
    assert run.gauge(60, 150) == []
    assert kinds(run.gauge(70, 150)) == ["firing"]


def test_a_firing_alert_resolves_once_when_the_condition_stops() -> None:
    """Without keep_firing_for, the first false evaluation resolves and notifies once."""
    run = Run(gauge_rule())
    run.gauge(0, 150)
    (event,) = run.gauge(10, 40)
    assert (event.state, event.value, event.started_at, event.ended_at) == (
        "resolved",
        40,
        0,
        10,
    )
    assert run.alerts() == []
    assert run.gauge(20, 40) == []


def test_keep_firing_for_delays_resolution_from_the_first_false_evaluation() -> None:
    """keep_firing_for counts from the first false evaluation, as in Prometheus."""
    run = Run(gauge_rule(keep_firing_for=30))
    run.gauge(0, 150)
    assert run.gauge(10, 50) == []
    assert [a.state for a in run.alerts()] == ["firing"]
    assert run.gauge(30, 50) == []
    assert kinds(run.gauge(40, 50)) == ["resolved"]


def test_a_true_evaluation_during_keep_firing_for_restarts_its_count() -> None:
    """The condition holding again cancels the keep-firing countdown."""
    run = Run(gauge_rule(keep_firing_for=30))
    run.gauge(0, 150)
    run.gauge(10, 50)
    run.gauge(30, 150)
    assert run.gauge(50, 50) == []
    assert run.gauge(70, 50) == []
    assert kinds(run.gauge(80, 50)) == ["resolved"]


def test_a_firing_alert_notifies_again_every_repeat_interval() -> None:
    """Re-notifications come once per repeat_interval, marked as repeats."""
    run = Run(gauge_rule(repeat_interval=60))
    assert kinds(run.gauge(0, 150)) == ["firing"]
    assert run.gauge(30, 150) == []
    assert kinds(run.gauge(60, 150)) == ["firing repeat"]
    assert run.gauge(90, 150) == []
    assert kinds(run.gauge(120, 150)) == ["firing repeat"]


def test_an_alert_that_fires_again_after_resolving_is_a_new_instance() -> None:
    """After a resolution the next firing is a first notification with a new start time."""
    run = Run(gauge_rule())
    run.gauge(0, 150)
    run.gauge(10, 50)
    (event,) = run.gauge(20, 150)
    assert (event.state, event.repeat, event.started_at) == ("firing", False, 20)


def test_missing_data_resolves_a_firing_alert_like_an_absent_prometheus_series() -> None:
    """A series that disappears counts as a false condition: it resolves with its last value."""
    run = Run(gauge_rule())
    run.gauge(0, 150)
    (event,) = run.gauge(10, None)
    assert (event.state, event.value) == ("resolved", 150)


def test_missing_data_never_satisfies_not_equal() -> None:
    """No data is not a value: a ``!=`` rule does not fire on it."""
    run = Run(rule(metric=REQUESTS, operator="!=", value=0, severity="info"))
    assert run.at(0) == []
    assert run.at(10) == []


def test_messages_render_value_threshold_and_labels() -> None:
    """The message template sees the value, the threshold and the series labels."""
    r = rule(
        metric=REQUESTS,
        operator=">",
        value=0.5,
        severity="info",
        message="{name}: {value:.1f}/s on {route} ({labels[method]}) > {threshold}",
        name="Busy",
    )
    run = Run(r)
    run.at(0, **{REQUESTS: {GET_A: NumberPoint(0, 1)}})
    (event,) = run.at(10, **{REQUESTS: {GET_A: NumberPoint(20, 1)}})
    assert event.message == "Busy: 2.0/s on /a (GET) > 0.5"
    assert event.labels == {"method": "GET", "route": "/a"}


# --- windows and rates ----------------------------------------------------------------------


def test_rate_is_the_increase_since_the_window_start_per_second() -> None:
    """A counter rate divides the increase since the baseline sample by the time between."""
    run = Run(rule(metric=REQUESTS, operator=">", value=1.5, severity="info", window=60))
    run.at(0, **{REQUESTS: {GET_A: NumberPoint(100, 1)}})
    run.at(30, **{REQUESTS: {GET_A: NumberPoint(110, 1)}})
    (event,) = run.at(60, **{REQUESTS: {GET_A: NumberPoint(220, 1)}})
    assert event.value == pytest.approx(2.0)  # (220 - 100) / 60


def test_baseline_is_the_newest_sample_at_or_before_the_window_start() -> None:
    """The baseline covers the whole window (jitter included), else the oldest sample."""
    history = [Sample(t, {}) for t in (0.0, 30.02, 60.01, 90.03)]
    assert baseline(history, 60).time == 30.02  # 90.03 - 60 = 30.03
    assert baseline(history, 59.99).time == 30.02
    assert baseline(history, 5).time == 60.01  # a window shorter than the interval
    assert baseline(history, 600).time == 0.0  # history shorter than the window
    assert baseline(history[:1], 60) is None


def test_a_restarted_counter_counts_from_zero() -> None:
    """A new start time, or a value that went down, means the counter restarted from zero."""
    run = Run(rule(metric=REQUESTS, operator=">", value=100, severity="info", window=10))
    run.at(0, **{REQUESTS: {GET_A: NumberPoint(5000, 1), GET_B: NumberPoint(5000, 1)}})
    run.at(10, **{REQUESTS: {GET_A: NumberPoint(20, 2), GET_B: NumberPoint(30, 1)}})
    assert run.alerts() == []  # 2/s and 3/s, not (20 - 5000) / 10


def test_a_series_absent_from_the_baseline_counts_from_zero() -> None:
    """A series born inside the window contributes all of its value."""
    run = Run(rule(metric=REQUESTS, operator=">", value=1, severity="info", window=10))
    run.at(0, **{REQUESTS: {}})
    (event,) = run.at(10, **{REQUESTS: {GET_A: NumberPoint(20, 5)}})
    assert event.value == 2


def test_rates_need_two_samples() -> None:
    """The first evaluation has no baseline: a rate has no data yet and nothing fires."""
    run = Run(rule(metric=REQUESTS, operator=">=", value=0, severity="info"))
    assert run.at(0, **{REQUESTS: {GET_A: NumberPoint(100, 1)}}) == []
    assert kinds(run.at(10, **{REQUESTS: {GET_A: NumberPoint(100, 1)}})) == ["firing"]


def test_counter_value_aggregation_reads_the_cumulative_value() -> None:
    """``aggregation: value`` on a counter compares its running total, no window needed."""
    run = Run(rule(metric=REQUESTS, operator=">", value=99, severity="info", aggregation="value"))
    (event,) = run.at(0, **{REQUESTS: {GET_A: NumberPoint(100, 1)}})
    assert event.value == 100


# --- histograms -----------------------------------------------------------------------------


def p95_rule(**extra: Any) -> Rule:
    return rule(
        metric="http_request_duration_ms", operator=">", value=400, severity="critical", **extra
    )


def test_quantiles_read_only_the_observations_inside_the_window() -> None:
    """p95 is interpolated from the bucket counts added during the window, not since start."""
    run = Run(p95_rule(window=10))
    run.at(0, **{DURATION: {DUR_A: hist(0, 0, 100, 0)}})  # 100 slow requests long ago
    run.at(10, **{DURATION: {DUR_A: hist(100, 0, 100, 0)}})  # then 100 fast ones
    assert run.alerts() == []
    assert values_of(run.rules[0], run.history) == {DUR_A: pytest.approx(95.0)}


def test_quantile_value_matches_prometheus_interpolation_in_milliseconds() -> None:
    """The value is histogram_quantile over the window's deltas, times 1000 for the alias."""
    run = Run(p95_rule(window=10))
    run.at(0, **{DURATION: {DUR_A: hist(10, 0, 0, 0)}})
    (event,) = run.at(10, **{DURATION: {DUR_A: hist(10, 5, 15, 0)}})
    expected = histogram_quantile(0.95, BOUNDS, (0, 5, 15, 0)) * 1000
    assert event.value == pytest.approx(expected)
    assert event.value == pytest.approx(966.666, rel=1e-4)


@pytest.mark.parametrize(
    ("aggregation", "counts", "total", "expected"),
    [
        ("p50", (10, 10, 0, 0), 0.0, 0.1),
        ("p99", (0, 0, 10, 0), 0.0, 0.995),
        ("mean", (1, 1, 0, 0), 0.5, 0.25),
        ("max_bucket", (3, 1, 0, 0), 0.0, 0.5),
        ("max_bucket", (3, 0, 0, 2), 0.0, 1.0),  # +Inf bucket: the highest finite bound
    ],
)
def test_histogram_aggregations(
    aggregation: str, counts: tuple[int, ...], total: float, expected: float
) -> None:
    """mean, quantiles and max_bucket reduce the window's buckets as documented."""
    r = rule(metric=DURATION, operator=">=", value=0, severity="info", aggregation=aggregation)
    run = Run(r)
    run.at(0, **{DURATION: {DUR_A: hist(0, 0, 0, 0)}})
    point = HistogramPoint(counts, BOUNDS, total, 1)
    (event,) = run.at(10, **{DURATION: {DUR_A: point}})
    assert event.value == pytest.approx(expected)


def test_a_window_without_observations_has_no_quantile() -> None:
    """No request in the window: no p95, so a firing latency alert resolves."""
    run = Run(p95_rule(window=10))
    run.at(0, **{DURATION: {DUR_A: hist(0, 0, 0, 0)}})
    assert kinds(run.at(10, **{DURATION: {DUR_A: hist(0, 0, 10, 0)}})) == ["firing"]
    assert kinds(run.at(20, **{DURATION: {DUR_A: hist(0, 0, 10, 0)}})) == ["resolved"]


# --- series ---------------------------------------------------------------------------------


def test_each_matching_series_is_its_own_alert_instance() -> None:
    """One instance per label set: the slow route fires, the fast one does not."""
    run = Run(p95_rule(window=10))
    run.at(0, **{DURATION: {DUR_A: hist(0, 0, 0, 0), DUR_B: hist(0, 0, 0, 0)}})
    (event,) = run.at(10, **{DURATION: {DUR_A: hist(0, 0, 9, 0), DUR_B: hist(9, 0, 0, 0)}})
    assert event.labels == dict(DUR_A)
    run.at(20, **{DURATION: {DUR_A: hist(0, 0, 18, 0), DUR_B: hist(9, 0, 9, 0)}})
    assert sorted(a.labels["route"] for a in run.alerts()) == ["/a", "/b"]
    (resolved,) = run.at(30, **{DURATION: {DUR_A: hist(9, 0, 18, 0), DUR_B: hist(9, 0, 18, 0)}})
    assert (resolved.state, resolved.labels["route"]) == ("resolved", "/a")


def test_rule_labels_select_the_series() -> None:
    """A rule with ``labels`` only ever has instances for series carrying those values."""
    run = Run(p95_rule(window=10, labels={"route": "/b"}))
    run.at(0, **{DURATION: {DUR_A: hist(0, 0, 0, 0), DUR_B: hist(0, 0, 0, 0)}})
    (event,) = run.at(10, **{DURATION: {DUR_A: hist(0, 0, 9, 0), DUR_B: hist(0, 0, 9, 0)}})
    assert event.labels["route"] == "/b"


# --- built-in thresholds --------------------------------------------------------------------


def test_response_time_threshold_is_the_p95_of_every_series_in_milliseconds() -> None:
    """HighResponseTime merges every series' buckets and compares p95 in ms with the threshold."""
    r = threshold_rules(response_time=0.4)["HighResponseTime"]
    assert (r.threshold, r.window) == (400, 60)
    run = Run(r)
    run.at(0, **{DURATION: {}})
    (event,) = run.at(60, **{DURATION: {DUR_A: hist(0, 0, 1, 0), DUR_B: hist(0, 0, 19, 0)}})
    assert event.labels == {}
    assert event.value == pytest.approx(histogram_quantile(0.95, BOUNDS, (0, 0, 20, 0)) * 1000)
    assert event.message.startswith("p95 response time is 975 ms")


def test_error_rate_threshold_is_errors_over_requests_in_the_window() -> None:
    """HighErrorRate divides the errors added in the window by the requests added."""
    run = Run(threshold_rules(error_rate=0.1)["HighErrorRate"])
    err: Labels = (*GET_A, ("error_type", "500"), ("status_code", "500"))
    run.at(0, **{REQUESTS: {GET_A: NumberPoint(1000, 1)}, ERRORS: {err: NumberPoint(900, 1)}})
    assert (
        run.at(60, **{REQUESTS: {GET_A: NumberPoint(1100, 1)}, ERRORS: {err: NumberPoint(905, 1)}})
        == []
    )
    (event,) = run.at(
        120, **{REQUESTS: {GET_A: NumberPoint(1200, 1)}, ERRORS: {err: NumberPoint(925, 1)}}
    )
    assert event.value == pytest.approx(0.2)
    assert event.message == "error rate is 20.00% of requests (threshold 10.00%)"


def test_error_rate_without_requests_has_no_data() -> None:
    """0 errors out of 0 requests is not an error rate: nothing is evaluated."""
    run = Run(threshold_rules(error_rate=0.0)["HighErrorRate"])
    run.at(0, **{REQUESTS: {GET_A: NumberPoint(10, 1)}})
    assert run.at(60, **{REQUESTS: {GET_A: NumberPoint(10, 1)}}) == []


def test_memory_threshold_is_rss_over_system_memory() -> None:
    """HighMemoryUsage divides the RSS gauge by the system memory gauge."""
    run = Run(threshold_rules(memory_usage=0.5)["HighMemoryUsage"])
    total = cat.SYSTEM_MEMORY_TOTAL.name
    assert run.at(0, **{RSS: {(): NumberPoint(400)}, total: {(): NumberPoint(1000)}}) == []
    (event,) = run.at(10, **{RSS: {(): NumberPoint(600)}, total: {(): NumberPoint(1000)}})
    assert event.value == pytest.approx(0.6)


def test_cpu_threshold_is_cpu_seconds_per_second_over_the_cpu_count() -> None:
    """HighCpuUsage is the process CPU time rate divided by the system_cpu_cores gauge."""
    run = Run(threshold_rules(cpu_usage=0.5)["HighCpuUsage"])
    cpu, cpus = cat.PROCESS_CPU_USER.name, cat.SYSTEM_CPU_CORES.name
    run.at(0, **{cpu: {(): NumberPoint(100.0, 1)}, cpus: {(): NumberPoint(4.0)}})
    # 3 of 4 cores busy
    (event,) = run.at(
        60, **{cpu: {(): NumberPoint(100.0 + 60 * 3, 1)}, cpus: {(): NumberPoint(4.0)}}
    )
    assert event.value == pytest.approx(0.75)
    assert "75.0% of the available CPUs" in event.message


# --- a property of the lifecycle ------------------------------------------------------------


def streak_start(truth: list[tuple[int, bool]], value: bool) -> int:
    """When the trailing run of evaluations equal to ``value`` began."""
    start = truth[-1][0]
    for when, ok in reversed(truth):
        if ok != value:
            break
        start = when
    return start


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.sampled_from([50.0, 150.0, None]), min_size=1, max_size=30),
    for_=st.sampled_from([0, 10, 25]),
    keep=st.sampled_from([0, 10, 25]),
)
def test_notifications_respect_for_and_keep_firing_for(
    values: list[float | None], for_: int, keep: int
) -> None:
    """An alert fires exactly when the condition held ``for`` seconds and resolves exactly when
    it failed ``keep_firing_for`` seconds; notifications alternate firing, resolved, firing..."""
    run = Run(gauge_rule(**{"for": for_, "keep_firing_for": keep}))
    truth: list[tuple[int, bool]] = []
    last_state = "resolved"
    for i, value in enumerate(values):
        t = i * 10
        truth.append((t, value is not None and value > 100))
        for event in run.gauge(t, value):
            assert event.state != last_state
            last_state = event.state
            if event.state == "firing":
                assert truth[-1][1]
                assert t - streak_start(truth, True) >= for_
                assert event.started_at == t
            else:
                assert not truth[-1][1]
                assert t - streak_start(truth, False) >= keep
        firing_now = any(a.state == "firing" for a in run.alerts())
        held = t - streak_start(truth, truth[-1][1])
        if truth[-1][1] and held >= for_:
            assert firing_now
        if not truth[-1][1] and held >= keep:
            assert not firing_now
    firing = [a for a in run.alerts() if a.state == "firing"]
    assert (last_state == "firing") == bool(firing)
