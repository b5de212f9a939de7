"""A large scrape streams its exposition in chunks: the body is never held whole.

A fresh scrape used to join the whole text, then encode it, then compress it: three copies of a
body that is 28 MB at 10,000 label sets, and the allocator kept that much for the next scrape.
Now each chunk of about ``exposition.CHUNK`` characters is made on the render thread, gzipped
into one stream and sent with ``more_body`` before the next is made. What the scraper reads must
be the exposition a render gives, byte for byte, over a real server and in a real Prometheus;
a small body is still one message with its length; a text over ``reuse.KEEP_MAX`` is not kept.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from fluxstack_otel import Monitoring, configure_monitoring
from fluxstack_otel._internal.sinks.prometheus import exposition, reuse
from fluxstack_otel._internal.sinks.prometheus.deflate import Deflated
from servers import (
    PrometheusServer,
    free_port,
    promtool_check_metrics,
    requires_prometheus,
    serve_asgi,
)
from support.asgi import drive
from support.configs import SCRAPED
from support.reads import tally_reads

ROUTES = 300


async def _ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


# One label set per route: 300 of them make a body of about 800 KB.
ok_app = Starlette(routes=[Route(f"/r{i}", _ok) for i in range(ROUTES)])


def _scope(path: str, method: str = "GET", gzip_ok: bool = False) -> dict[str, Any]:
    headers = [(b"accept-encoding", b"gzip")] if gzip_ok else []
    return {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
            "query_string": b"", "headers": headers, "root_path": ""}  # fmt: skip


@pytest.fixture
def monitoring(monkeypatch: pytest.MonkeyPatch) -> Iterator[Monitoring]:
    monkeypatch.setattr(exposition, "CHUNK", 4096)  # a body of 300 label sets: many chunks
    monkeypatch.setattr(reuse, "PIECE", 1024)  # and, gzipped, many messages
    m = configure_monitoring(SCRAPED)
    try:
        yield m
    finally:
        m.shutdown()


def _feed(app: Any) -> None:
    async def go() -> None:
        for i in range(ROUTES):
            await drive(app, _scope(f"/r{i}"))

    asyncio.run(go())


def _from_points(monitoring: Monitoring) -> bytes:
    """The exposition the renderer writes for the stream's OTel points (no text from the series)."""
    data = monitoring._p.exported.collect(None)
    return exposition.render(data, openmetrics=False, options=monitoring._render_options())


def _bodies(sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in sent if m["type"] == "http.response.body"]


def _endpoint(monitoring: Monitoring) -> Any:
    return next(s for s in monitoring._sinks if type(s).__name__ == "PrometheusSink")._endpoint


def _scraped(app: Any, compressed: bool) -> bytes:
    """A scrape's body as the scraper decodes it (gzip checks the member's CRC and length)."""
    body = b"".join(
        m["body"] for m in _bodies(asyncio.run(drive(app, _scope("/metrics", gzip_ok=compressed))))
    )
    return gzip.decompress(body) if compressed else body


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_a_large_scrape_arrives_in_chunks_that_make_the_render(
    monitoring: Monitoring, compressed: bool
) -> None:
    app = monitoring.instrument(ok_app)
    _feed(app)
    for _ in range(2):  # afresh from the series, then (gzip) from the kept fragment
        sent = asyncio.run(drive(app, _scope("/metrics", gzip_ok=compressed)))
        start = sent[0]
        headers = dict(start["headers"])
        assert b"content-length" not in headers  # unknown until the end: chunked on the wire
        assert (headers.get(b"content-encoding") == b"gzip") is compressed
        bodies = _bodies(sent)
        assert len(bodies) > (2 if compressed else 10)
        assert all(m["more_body"] for m in bodies[:-1])
        assert not bodies[-1]["more_body"]
        body = b"".join(m["body"] for m in bodies)
        text = gzip.decompress(body) if compressed else body
        assert text == monitoring.render_prometheus()
        assert text == _from_points(monitoring)
        assert text.count(b"http_requests_total{") == ROUTES


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_a_small_scrape_is_one_message_with_its_length(
    monitoring: Monitoring, monkeypatch: pytest.MonkeyPatch, compressed: bool
) -> None:
    monkeypatch.setattr(exposition, "CHUNK", 1 << 20)
    monkeypatch.setattr(reuse, "PIECE", 1 << 16)
    app = monitoring.instrument(ok_app)
    _feed(app)
    sent = asyncio.run(drive(app, _scope("/metrics", gzip_ok=compressed)))
    (body,) = _bodies(sent)
    assert dict(sent[0]["headers"])[b"content-length"] == str(len(body["body"])).encode()
    text = gzip.decompress(body["body"]) if compressed else body["body"]
    assert text == monitoring.render_prometheus()


def test_head_on_a_streamed_body_gives_its_length_and_no_body(monitoring: Monitoring) -> None:
    app = monitoring.instrument(ok_app)
    _feed(app)
    length = len(b"".join(m["body"] for m in _bodies(asyncio.run(drive(app, _scope("/metrics"))))))
    sent = asyncio.run(drive(app, _scope("/metrics", method="HEAD")))
    assert dict(sent[0]["headers"])[b"content-length"] == str(length).encode()
    assert b"".join(m["body"] for m in _bodies(sent)) == b""


NATIVE_SCRAPER = (  # what a Prometheus with native histograms on asks for
    b"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
    b"encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3"
)


def test_a_protobuf_scrape_is_gzipped_when_asked_and_inflates_to_the_plain_one(
    monitoring: Monitoring,
) -> None:
    """The delimited protobuf body goes through the scrape's compressor as one gzip member: the
    scraper's gunzip (which checks the member's CRC and length) gives the uncompressed body."""
    app = monitoring.instrument(ok_app)
    _feed(app)
    bodies: dict[bool, bytes] = {}
    for compressed in (False, True):
        scope = _scope("/metrics", gzip_ok=compressed)
        scope["headers"].append((b"accept", NATIVE_SCRAPER))
        sent = asyncio.run(drive(app, scope))
        headers = dict(sent[0]["headers"])
        assert headers[b"content-type"].startswith(b"application/vnd.google.protobuf")
        assert (headers.get(b"content-encoding") == b"gzip") is compressed
        bodies[compressed] = b"".join(m["body"] for m in _bodies(sent))
    assert len(bodies[True]) < len(bodies[False]) // 4
    assert gzip.decompress(bodies[True]) == bodies[False]
    assert bodies[False].count(b"http_requests_total") == 1  # one family, its series inside


def test_a_text_over_the_budget_is_streamed_afresh_and_not_kept(
    monitoring: Monitoring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory never holds a large exposition between scrapes: each one writes it anew."""
    monkeypatch.setattr(reuse, "KEEP_MAX", 2_000)  # compressed bytes; the text's are ~35,000
    app = monitoring.instrument(ok_app)
    _feed(app)
    kept = _endpoint(monitoring)._exposition._kept[False]
    for _ in range(2):
        body = _scraped(app, compressed=True)
        assert body == monitoring.render_prometheus()
        assert kept.current()[1] is None
    monkeypatch.setattr(reuse, "KEEP_MAX", 1 << 23)
    _scraped(app, compressed=True)
    assert kept.current()[1] is not None  # under the budget: kept for the next scrape


def test_a_failure_after_the_start_leaves_the_response_unfinished(
    monitoring: Monitoring, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A scraper must see a failed scrape, never a short exposition that looks whole."""
    app = monitoring.instrument(ok_app)
    _feed(app)
    made = exposition.chunked

    def failing(texts: Any, size: int | None = None) -> Iterator[bytes]:
        for n, chunk in enumerate(made(texts, size)):
            if n == 2:  # the HTTP scope's third chunk, after the first messages went out
                raise RuntimeError("disk on fire")
            yield chunk

    monkeypatch.setattr(reuse, "chunked", failing)
    sent = asyncio.run(drive(app, _scope("/metrics")))
    assert sent[0]["status"] == 200
    assert all(m["more_body"] for m in _bodies(sent))  # no final message
    assert "rendering the Prometheus exposition failed" in caplog.text


def test_uvicorn_sends_it_chunked_and_promtool_and_urllib_read_it(monitoring: Monitoring) -> None:
    app = monitoring.instrument(ok_app)
    _feed(app)
    with serve_asgi(app) as base:
        with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
            assert response.headers["Transfer-Encoding"] == "chunked"
            body = response.read()
        request = urllib.request.Request(base + "/metrics", headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=10) as response:
            zipped = gzip.decompress(response.read())
    assert body == zipped == monitoring.render_prometheus()
    assert promtool_check_metrics(body) == []


@pytest.mark.slow
@requires_prometheus
def test_a_real_prometheus_scrapes_the_streamed_exposition(
    monitoring: Monitoring, prometheus: Callable[..., PrometheusServer]
) -> None:
    app = monitoring.instrument(ok_app)
    _feed(app)
    with serve_asgi(app) as base:
        prom = prometheus([base.removeprefix("http://")])
        result = prom.wait_for(f"count(http_requests_total) == {ROUTES}")
        assert float(result[0]["value"][1]) == ROUTES
        # Scrapes after the first send the kept fragment spliced into their gzip member: every
        # one of them read whole, the same samples each time.
        prom.wait_for("count_over_time(scrape_samples_scraped[1m]) >= 3")
        prom.wait_for("min_over_time(up[1m]) == 1")
        same = prom.wait_for(
            "max_over_time(scrape_samples_scraped[1m]) - min_over_time(scrape_samples_scraped[1m])"
        )
        assert float(same[0]["value"][1]) == 0
        kept = [k.current()[1] for k in _endpoint(monitoring)._exposition._kept.values()]
        assert any(part is not None and isinstance(part.text, Deflated) for part in kept)
        buckets = prom.wait_for("count(http_request_duration_seconds_bucket)")
        assert float(buckets[0]["value"][1]) > ROUTES * 10


def test_the_exporters_own_port_serves_the_streamed_body_with_its_length(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exposition, "CHUNK", 4096)
    port = free_port()
    m = configure_monitoring(
        {
            "service_name": "svc",
            "set_global": False,
            "system_metrics": False,
            "exporters": [{"type": "prometheus", "host": "127.0.0.1", "port": port}],
        }
    )
    try:
        _feed(m.instrument(ok_app))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            length = int(response.headers["Content-Length"])
            body = response.read()
        assert length == len(body)
        assert body == m.render_prometheus()
    finally:
        m.shutdown()


def test_an_openmetrics_scrape_with_exemplars_reads_the_series_once(
    monitoring: Monitoring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exemplar marks come from the points: the text path gives way after one read of the
    series, and the points path does not read them for the text again."""
    app = monitoring.instrument(ok_app)
    _feed(app)
    recorder = monitoring._recorder
    assert recorder is not None
    recorder.record("GET", "/r0", 200, None, 0.02, 0, 2, time.perf_counter())
    recorder.exemplar("GET", "/r0", 200, None, 0.02, 0xABC, 0xDEF)
    reads = tally_reads(monkeypatch)
    scope = _scope("/metrics")
    scope["headers"].append((b"accept", b"application/openmetrics-text; version=1.0.0"))
    body = b"".join(m["body"] for m in _bodies(asyncio.run(drive(app, scope))))
    assert b"# {trace_id=" in body
    assert body.endswith(b"# EOF\n")
    assert reads == [1]
