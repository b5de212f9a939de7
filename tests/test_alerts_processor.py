"""The alert processor over a real recorder and stream, and its wiring into Monitoring."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Collection
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.resources import Resource

from fluxstack_otel import ConfigError, configure_monitoring, load_config
from fluxstack_otel._internal.http.recorder import HttpRecorder
from fluxstack_otel._internal.metrics.stream import MetricStream
from fluxstack_otel._internal.runtime.failures import failure_counts
from fluxstack_otel._internal.sinks.alerts.notify import Delivery
from fluxstack_otel.alerts import Alert, AlertProcessor, compile_rules
from servers import wait_until
from support.clocks import FakeClock
from support.configs import NO_THRESHOLDS

NOW = 1_700_000_000.0

SLOW_RULE = {
    "metric": "http_request_duration_ms",
    "operator": ">",
    "value": 200,
    "severity": "critical",
    "name": "SlowRoute",
    "labels": {"route": "/slow"},
    "window": "10s",
}


def make_processor(
    *alerts: dict[str, Any], clock: FakeClock, **options: Any
) -> tuple[AlertProcessor, HttpRecorder]:
    recorder = HttpRecorder(duration_buckets=(0.1, 0.5, 1.0), clock=lambda: 0.0)
    stream = MetricStream((), recorder.to_metrics, Resource.create({}))
    config = load_config({"alerts": list(alerts), "thresholds": NO_THRESHOLDS})
    processor = AlertProcessor(
        compile_rules(config), stream.collect, interval=10, clock=clock, **options
    )
    return processor, recorder


def requests(recorder: HttpRecorder, route: str, duration: float, n: int = 10) -> None:
    for _ in range(n):
        recorder.record("GET", route, 200, None, duration, 0, 10, 0.0)


def test_a_slow_route_fires_and_resolves_through_the_real_stream() -> None:
    """Requests recorded between evaluations drive the p95 rule from firing to resolved."""
    clock = FakeClock(NOW)
    processor, recorder = make_processor(SLOW_RULE, clock=clock)
    seen: list[Alert] = []
    processor.on_alert(seen.append)
    assert processor.evaluate_now() == ()
    clock.now += 10
    requests(recorder, "/slow", 0.4)
    requests(recorder, "/fast", 0.01)
    (fired,) = processor.evaluate_now()
    assert (fired.name, fired.state, fired.labels["route"]) == ("SlowRoute", "firing", "/slow")
    assert fired.value == pytest.approx(480.0)  # p95 inside the (0.1, 0.5] bucket, in ms
    assert [a.name for a in processor.alerts()] == ["SlowRoute"]
    assert processor.document_section()["alerts"][0]["state"] == "firing"
    clock.now += 10
    requests(recorder, "/slow", 0.05)
    (resolved,) = processor.evaluate_now()
    assert (resolved.state, resolved.value) == ("resolved", pytest.approx(95.0))
    assert processor.alerts() == []
    assert seen == [fired, resolved]


def test_history_holds_only_what_the_longest_window_needs() -> None:
    """The ring of snapshots never grows past the longest window plus one sample."""
    clock = FakeClock(NOW)
    processor, _ = make_processor(SLOW_RULE, {**SLOW_RULE, "window": 35}, clock=clock)
    for _ in range(50):
        processor.evaluate_now()
        clock.now += 10
    assert len(processor._history) == 5  # samples at -40, -30, -20, -10 and now


def test_a_failing_collection_is_reported_and_the_next_evaluation_goes_on() -> None:
    """A collection that raises is counted; evaluation resumes with the next one."""
    clock = FakeClock(NOW)
    recorder = HttpRecorder(clock=lambda: 0.0)
    stream = MetricStream((), recorder.to_metrics, Resource.create({}))
    calls = {"n": 0}

    def flaky(names: Collection[str]) -> MetricsData:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("collection broke")
        return stream.collect(names)

    rules = compile_rules(load_config({"alerts": [SLOW_RULE], "thresholds": NO_THRESHOLDS}))
    processor = AlertProcessor(rules, flaky, interval=10, clock=clock)
    before = failure_counts().get("collecting metrics for the alert rules", 0)
    processor.evaluate_now()
    clock.now += 10
    assert processor.evaluate_now() == ()
    assert failure_counts()["collecting metrics for the alert rules"] == before + 1
    requests(recorder, "/slow", 0.4)
    clock.now += 10
    assert [a.state for a in processor.evaluate_now()] == ["firing"]


class Broken:
    def deliver(self, delivery: Delivery) -> None:
        raise RuntimeError("notifier broke")

    def shutdown(self, timeout: float) -> None:
        raise RuntimeError("shutdown broke")


def test_a_failing_notifier_does_not_stop_the_others() -> None:
    """A notifier that raises is reported; callbacks still get the alert, shutdown still ends."""
    clock = FakeClock(NOW)
    processor, recorder = make_processor(SLOW_RULE, clock=clock, notifiers=[Broken()])
    seen: list[Alert] = []
    processor.on_alert(seen.append)
    processor.evaluate_now()
    requests(recorder, "/slow", 0.4)
    clock.now += 10
    processor.evaluate_now()
    assert [a.name for a in seen] == ["SlowRoute"]
    assert failure_counts()["delivering alerts with the Broken"] >= 1
    processor.shutdown(1)
    assert failure_counts()["shutting down the Broken"] >= 1


def test_without_rules_no_thread_starts() -> None:
    """A processor with no rule costs nothing: start() starts no thread."""
    processor, _ = make_processor(clock=FakeClock(NOW))
    before = threading.active_count()
    processor.start()
    assert threading.active_count() == before
    processor.shutdown(1)


# --- Monitoring -------------------------------------------------------------------------------


def app_with_delay(delay: dict[str, float]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(delay["s"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


@pytest.mark.slow
def test_monitoring_evaluates_on_its_interval_and_shows_alerts_everywhere() -> None:
    """on_alert callbacks, monitoring.alerts() and the JSON document all see a firing alert."""
    rule = {**SLOW_RULE, "labels": {}, "value": 30, "window": 0.5}
    monitoring = configure_monitoring(
        {
            "system_metrics": False,
            "alert_evaluation_interval": 0.1,
            "alerts": [rule],
            "thresholds": NO_THRESHOLDS,
            "notifiers": [],
            "exporters": [{"type": "json", "endpoint": "/metrics.json"}],
        }
    )
    seen: list[Alert] = []
    monitoring.on_alert(seen.append)
    app = monitoring.instrument(app_with_delay({"s": 0.05}))

    async def traffic_then_document() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            deadline = time.monotonic() + 10
            while not monitoring.alerts() and time.monotonic() < deadline:
                await client.get("/work")
            document: dict[str, Any] = (await client.get("/metrics.json")).json()
            return document

    try:
        document = asyncio.run(traffic_then_document())
        (alert,) = monitoring.alerts()
        assert alert.state == "firing"
        assert [a["name"] for a in document["alerts"]] == ["SlowRoute"]
        wait_until(lambda: seen, timeout=5, message="the callback")
        assert seen[0].name == "SlowRoute"
        wait_until(
            lambda: any(a.state == "resolved" for a in seen),
            timeout=10,
            message="resolution once traffic stops",
        )
        assert monitoring.alerts() == []
    finally:
        started = time.monotonic()
        monitoring.shutdown(2)
        assert time.monotonic() - started < 2.5
    assert not any(
        t.name == "fluxstack-otel-alerts" and t.is_alive() for t in threading.enumerate()
    )


def test_default_notifier_logs_firing_alerts(caplog: pytest.LogCaptureFixture) -> None:
    """With no notifiers configured, alerts go to the fluxstack_otel log, as in FluxStack."""
    monitoring = configure_monitoring(
        {
            "system_metrics": False,
            "alert_evaluation_interval": 0.05,
            "thresholds": {**NO_THRESHOLDS, "error_rate": 0.1},
        }
    )
    app = monitoring.instrument(app_with_delay({"s": 0.0}))

    async def failing(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 503, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    failing_app = monitoring.instrument(failing)

    async def traffic() -> None:
        for target in (app, failing_app):
            transport = httpx.ASGITransport(app=target)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                for _ in range(5):
                    await client.get("/x")

    try:
        with caplog.at_level(logging.INFO, logger="fluxstack_otel"):
            time.sleep(0.1)  # a baseline before the traffic
            asyncio.run(traffic())
            wait_until(
                lambda: any("HighErrorRate firing" in r.getMessage() for r in caplog.records),
                timeout=10,
                message="the error-rate alert in the log",
            )
        record = next(r for r in caplog.records if "HighErrorRate firing" in r.getMessage())
        assert record.levelno == logging.ERROR
        # An evaluation may fall inside the traffic: the rate it saw need not be 50 %.
        assert re.search(
            r"error rate is \d+\.\d\d% of requests \(threshold 10\.00%\)", record.getMessage()
        )
    finally:
        monitoring.shutdown(2)


def test_a_bad_message_template_fails_configure_monitoring() -> None:
    """Template errors surface as a ConfigError from configure_monitoring, not at run time."""
    with pytest.raises(ConfigError, match=r"alerts\[0\]\.message"):
        configure_monitoring({"alerts": [{**SLOW_RULE, "message": "{nope}"}]})


def test_disabled_monitoring_has_no_alerts() -> None:
    """With enabled: false, on_alert is accepted and alerts() is empty."""
    monitoring = configure_monitoring({"enabled": False, "alerts": [SLOW_RULE]})
    monitoring.on_alert(lambda alert: None)
    assert monitoring.alerts() == []
    monitoring.shutdown()


def test_the_processor_collects_only_what_its_rules_read() -> None:
    """Evaluation builds only the metrics the rules read, not the whole stream."""
    recorder = HttpRecorder(clock=lambda: 0.0)
    stream = MetricStream((), recorder.to_metrics, Resource.create({}))
    built: list[set[str]] = []

    def collect(names: Collection[str]) -> MetricsData:
        data = stream.collect(names)
        built.append(
            {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
        )
        return data

    rules = compile_rules(load_config({"alerts": [SLOW_RULE], "thresholds": NO_THRESHOLDS}))
    clock = FakeClock(NOW)
    processor = AlertProcessor(rules, collect, interval=10, clock=clock)
    processor.evaluate_now()
    clock.now += 10
    requests(recorder, "/slow", 0.4)
    (fired,) = processor.evaluate_now()
    assert fired.name == "SlowRoute"
    assert fired.value == pytest.approx(487.5)  # p95 inside the default (0.25, 0.5] bucket, ms
    assert built == [{"http_request_duration_seconds"}] * 2
