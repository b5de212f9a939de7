"""The test harness itself: uvicorn in a thread, promtool, Prometheus and Alertmanager."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from servers import (
    ALERTMANAGER_MISSING,
    PROMETHEUS_MISSING,
    AlertmanagerServer,
    ASGIApp,
    HarnessError,
    PrometheusServer,
    ServerStartError,
    alertmanager_path,
    prometheus_path,
    promtool_check_metrics,
    requires_prometheus,
    requires_promtool,
    serve_asgi,
    wait_until,
)

EXPOSITION_TYPE = b"text/plain; version=0.0.4; charset=utf-8"

VALID_EXPOSITION = """\
# HELP harness_requests_total Requests served by the harness app.
# TYPE harness_requests_total counter
harness_requests_total{route="/"} 3
# HELP harness_temperature_celsius A hand-written gauge.
# TYPE harness_temperature_celsius gauge
harness_temperature_celsius 21.5
"""


def raw_app(
    body: bytes, *, content_type: bytes = b"text/plain; charset=utf-8", events: list[str]
) -> ASGIApp:
    """A raw ASGI app answering every request with ``body``; it notes lifespan events and paths."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    events.append("startup")
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    events.append("shutdown")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        events.append(scope["path"])
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


@dataclass
class Stack:
    """An app serving VALID_EXPOSITION, scraped by a Prometheus with a rule on it."""

    url: str
    prometheus: PrometheusServer
    alertmanager: AlertmanagerServer | None
    events: list[str]

    @property
    def target(self) -> str:
        return self.url.removeprefix("http://")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One scraped stack for the module: Prometheus takes ~5 s to scrape a new target first."""
    if prometheus_path() is None:
        pytest.skip(PROMETHEUS_MISSING)
    rules = tmp_path_factory.mktemp("rules") / "harness.rules.yml"
    rule = {"alert": "HarnessTooWarm", "expr": "harness_temperature_celsius > 20"}
    rules.write_text(json.dumps({"groups": [{"name": "harness", "rules": [rule]}]}))
    events: list[str] = []
    app = raw_app(VALID_EXPOSITION.encode(), content_type=EXPOSITION_TYPE, events=events)
    with ExitStack() as exits:
        url = exits.enter_context(serve_asgi(app))
        manager = None
        if alertmanager_path() is not None:
            manager = exits.enter_context(AlertmanagerServer())
        prom = exits.enter_context(
            PrometheusServer(
                [url.removeprefix("http://")],
                rule_files=[rules],
                alertmanager=manager.address if manager else None,
            )
        )
        yield Stack(url, prom, manager, events)


def server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "uvicorn-test-server"]


def test_serve_asgi_serves_an_app_and_stops_cleanly() -> None:
    """serve_asgi runs a raw ASGI app under uvicorn on 127.0.0.1 and on exit frees its thread and port."""
    events: list[str] = []
    with serve_asgi(raw_app(b"hello", events=events)) as url:
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(trust_env=False) as client:
            response = client.get(f"{url}/hello")
        assert (response.status_code, response.text) == (200, "hello")
        assert len(server_threads()) == 1

    assert events == ["startup", "/hello", "shutdown"]
    assert server_threads() == []
    with pytest.raises(httpx.ConnectError), httpx.Client(trust_env=False) as client:
        client.get(url)


def test_serve_asgi_reports_an_app_that_fails_to_start() -> None:
    """serve_asgi raises ServerStartError, without hanging, when the app's lifespan startup fails."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    with pytest.raises(ServerStartError), serve_asgi(app):
        pass
    assert server_threads() == []


@requires_promtool
@pytest.mark.parametrize("exposition", [VALID_EXPOSITION, VALID_EXPOSITION.encode()])
def test_promtool_finds_nothing_in_a_valid_exposition(exposition: str | bytes) -> None:
    """promtool_check_metrics returns no finding for a valid exposition, given as text or bytes."""
    assert promtool_check_metrics(exposition) == []


@requires_promtool
@pytest.mark.parametrize(
    ("exposition", "expected"),
    [
        pytest.param(
            "# HELP jobs A counter.\n# TYPE jobs counter\njobs 1\n",
            'jobs counter metrics should have "_total" suffix',
            id="counter-without-total",
        ),
        pytest.param(
            "# HELP queue_depth One.\n# HELP queue_depth Two.\n# TYPE queue_depth gauge\nqueue_depth 1\n",
            'second HELP line for metric name "queue_depth"',
            id="duplicate-help",
        ),
    ],
)
def test_promtool_reports_a_real_problem(exposition: str, expected: str) -> None:
    """promtool_check_metrics returns promtool's finding for a lint problem or a parse error."""
    findings = promtool_check_metrics(exposition)
    assert len(findings) == 1
    assert expected in findings[0]


@requires_prometheus
def test_prometheus_that_fails_to_start_reports_its_log(tmp_path: Path) -> None:
    """PrometheusServer raises ServerStartError carrying Prometheus's own error when it cannot start."""
    rules = tmp_path / "broken.rules.yml"
    rules.write_text(
        json.dumps({"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "("}]}]})
    )

    with (
        pytest.raises(ServerStartError, match="exited with code") as caught,
        PrometheusServer([], rule_files=[rules]),
    ):
        pass
    assert "broken.rules.yml" in str(caught.value)


@pytest.mark.slow
def test_alertmanager_accepts_a_posted_alert(alertmanager: AlertmanagerServer) -> None:
    """A real Alertmanager accepts a posted alert and lists it as active through its v2 API."""
    alertmanager.post_alerts(
        [{"labels": {"alertname": "HarnessProbe"}, "annotations": {"summary": "from a test"}}]
    )

    alerts = wait_until(
        lambda: [a for a in alertmanager.alerts() if a["labels"]["alertname"] == "HarnessProbe"],
        timeout=10,
        message="the posted alert in Alertmanager",
    )

    assert alerts[0]["status"]["state"] == "active"
    assert alerts[0]["annotations"] == {"summary": "from a test"}


@pytest.mark.slow
def test_prometheus_scrapes_a_served_exposition(stack: Stack) -> None:
    """A real Prometheus scrapes a raw ASGI app's hand-written exposition and a query returns its value."""
    result = stack.prometheus.wait_for("harness_temperature_celsius", lambda r: len(r) == 1)

    assert result[0]["metric"] == {
        "__name__": "harness_temperature_celsius",
        "instance": stack.target,
        "job": "app",
    }
    assert float(result[0]["value"][1]) == 21.5
    targets = [(t["scrapeUrl"], t["health"]) for t in stack.prometheus.targets()]
    assert targets == [(f"{stack.url}/metrics", "up")]
    assert "/metrics" in stack.events


@pytest.mark.slow
def test_prometheus_sends_a_firing_rule_to_alertmanager(stack: Stack) -> None:
    """A rule file loaded by PrometheusServer fires on scraped data and reaches the Alertmanager."""
    if stack.alertmanager is None:
        pytest.skip(ALERTMANAGER_MISSING)
    manager = stack.alertmanager

    wait_until(
        lambda: [a for a in stack.prometheus.alerts() if a["state"] == "firing"],
        timeout=15,
        message="HarnessTooWarm firing in Prometheus",
    )
    received = wait_until(
        lambda: [a for a in manager.alerts() if a["labels"]["alertname"] == "HarnessTooWarm"],
        timeout=15,
        message="HarnessTooWarm in Alertmanager",
    )
    assert received[0]["labels"]["job"] == "app"


def test_prometheus_query_answers_promql_and_rejects_bad_queries(
    prometheus: Callable[..., PrometheusServer],
) -> None:
    """PrometheusServer.query returns vector and scalar results and raises HarnessError on bad PromQL."""
    prom = prometheus([])

    [vector] = prom.query('label_replace(vector(2), "role", "probe", "", "")')
    assert (vector["metric"], vector["value"][1]) == ({"role": "probe"}, "2")
    assert prom.query("3")[0]["value"][1] == "3"
    with pytest.raises(HarnessError, match="bad_data"):
        prom.query("sum(")


@pytest.mark.slow
def test_serve_fixture_runs_independent_servers(serve: Callable[[ASGIApp], str]) -> None:
    """The serve fixture starts as many apps as a test asks for, each on its own port."""
    first = serve(raw_app(b"one", events=[]))
    second = serve(raw_app(b"two", events=[]))

    assert first != second
    with httpx.Client(trust_env=False) as client:
        assert [client.get(first).text, client.get(second).text] == ["one", "two"]
