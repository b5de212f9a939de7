"""A scrape of an idle server reuses the HTTP scope's text, and is never stale for it.

The kept text may serve a scrape only while the recorder's version holds: every request,
eviction and reset moves it. Each scrape must equal a fresh render of the same moment. Scrapes
ask for gzip, as Prometheus does: a gzip scrape keeps what it sends (``test_scrape_kept.py``).
"""

from __future__ import annotations

import asyncio
import gzip
import re
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from fluxstack_otel import Monitoring, configure_monitoring
from fluxstack_otel._internal.http import recorder as recorder_module
from fluxstack_otel._internal.http.recorder import HttpRecorder
from fluxstack_otel._internal.metrics.stream import MetricStream
from fluxstack_otel._internal.sinks.prometheus.reuse import Exposition
from support.asgi import drive
from support.clocks import FakeClock
from support.configs import SCRAPED


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    status = 404 if scope["path"] == "/missing" else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def _scope(path: str, accept: str = "") -> dict[str, Any]:
    headers = [(b"accept-encoding", b"gzip")]
    if accept:
        headers.append((b"accept", accept.encode()))
    return {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
            "query_string": b"", "headers": headers, "root_path": ""}  # fmt: skip


class Served:
    """A monitored app driven in-process, and how often the recorder was snapshot."""

    def __init__(self, monitoring: Monitoring, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monitoring = monitoring
        self.app = monitoring.instrument(_app)
        recorder = monitoring._recorder
        assert recorder is not None
        # The reads of every series, for the points (``snapshot``) or for the text (``tally``);
        # the alerts' running totals are neither.
        self.snapshots = 0
        snapshot, tally = HttpRecorder.snapshot, recorder_module.tally

        def counted_snapshot(recorder: HttpRecorder) -> Any:
            self.snapshots += 1
            return snapshot(recorder)

        def counted_tally(*args: Any) -> Any:
            self.snapshots += 1
            return tally(*args)

        monkeypatch.setattr(HttpRecorder, "snapshot", counted_snapshot)
        monkeypatch.setattr(recorder_module, "tally", counted_tally)

    def get(self, path: str, accept: str = "") -> bytes:
        sent = asyncio.run(drive(self.app, _scope(path, accept)))
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        gzipped = (b"content-encoding", b"gzip") in sent[0].get("headers", [])
        return gzip.decompress(body) if gzipped else body

    def total(self, body: bytes, route: str = "<unmatched>") -> int:
        pattern = rf'^http_requests_total\{{[^}}]*route="{re.escape(route)}"[^}}]*\}} (\S+)$'
        return sum(int(float(v)) for v in re.findall(pattern, body.decode(), re.M))


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    monitoring = configure_monitoring(SCRAPED)
    try:
        yield Served(monitoring, monkeypatch)
    finally:
        monitoring.shutdown()


def test_an_idle_scrape_reuses_the_http_text_and_equals_a_fresh_render(served: Served) -> None:
    """No request between two scrapes: the second builds no HTTP point and says the same."""
    for _ in range(3):
        served.get("/hello")
    first = served.get("/metrics")
    before = served.snapshots
    second = served.get("/metrics")
    assert served.snapshots == before  # the HTTP scope came from the kept text
    assert second == first
    assert second == served.monitoring.render_prometheus()  # a render of its own, from scratch
    assert served.total(second) == 3


def test_a_request_between_two_scrapes_always_shows(served: Served) -> None:
    """Scrape, request, scrape, many times over: every scrape counts every request before it."""
    served.get("/metrics")
    for n in range(1, 41):
        served.get("/hello")
        body = served.get("/metrics")
        assert served.total(body) == n
        assert body == served.monitoring.render_prometheus()


def test_openmetrics_and_text_keep_their_own_texts(served: Served) -> None:
    """The two formats alternate on one endpoint: each reuses its own text, never the other's."""
    served.get("/hello")
    om = "application/openmetrics-text; version=1.0.0"
    for _ in range(3):
        text = served.get("/metrics")
        openmetrics = served.get("/metrics", om)
        assert not text.rstrip().endswith(b"# EOF")
        assert openmetrics.rstrip().endswith(b"# EOF")
        assert text == served.monitoring.render_prometheus()
        assert openmetrics == served.monitoring.render_prometheus(openmetrics=True)


def test_custom_metrics_are_fresh_while_the_http_text_is_reused(served: Served) -> None:
    """A custom counter moves without any request: its new value shows, the HTTP text is kept."""
    counter = served.monitoring.counter("jobs_done", description="Jobs finished.")
    served.get("/hello")
    served.get("/metrics")
    for n in range(1, 4):
        counter.add(1)
        before = served.snapshots
        body = served.get("/metrics")
        assert served.snapshots == before
        assert re.search(rf"^jobs_done_total(\{{[^}}]*\}})? {n}(\.0)?$", body.decode(), re.M), body
        assert body == served.monitoring.render_prometheus()


def test_a_series_evicted_between_two_scrapes_leaves_the_next() -> None:
    """Retention: a route idle past the period is gone from the next scrape, not kept in text."""
    clock = FakeClock()
    recorder = HttpRecorder(retention_period=10.0, clock=clock)
    reader = InMemoryMetricReader()
    stream = MetricStream([reader], recorder.to_metrics, _resource())
    exposition = Exposition(stream.collect, recorder.version)
    recorder.record("GET", "/old", 200, None, 0.01, 0, 5, clock())
    assert b'route="/old"' in exposition.render(False)
    assert b'route="/old"' in exposition.render(False)
    clock.advance(11.0)
    recorder.record("GET", "/new", 200, None, 0.01, 0, 5, clock())
    clock.advance(5.0)  # /old idle 16 s, /new 5 s
    body = exposition.render(False)
    assert b'route="/old"' not in body
    assert b'route="/new"' in body
    clock.advance(6.0)  # /new idle 11 s: evicted without any request moving the version
    assert b'route="/new"' not in exposition.render(False)


def test_in_progress_turns_reuse_off() -> None:
    """With in_progress the HTTP scope moves without a record: every scrape renders afresh."""
    monitoring = configure_monitoring(
        {
            "service_name": "svc",
            "set_global": False,
            "system_metrics": False,
            "in_progress": True,
            "exporters": [{"type": "prometheus", "endpoint": "/metrics"}],
        }
    )
    try:
        recorder = monitoring._recorder
        assert recorder is not None
        assert recorder.version() is None
    finally:
        monitoring.shutdown()


def _resource() -> Any:
    from opentelemetry.sdk.resources import Resource

    return Resource.create({"service.name": "svc"})
