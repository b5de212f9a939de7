"""Where alert notifications go: the log, Python callbacks, a webhook, an Alertmanager.

Every notifier receives each evaluation's ``Delivery`` and is isolated from the others: whatever
one raises is reported (rate-limited log line plus a count) and the rest still run.

- The log and callbacks run in the evaluation thread, in order. A sync callback is called; an
  async one (a function returning an awaitable) is run to completion with ``asyncio.run`` in
  that thread, or, when ``on_alert`` was given a ``loop``, scheduled on that loop without
  waiting (so it can use the app's loop-bound clients). Keep callbacks short: the next
  evaluation waits for them.
- The webhook and Alertmanager POST from a thread of their own through a small bounded queue, so
  a slow or dead endpoint never delays evaluation. Each POST has a timeout; failures that may
  pass (connection errors, timeouts, 408/425/429/5xx) are retried with exponential backoff
  (0.5 s, 1 s, 2 s) within a bounded budget; other answers are final.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from fluxstack_otel._internal.config.model import (
    AlertmanagerNotifierConfig,
    LogNotifierConfig,
    NotifierConfig,
    WebhookNotifierConfig,
)
from fluxstack_otel._internal.runtime.failures import report_failure
from fluxstack_otel._internal.sinks.alerts.alert import Alert, rfc3339
from fluxstack_otel._internal.sinks.alerts.outbox import Outbox

if TYPE_CHECKING:
    import asyncio
    from concurrent.futures import Future

__all__ = [
    "AlertCallback",
    "AlertmanagerNotifier",
    "CallbackNotifier",
    "Delivery",
    "LogNotifier",
    "Notifier",
    "WebhookNotifier",
    "build_notifiers",
]

_log = logging.getLogger("fluxstack_otel")

AlertCallback = Callable[[Alert], Awaitable[object] | object]
"""A function called with each firing or resolved ``Alert``; it may be async."""

_LEVELS = {
    "critical": logging.ERROR,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
}


class Delivery(NamedTuple):
    """What one evaluation hands to every notifier.

    Attributes:
        now: The evaluation's clock reading (Unix seconds).
        events: Notifications due now: new or repeated firing alerts, resolved alerts.
        firing: Every alert firing after this evaluation (for senders that resend state).
        interval: Seconds between evaluations.
    """

    now: float
    events: tuple[Alert, ...]
    firing: tuple[Alert, ...]
    interval: float


class Notifier(Protocol):
    """Receives every evaluation's delivery; must not block for long, nor raise on purpose."""

    def deliver(self, delivery: Delivery) -> None:
        """Hand over the notifications of one evaluation."""
        ...

    def shutdown(self, timeout: float) -> None:
        """Send what is queued, within ``timeout`` seconds, and stop."""
        ...


# --- log ------------------------------------------------------------------------------------


class LogNotifier:
    """Logs each notification on ``fluxstack_otel``: critical/error at ERROR, warning at WARNING,
    info at INFO; a resolution at INFO. The record carries the alert as ``record.alert``."""

    def deliver(self, delivery: Delivery) -> None:
        for alert in delivery.events:
            level = logging.INFO if alert.state == "resolved" else _LEVELS[alert.severity]
            labels = ", ".join(f"{k}={v}" for k, v in alert.labels.items())
            _log.log(
                level,
                "alert %s %s%s [%s]: %s%s",
                alert.name,
                alert.state,
                " (repeat)" if alert.repeat else "",
                alert.severity,
                alert.message,
                f" {{{labels}}}" if labels else "",
                extra={"alert": alert.to_dict()},
            )

    def shutdown(self, timeout: float) -> None:
        """Nothing to flush."""


# --- callbacks ------------------------------------------------------------------------------


class CallbackNotifier:
    """Calls the functions registered with ``on_alert`` for each notification."""

    def __init__(self) -> None:
        self._callbacks: tuple[tuple[AlertCallback, asyncio.AbstractEventLoop | None], ...] = ()
        self._lock = threading.Lock()

    def add(self, fn: AlertCallback, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Register ``fn``; an async ``fn`` runs on ``loop`` when one is given."""
        with self._lock:
            self._callbacks = (*self._callbacks, (fn, loop))

    def deliver(self, delivery: Delivery) -> None:
        for alert in delivery.events:
            for fn, loop in self._callbacks:
                name = getattr(fn, "__qualname__", type(fn).__name__)
                try:
                    result = fn(alert)
                    if inspect.isawaitable(result):
                        _run_awaitable(result, loop, name)
                except Exception:
                    report_failure(f"alert callback {name}")

    def shutdown(self, timeout: float) -> None:
        """Nothing to flush."""


async def _await(awaitable: Awaitable[object]) -> object:
    return await awaitable


def _run_awaitable(
    awaitable: Awaitable[object], loop: asyncio.AbstractEventLoop | None, name: str
) -> None:
    import asyncio  # loaded already wherever an event loop runs

    if loop is not None:
        future = asyncio.run_coroutine_threadsafe(_await(awaitable), loop)

        def done(f: Future[object]) -> None:
            error = None if f.cancelled() else f.exception()
            if error is not None:
                try:
                    raise error  # so the report carries its traceback
                except Exception:
                    report_failure(f"alert callback {name}")

        future.add_done_callback(done)
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_await(awaitable))
        return
    # Called from inside a running loop (evaluate_now in async code): asyncio.run cannot nest.
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(_await(awaitable))
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, name="fluxstack-otel-alert-callback", daemon=True)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


# --- HTTP (the POSTs themselves go through outbox.Outbox) -------------------------------


class WebhookNotifier:
    """POSTs ``{"service": ..., "alerts": [alert.to_dict(), ...]}`` once per evaluation with
    notifications."""

    def __init__(self, config: WebhookNotifierConfig, *, service: str, **outbox: Any) -> None:
        self._service = service
        self._outbox = Outbox(
            "the alert webhook",
            config.url,
            timeout=config.timeout,
            headers=dict(config.headers),
            **outbox,
        )

    def deliver(self, delivery: Delivery) -> None:
        if delivery.events:
            alerts = [{**a.to_dict(), "repeat": a.repeat} for a in delivery.events]
            self._outbox.put({"service": self._service, "alerts": alerts})

    def shutdown(self, timeout: float) -> None:
        self._outbox.shutdown(timeout)


class AlertmanagerNotifier:
    """Keeps an Alertmanager in step through ``POST /api/v2/alerts``, as Prometheus does.

    Every firing alert is sent with ``endsAt`` a few resend periods ahead and re-sent at least
    every ``resend_delay`` seconds (Alertmanager resolves an alert that is no longer re-sent);
    a resolved alert is sent once with its ``endsAt``. Alertmanager itself deduplicates,
    groups and repeats notifications to its receivers. Labels: ``alertname``, ``severity``,
    ``service`` and the series labels; annotations: ``summary`` (the message), ``value``,
    ``threshold``.
    """

    def __init__(
        self,
        config: AlertmanagerNotifierConfig,
        *,
        service: str,
        resend_delay: float = 60.0,
        **outbox: Any,
    ) -> None:
        url = config.url.rstrip("/")
        if not url.endswith("/api/v2/alerts"):
            url += "/api/v2/alerts"
        self._service = service
        self._resend = resend_delay
        self._last_sent: float | None = None
        self._outbox = Outbox("the Alertmanager", url, timeout=config.timeout, headers={}, **outbox)

    def deliver(self, delivery: Delivery) -> None:
        resolved = [a for a in delivery.events if a.state == "resolved"]
        due = self._last_sent is None or delivery.now - self._last_sent >= self._resend
        if not resolved and not (delivery.firing and (delivery.events or due)):
            return
        self._last_sent = delivery.now
        # As Prometheus: a firing alert is valid for four resend periods unless re-sent.
        ends = delivery.now + 4 * max(self._resend, delivery.interval)
        payload = [self._alert(a, ends) for a in delivery.firing]
        payload += [self._alert(a, a.ended_at or delivery.now) for a in resolved]
        self._outbox.put(payload)

    def _alert(self, alert: Alert, ends_at: float) -> dict[str, Any]:
        labels = {
            **alert.labels,
            "alertname": alert.name,
            "severity": alert.severity,
            "service": self._service,
        }
        return {
            "labels": labels,
            "annotations": {
                "summary": alert.message,
                "value": f"{alert.value:g}",
                "threshold": f"{alert.threshold:g}",
            },
            "startsAt": rfc3339(alert.started_at or alert.active_at),
            "endsAt": rfc3339(ends_at),
        }

    def shutdown(self, timeout: float) -> None:
        self._outbox.shutdown(timeout)


def build_notifiers(configs: Sequence[NotifierConfig], *, service: str) -> list[Notifier]:
    """One notifier per configured entry."""
    out: list[Notifier] = []
    for config in configs:
        if isinstance(config, LogNotifierConfig):
            out.append(LogNotifier())
        elif isinstance(config, WebhookNotifierConfig):
            out.append(WebhookNotifier(config, service=service))
        else:
            out.append(AlertmanagerNotifier(config, service=service))
    return out
