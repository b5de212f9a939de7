"""Notifiers: log levels, sync and async callbacks, the webhook and the Alertmanager sender."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fluxstack_otel._internal.config.model import AlertmanagerNotifierConfig, WebhookNotifierConfig
from fluxstack_otel._internal.runtime.failures import failure_counts
from fluxstack_otel._internal.sinks.alerts.notify import (
    AlertmanagerNotifier,
    CallbackNotifier,
    Delivery,
    LogNotifier,
    WebhookNotifier,
)
from fluxstack_otel.alerts import Alert
from receivers import JsonReceiver
from servers import wait_until

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def make_alert(state: str = "firing", severity: str = "critical", **extra: Any) -> Alert:
    fields: dict[str, Any] = {
        "name": "SlowCheckout",
        "state": state,
        "severity": severity,
        "value": 812.5,
        "threshold": 500.0,
        "operator": ">",
        "labels": {"method": "POST", "route": "/checkout"},
        "message": "checkout p95 is 812 ms",
        "subject": "http_request_duration_ms p95",
        "active_at": T0,
        "started_at": T0,
        "ended_at": T0 + 60 if state == "resolved" else None,
    }
    return Alert(**{**fields, **extra})


def delivery(*events: Alert, now: float = T0, firing: tuple[Alert, ...] | None = None) -> Delivery:
    if firing is None:
        firing = tuple(e for e in events if e.state == "firing")
    return Delivery(now, events, firing, 30.0)


@pytest.fixture
def receiver() -> Iterator[JsonReceiver]:
    with JsonReceiver() as r:
        yield r


def failures_about(text: str) -> int:
    return sum(n for what, n in failure_counts().items() if text in what)


# --- log --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "state", "level"),
    [
        ("critical", "firing", logging.ERROR),
        ("error", "firing", logging.ERROR),
        ("warning", "firing", logging.WARNING),
        ("info", "firing", logging.INFO),
        ("critical", "resolved", logging.INFO),
    ],
)
def test_log_levels_follow_severity(
    severity: str, state: str, level: int, caplog: pytest.LogCaptureFixture
) -> None:
    """critical/error log at ERROR, warning at WARNING, info and resolutions at INFO."""
    with caplog.at_level(logging.DEBUG, logger="fluxstack_otel"):
        LogNotifier().deliver(delivery(make_alert(state, severity)))
    (record,) = caplog.records
    assert record.levelno == level
    assert record.getMessage() == (
        f"alert SlowCheckout {state} [{severity}]: checkout p95 is 812 ms"
        " {method=POST, route=/checkout}"
    )
    assert record.alert["labels"] == {"method": "POST", "route": "/checkout"}  # type: ignore[attr-defined]


def test_log_marks_repeats(caplog: pytest.LogCaptureFixture) -> None:
    """A re-notification says so in the log line."""
    with caplog.at_level(logging.INFO, logger="fluxstack_otel"):
        LogNotifier().deliver(delivery(make_alert(repeat=True)))
    assert "firing (repeat)" in caplog.records[0].getMessage()


# --- callbacks --------------------------------------------------------------------------------


def test_sync_and_async_callbacks_receive_every_event() -> None:
    """A sync callback is called, an async one is run to completion in the evaluation thread."""
    seen: list[tuple[str, str]] = []

    def sync(alert: Alert) -> None:
        seen.append(("sync", alert.state))

    async def asynchronous(alert: Alert) -> None:
        await asyncio.sleep(0)
        seen.append(("async", alert.state))

    notifier = CallbackNotifier()
    notifier.add(sync)
    notifier.add(asynchronous)
    notifier.deliver(delivery(make_alert("firing"), make_alert("resolved")))
    assert seen == [
        ("sync", "firing"),
        ("async", "firing"),
        ("sync", "resolved"),
        ("async", "resolved"),
    ]


def test_async_callback_with_a_loop_runs_on_that_loop() -> None:
    """Given a loop, an async callback is scheduled there and runs in the loop's thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    ran_in: list[threading.Thread] = []

    async def callback(alert: Alert) -> None:
        ran_in.append(threading.current_thread())

    notifier = CallbackNotifier()
    notifier.add(callback, loop)
    notifier.deliver(delivery(make_alert()))
    wait_until(lambda: ran_in, timeout=5, message="the callback on the loop")
    assert ran_in == [thread]
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_async_callback_called_from_inside_a_running_loop_still_runs() -> None:
    """evaluate_now from async code: the coroutine runs in a helper thread, not nested."""
    seen: list[str] = []

    async def callback(alert: Alert) -> None:
        seen.append(alert.name)

    notifier = CallbackNotifier()
    notifier.add(callback)

    async def main() -> None:
        notifier.deliver(delivery(make_alert()))

    asyncio.run(main())
    assert seen == ["SlowCheckout"]


def test_a_failing_callback_is_reported_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Callback failures, sync or async, are isolated: logged, counted, never raised."""
    seen: list[str] = []

    def broken(alert: Alert) -> None:
        raise RuntimeError("boom")

    async def broken_async(alert: Alert) -> None:
        raise ValueError("async boom")

    notifier = CallbackNotifier()
    notifier.add(broken)
    notifier.add(broken_async)
    notifier.add(lambda alert: seen.append(alert.name))
    before = failures_about("alert callback")
    with caplog.at_level(logging.ERROR, logger="fluxstack_otel"):
        notifier.deliver(delivery(make_alert()))
    assert seen == ["SlowCheckout"]
    assert failures_about("alert callback") == before + 2


# --- webhook ----------------------------------------------------------------------------------


def test_webhook_posts_the_events_as_json_with_headers(receiver: JsonReceiver) -> None:
    """One POST per evaluation with notifications: the service and every event as a dict."""
    config = WebhookNotifierConfig(
        url=receiver.base_url + "/hook/t0ken", headers=(("X-Token", "s"),)
    )
    notifier = WebhookNotifier(config, service="shop")
    notifier.deliver(delivery())  # nothing to say: no POST
    notifier.deliver(delivery(make_alert("firing"), make_alert("resolved")))
    notifier.shutdown(5)
    ((path, headers, body),) = receiver.requests
    assert path == "/hook/t0ken"
    assert headers["X-Token"] == "s"
    assert headers["Content-Type"] == "application/json"
    assert body["service"] == "shop"
    assert [(a["state"], a["repeat"]) for a in body["alerts"]] == [
        ("firing", False),
        ("resolved", False),
    ]
    first = body["alerts"][0]
    assert first["started_at"] == "2023-11-14T22:13:20.000Z"
    assert (first["value"], first["threshold"], first["labels"]["route"]) == (
        812.5,
        500.0,
        "/checkout",
    )
    assert body["alerts"][1]["ended_at"] == "2023-11-14T22:14:20.000Z"


def test_webhook_retries_server_errors_with_backoff() -> None:
    """A 503 then a 500 are retried; the third attempt delivers."""
    with JsonReceiver(statuses=[503, 500, 200]) as receiver:
        notifier = WebhookNotifier(
            WebhookNotifierConfig(url=receiver.base_url), service="s", first_backoff=0.01
        )
        notifier.deliver(delivery(make_alert()))
        notifier.shutdown(5)
        assert len(receiver.requests) == 3


def test_webhook_does_not_retry_a_client_error() -> None:
    """A 400 is final: one attempt, one reported failure naming only the host."""
    with JsonReceiver(statuses=[400]) as receiver:
        what = f"the alert webhook {receiver.base_url}"
        before = failures_about(what)
        notifier = WebhookNotifier(
            WebhookNotifierConfig(url=receiver.base_url + "/secret-path"),
            service="s",
            first_backoff=0.01,
        )
        notifier.deliver(delivery(make_alert()))
        notifier.shutdown(5)
        assert len(receiver.requests) == 1
        assert failures_about(what) == before + 1
        assert not any("secret-path" in k for k in failure_counts())


@pytest.mark.slow
def test_a_hanging_webhook_never_delays_evaluation_and_shutdown_is_bounded() -> None:
    """deliver() only queues; shutdown returns within its timeout while a POST hangs."""
    with JsonReceiver(delay=3.0) as receiver:
        notifier = WebhookNotifier(
            WebhookNotifierConfig(url=receiver.base_url, timeout=2.0), service="s"
        )
        started = time.monotonic()
        notifier.deliver(delivery(make_alert()))
        assert time.monotonic() - started < 0.5
        wait_until(lambda: receiver.requests, timeout=5, message="the POST to arrive")
        started = time.monotonic()
        notifier.shutdown(0.5)
        assert time.monotonic() - started < 1.0


@pytest.mark.slow
def test_webhook_timeout_is_reported() -> None:
    """A POST slower than the timeout fails, is retried, then reported once."""
    with JsonReceiver(delay=0.5) as receiver:
        what = f"the alert webhook {receiver.base_url}"
        before = failures_about(what)
        notifier = WebhookNotifier(
            WebhookNotifierConfig(url=receiver.base_url, timeout=0.1),
            service="s",
            first_backoff=0.01,
        )
        notifier.deliver(delivery(make_alert()))
        wait_until(lambda: failures_about(what) > before, timeout=10, message="the failure")
        assert len(receiver.requests) == 3
        notifier.shutdown(1)


# --- Alertmanager -----------------------------------------------------------------------------


def test_alertmanager_payload_has_labels_annotations_and_times(receiver: JsonReceiver) -> None:
    """Firing alerts carry alertname, severity, service and series labels, and endsAt ahead."""
    notifier = AlertmanagerNotifier(
        AlertmanagerNotifierConfig(url=receiver.base_url), service="shop"
    )
    notifier.deliver(delivery(make_alert(), now=T0 + 10))
    notifier.shutdown(5)
    ((path, _, body),) = receiver.requests
    assert path == "/api/v2/alerts"
    assert body == [
        {
            "labels": {
                "alertname": "SlowCheckout",
                "severity": "critical",
                "service": "shop",
                "method": "POST",
                "route": "/checkout",
            },
            "annotations": {
                "summary": "checkout p95 is 812 ms",
                "value": "812.5",
                "threshold": "500",
            },
            "startsAt": "2023-11-14T22:13:20.000Z",
            "endsAt": "2023-11-14T22:17:30.000Z",  # now + 4 x 60 s
        }
    ]


def test_alertmanager_gets_firing_alerts_resent_and_resolutions_once(
    receiver: JsonReceiver,
) -> None:
    """Firing alerts are re-sent every resend delay; a resolution is sent with its endsAt."""
    notifier = AlertmanagerNotifier(
        AlertmanagerNotifierConfig(url=receiver.base_url + "/"), service="shop", resend_delay=60
    )
    firing = make_alert()
    notifier.deliver(delivery(firing, now=T0))
    notifier.deliver(delivery(now=T0 + 30, firing=(firing,)))  # nothing new, not due
    notifier.deliver(delivery(now=T0 + 60, firing=(firing,)))  # due: re-sent
    notifier.deliver(delivery(make_alert("resolved"), now=T0 + 70, firing=()))
    notifier.deliver(delivery(now=T0 + 200, firing=()))  # nothing firing: nothing to send
    notifier.shutdown(5)
    bodies = [body for _, _, body in receiver.requests]
    assert len(bodies) == 3
    assert bodies[1][0]["endsAt"] == "2023-11-14T22:18:20.000Z"
    (resolved,) = bodies[2]
    assert resolved["endsAt"] == "2023-11-14T22:14:20.000Z"
    assert resolved["labels"]["alertname"] == "SlowCheckout"
