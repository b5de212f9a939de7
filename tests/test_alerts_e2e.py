"""End to end: a real uvicorn app crosses a p95 rule, fires, recovers and resolves, in-process,
in a real Alertmanager, and as the exported rule in a real Prometheus scraping the same app."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from fluxstack_otel import Monitoring, configure_monitoring
from fluxstack_otel._internal.integration.cli import main
from fluxstack_otel.alerts import Alert
from receivers import JsonReceiver
from servers import (
    AlertmanagerServer,
    PrometheusServer,
    promtool_check_rules,
    requires_alertmanager,
    requires_prometheus,
    requires_promtool,
    serve_asgi,
    wait_until,
)
from support.configs import NO_THRESHOLDS

pytestmark = pytest.mark.slow  # real servers or subprocesses: left out of make unit-fast

SLOW, FAST = 0.25, 0.0


def slow_work_rule(window: float) -> dict[str, Any]:
    return {
        "metric": "http_request_duration_ms",
        "operator": ">",
        "value": 150,
        "severity": "critical",
        "name": "SlowWork",
        "labels": {"route": "/work"},
        "window": window,
        "message": "{route} p95 is {value:.0f} ms",
    }


def make_app(delay: dict[str, float]) -> Starlette:
    async def work(request: Request) -> Response:
        await asyncio.sleep(delay["s"])
        return PlainTextResponse("done")

    return Starlette(routes=[Route("/work", work)])


@contextmanager
def traffic(base_url: str) -> Iterator[None]:
    """Requests to /work, one after the other, until the block ends."""
    stop = threading.Event()

    def run() -> None:
        with httpx.Client(base_url=base_url, trust_env=False, timeout=10) as client:
            while not stop.is_set():
                client.get("/work")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(15)


def statuses(hook: JsonReceiver, alertname: str) -> list[str]:
    """The statuses of ``alertname`` in the notifications Alertmanager POSTed to the hook."""
    return [
        a["status"]
        for body in hook.documents
        for a in body["alerts"]
        if a["labels"].get("alertname") == alertname
    ]


class AlertmanagerWithHook(AlertmanagerServer):
    """The harness's Alertmanager, routing to a webhook that also receives resolutions."""

    def __init__(self, hook_url: str) -> None:
        super().__init__()
        self.hook_url = hook_url

    def _write_config(self) -> None:
        config = {
            "route": {
                "receiver": "hook",
                "group_by": ["alertname"],
                "group_wait": "100ms",
                "group_interval": "500ms",
                "repeat_interval": "1h",
            },
            "receivers": [
                {"name": "hook", "webhook_configs": [{"url": self.hook_url, "send_resolved": True}]}
            ],
        }
        self.config_path.write_text(json.dumps(config))


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def in_process(monitoring: Monitoring, name: str) -> list[Alert]:
    return [a for a in monitoring.alerts() if a.name == name and a.state == "firing"]


@pytest.mark.slow
@requires_alertmanager
def test_p95_alert_fires_and_resolves_in_process_and_in_alertmanager() -> None:
    """A slow route fires the p95 rule; Alertmanager holds it; fast again, both resolve it."""
    delay = {"s": SLOW}
    events: list[Alert] = []
    with JsonReceiver() as hook, AlertmanagerWithHook(hook.url) as am:
        monitoring = configure_monitoring(
            {
                "service_name": "shop",
                "system_metrics": False,
                "alert_evaluation_interval": 0.2,
                "thresholds": NO_THRESHOLDS,
                "alerts": [slow_work_rule(window=1.5)],
                "notifiers": [{"type": "alertmanager", "url": am.url}, {"type": "log"}],
            }
        )
        monitoring.on_alert(events.append)
        try:
            with serve_asgi(monitoring.instrument(make_app(delay))) as url, traffic(url):
                (alert,) = wait_until(
                    lambda: in_process(monitoring, "SlowWork"),
                    timeout=20,
                    message="SlowWork firing in-process",
                )
                assert alert.labels == {"method": "GET", "route": "/work", "status_code": "200"}
                assert alert.value > 150
                held = wait_until(
                    lambda: [a for a in am.alerts() if a["labels"]["alertname"] == "SlowWork"],
                    timeout=20,
                    message=lambda: f"SlowWork in Alertmanager; log:\n{am.log_tail()}",
                )
                assert held[0]["labels"] == {
                    "alertname": "SlowWork",
                    "severity": "critical",
                    "service": "shop",
                    "method": "GET",
                    "route": "/work",
                    "status_code": "200",
                }
                assert held[0]["status"]["state"] == "active"
                assert re.fullmatch(r"/work p95 is \d+ ms", held[0]["annotations"]["summary"])
                # Firing alerts are valid for minutes: vanishing sooner means "resolved" arrived.
                assert parse_time(held[0]["endsAt"]) > time.time() + 120
                wait_until(
                    lambda: "firing" in statuses(hook, "SlowWork"),
                    timeout=20,
                    message="Alertmanager notifying its receiver",
                )

                delay["s"] = FAST
                wait_until(
                    lambda: any(e.state == "resolved" for e in events),
                    timeout=20,
                    message="SlowWork resolved in-process",
                )
                wait_until(
                    lambda: not any(a["labels"]["alertname"] == "SlowWork" for a in am.alerts()),
                    timeout=20,
                    message="SlowWork gone from Alertmanager",
                )
                wait_until(
                    lambda: "resolved" in statuses(hook, "SlowWork"),
                    timeout=20,
                    message="Alertmanager sending the resolution to its receiver",
                )
        finally:
            monitoring.shutdown(5)
    states = [(e.state, e.repeat) for e in events]
    assert states == [("firing", False), ("resolved", False)]
    assert events[1].started_at == events[0].started_at


@pytest.mark.slow
@requires_promtool
@requires_prometheus
def test_the_exported_rule_fires_in_a_real_prometheus_too(tmp_path: Path) -> None:
    """The rules CLI output passes promtool and fires in Prometheus when the app fires it."""
    config = {
        "service_name": "shop",
        "alert_evaluation_interval": 0.5,
        "alerts": [slow_work_rule(window=3)],
        "notifiers": [],
    }
    config_path = tmp_path / "monitoring.json"
    config_path.write_text(json.dumps(config))
    rules_path = tmp_path / "rules.yml"
    assert main(["rules", str(config_path), "-o", str(rules_path)]) == 0
    promtool_check_rules(rules_path)

    delay = {"s": SLOW}
    monitoring = configure_monitoring(config)
    try:
        with serve_asgi(monitoring.instrument(make_app(delay))) as url:
            target = url.removeprefix("http://")
            with (
                PrometheusServer(
                    [target], scrape_interval=0.5, evaluation_interval=0.5, rule_files=[rules_path]
                ) as prom,
                traffic(url),
            ):

                def firing_in_prometheus() -> list[dict[str, Any]]:
                    return [
                        a
                        for a in prom.alerts()
                        if a["labels"]["alertname"] == "SlowWork" and a["state"] == "firing"
                    ]

                wait_until(
                    lambda: in_process(monitoring, "SlowWork"),
                    timeout=20,
                    message="SlowWork firing in-process",
                )
                (alert,) = wait_until(
                    firing_in_prometheus,
                    timeout=30,
                    message=lambda: f"SlowWork firing in Prometheus: {prom.rules()!r}",
                )
                assert alert["labels"]["route"] == "/work"
                assert alert["labels"]["severity"] == "critical"
                assert re.fullmatch(r"/work p95 is \d+ ms", alert["annotations"]["summary"])
                # Every exported rule, thresholds included, evaluates without error.
                health = {r["name"]: r["health"] for g in prom.rules() for r in g["rules"]}
                assert set(health) == {
                    "SlowWork",
                    "HighResponseTime",
                    "HighErrorRate",
                    "HighMemoryUsage",
                    "HighCpuUsage",
                }
                assert set(health.values()) == {"ok"}, health

                delay["s"] = FAST
                wait_until(
                    lambda: not in_process(monitoring, "SlowWork"),
                    timeout=20,
                    message="SlowWork resolved in-process",
                )
                wait_until(
                    lambda: not firing_in_prometheus(),
                    timeout=30,
                    message="SlowWork resolved in Prometheus",
                )
    finally:
        monitoring.shutdown(5)
