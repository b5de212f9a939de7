"""The alert processor: a sink that evaluates the rules on a schedule and hands out notifications.

Every ``interval`` seconds a job on the periodic scheduler (``runtime/scheduler.py``) collects the metric stream, keeps the metrics the
rules read in a short history (enough samples to cover the longest rule window), runs the pure
evaluator and passes the result to every notifier. Nothing here runs on the request path, and
nothing it does is raised into the app: a failing collection, evaluation or notifier is
reported (rate-limited log line plus a count) and the next evaluation goes on.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.metrics.export import Metric, MetricsData

from fluxstack_otel._internal.metrics.selection import HTTP_NAMES
from fluxstack_otel._internal.runtime.failures import report_failure
from fluxstack_otel._internal.runtime.fork import call_in_child
from fluxstack_otel._internal.runtime.scheduler import PeriodicWorker, Round, Tick
from fluxstack_otel._internal.sinks.alerts.alert import Alert
from fluxstack_otel._internal.sinks.alerts.evaluate import (
    InstanceKey,
    InstanceState,
    active_alerts,
    evaluate,
)
from fluxstack_otel._internal.sinks.alerts.notify import (
    AlertCallback,
    CallbackNotifier,
    Delivery,
    Notifier,
    build_notifiers,
)
from fluxstack_otel._internal.sinks.alerts.rules import Expr, Rule, Select, compile_rules
from fluxstack_otel._internal.sinks.alerts.snapshot import Sample, take_sample

if TYPE_CHECKING:
    import asyncio

    from fluxstack_otel._internal.config.model import MonitoringConfig
    from fluxstack_otel._internal.sinks.base import Endpoint

__all__ = ["AlertProcessor", "build_processor"]


class AlertProcessor:
    """Evaluates alert rules against the metric stream and delivers the notifications.

    Args:
        rules: The compiled rules (``compile_rules``); with none, ``start`` starts nothing.
        collect: Returns the stream's cumulative data, at least the metrics named
            (``MetricStream.collect``): only what the rules read is built.
        collect_in: Returns the collection of a scheduler round, shared with the other jobs
            that fell due with the evaluation (``MetricStream.collect_in``, with names empty:
            without the HTTP metrics); read instead of a collection of the rules' own when the
            round has other jobs.
        totals: Returns the named HTTP metrics summed over all series
            (``HttpRecorder.totals``): a rule that sums every series of a metric reads these
            few points instead of every series; the metrics it leaves out are collected.
        interval: Seconds between evaluations.
        notifiers: Where notifications go, besides the ``on_alert`` callbacks.
        clock: Unix time in seconds; injectable for tests.
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        collect: Callable[[Collection[str]], MetricsData],
        *,
        interval: float,
        notifiers: Sequence[Notifier] = (),
        clock: Callable[[], float] = time.time,
        collect_in: Callable[[Round, Collection[str] | None], MetricsData] | None = None,
        totals: Callable[[Collection[str]], list[Metric]] | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self.interval = interval
        self._collect = collect
        self._collect_in = collect_in
        self._clock = clock
        self._callbacks = CallbackNotifier()
        self._notifiers: tuple[Notifier, ...] = (*notifiers, self._callbacks)
        self._metric_names = frozenset(m.name for r in self.rules for m in r.metrics)
        self._totals = totals
        selects = [s for r in self.rules for s in _selects(r.expr)]
        self._summed = frozenset(s.metric.name for s in selects) - {
            s.metric.name for s in selects if s.by_series or s.labels
        }  # the metrics every rule reads summed over all series: totals serve them
        self._longest_window = max((r.window for r in self.rules), default=0.0)
        self._history: deque[Sample] = deque()
        self._states: dict[InstanceKey, InstanceState] = {}
        self._current: tuple[Alert, ...] = ()
        self._lock = threading.Lock()
        self._worker = PeriodicWorker(
            "fluxstack-otel-alerts", interval, self._tick, run_at_start=True, flush_at_stop=False
        )
        self._closed = False
        call_in_child(self._after_fork_in_child)

    # --- the sink contract ----------------------------------------------------------------

    def endpoints(self) -> Mapping[str, Endpoint]:
        """None: alerts are read through ``Monitoring.alerts()`` and the JSON document."""
        return {}

    def start(self) -> None:
        """Start evaluating on the scheduler: once now, then every ``interval`` seconds."""
        if not self.rules or self._closed:
            return
        self._worker.start()

    def shutdown(self, timeout: float) -> None:
        """Stop evaluating and let the notifiers send what they hold, within ``timeout``."""
        deadline = time.monotonic() + timeout
        self._closed = True
        self._worker.stop(timeout)
        for notifier in self._notifiers:
            try:
                notifier.shutdown(max(0.0, deadline - time.monotonic()))
            except Exception:
                report_failure(f"shutting down the {type(notifier).__name__}")

    # --- reading and subscribing ----------------------------------------------------------

    def alerts(self) -> list[Alert]:
        """The pending and firing alerts as of the last evaluation."""
        return list(self._current)

    def document_section(self) -> dict[str, Any]:
        """``{"alerts": [...]}``: the section this processor adds to the JSON document."""
        return {"alerts": [a.to_dict() for a in self._current]}

    def on_alert(self, fn: AlertCallback, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Call ``fn(alert)`` for every firing (and repeated) and resolved notification.

        Args:
            fn: A function or coroutine function taking an ``Alert``. It runs in the
                evaluation thread; what it raises is reported and does not stop the others.
            loop: Where an async ``fn`` runs (scheduled, not awaited); without one it runs to
                completion with ``asyncio.run`` in the evaluation thread.
        """
        self._callbacks.add(fn, loop)

    def evaluate_now(self, shared: Round | None = None) -> tuple[Alert, ...]:
        """Collect, evaluate and deliver now, in the calling thread.

        Args:
            shared: The scheduler round of this evaluation: with other jobs in it, the rules
                read the round's collection rather than one of their own.

        Returns:
            The notifications this evaluation delivered.
        """
        with self._lock:
            now = self._clock()
            try:
                self._history.append(self._sample(now, shared))
            except Exception:
                report_failure("collecting metrics for the alert rules")
                return ()
            self._prune(now)
            try:
                result = evaluate(self.rules, tuple(self._history), self._states, now)
            except Exception:
                report_failure("evaluating the alert rules")
                return ()
            self._states = result.states
            self._current = tuple(active_alerts(self.rules, result.states))
            delivery = Delivery(
                now,
                result.events,
                tuple(a for a in self._current if a.state == "firing"),
                self.interval,
            )
            for notifier in self._notifiers:
                try:
                    notifier.deliver(delivery)
                except Exception:
                    report_failure(f"delivering alerts with the {type(notifier).__name__}")
            return result.events

    # --- internals ------------------------------------------------------------------------

    def _sample(self, now: float, shared: Round | None) -> Sample:
        # The totals first, then a collection of what they leave: the series of the metrics
        # read per series or by label, and the system metrics (the SDK's scopes, always whole).
        totals = self._totals(self._summed) if self._totals is not None and self._summed else []
        names = self._metric_names - {m.name for m in totals}
        if shared is not None and shared.members > 1 and self._collect_in is not None:
            data = self._collect_in(shared, None if HTTP_NAMES & names else ())
        else:
            data = self._collect(names)
        return take_sample(now, data, names, totals)

    def _prune(self, now: float) -> None:
        # Keep the newest sample at or before the longest window's start, and all after it.
        cutoff = now - self._longest_window
        history = self._history
        while len(history) >= 2 and history[1].time <= cutoff:
            history.popleft()

    def _tick(self, tick: Tick) -> None:
        self.evaluate_now(tick.round)

    def _after_fork_in_child(self) -> None:
        # The child inherits no meaningful history: the parent's counts
        # were reset, so old samples would read as a counter restart.
        self._lock = threading.Lock()
        self._history.clear()
        self._states = {}
        self._current = ()
        self._worker.run_soon()  # the scheduler restarted the job: evaluate the child at once


def _selects(expr: Expr) -> tuple[Select, ...]:
    return (expr,) if isinstance(expr, Select) else (expr.numerator, expr.denominator)


def build_processor(
    config: MonitoringConfig,
    collect: Callable[[Collection[str]], MetricsData],
    *,
    clock: Callable[[], float] = time.time,
    collect_in: Callable[[Round, Collection[str] | None], MetricsData] | None = None,
    totals: Callable[[Collection[str]], list[Metric]] | None = None,
) -> AlertProcessor:
    """The processor a configuration asks for: its rules, its notifiers, its interval.

    Raises:
        ConfigError: A rule cannot be compiled (see ``compile_rules``).
    """
    return AlertProcessor(
        compile_rules(config),
        collect,
        interval=config.alert_evaluation_interval,
        notifiers=build_notifiers(config.notifiers, service=config.service_name),
        clock=clock,
        collect_in=collect_in,
        totals=totals,
    )
