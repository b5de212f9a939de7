"""End to end over real sockets: Starlette and FastAPI apps under uvicorn, scraped and linted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from apps import auto_fastapi
from fluxstack_otel import MonitoringMiddleware, configure_monitoring
from loadgen import run_load
from servers import (
    PrometheusServer,
    promtool_check_metrics,
    requires_prometheus,
    requires_promtool,
    serve_asgi,
)
from support.configs import FLUXSTACK_SEED

pytestmark = pytest.mark.slow  # real servers or subprocesses: left out of make unit-fast

ITEM_BODY = {"id": "x", "name": "n" * 1000}
CHUNK = b"c" * 1000


async def home(request: Request) -> Response:
    return PlainTextResponse("hello")  # 5 bytes


async def item(request: Request) -> Response:
    return JSONResponse({**ITEM_BODY, "id": request.path_params["item_id"]})


async def upload(request: Request) -> Response:
    body = await request.body()
    return PlainTextResponse(str(len(body)))


async def stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield CHUNK

    return StreamingResponse(chunks())


async def thing(request: Request) -> Response:
    return JSONResponse({"thing": request.path_params["thing_id"]})


async def boom(request: Request) -> Response:
    raise RuntimeError("unhandled")


async def with_background(request: Request) -> Response:
    return PlainTextResponse("done", background=BackgroundTask(asyncio.sleep, 0.3))


async def block(request: Request) -> Response:
    time.sleep(0.2)  # blocks the event loop on purpose
    return PlainTextResponse("blocked")


def sync_endpoint(request: Request) -> Response:  # runs in the thread pool
    return PlainTextResponse("sync")


GETS = {
    "/": home,
    "/items/{item_id}": item,
    "/stream": stream,
    "/boom": boom,
    "/background": with_background,
    "/block": block,
    "/sync": sync_endpoint,
}
"""The Starlette app's GET routes (no two of them match one path, so their order is free)."""


def starlette_app() -> Starlette:
    sub = Starlette(routes=[Route("/things/{thing_id}", thing)])
    gets = [Route(path, endpoint) for path, endpoint in GETS.items()]
    return Starlette(
        routes=[*gets, Route("/upload", upload, methods=["POST"]), Mount("/sub", app=sub)]
    )


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get("/")
    async def root() -> PlainTextResponse:
        return PlainTextResponse("hello")

    @app.get("/boom")
    async def fail() -> None:
        raise RuntimeError("unhandled")

    @app.get("/sync")
    def sync() -> dict[str, str]:
        return {"ok": "sync"}

    app.include_router(auto_fastapi.router)  # /api/users/{user_id}, as the auto-instrumented app
    inner = FastAPI()

    @inner.get("/ping/{n}")
    async def ping(n: int) -> dict[str, int]:
        return {"n": n}

    app.mount("/inner", inner)
    return app


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base: str, **headers: str) -> tuple[httpx.Response, Samples]:
    response = httpx.get(f"{base}/metrics", headers=headers, timeout=10)
    response.raise_for_status()
    out: Samples = {}
    for family in parse_text(response.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return response, out


def labels(
    method: str, route: str, status: int | None = None, **more: str
) -> frozenset[tuple[str, str]]:
    pairs = {("method", method), ("route", route), *more.items()}
    if status is not None:
        pairs.add(("status_code", str(status)))
    return frozenset(pairs)


@pytest.fixture
def served_starlette() -> Iterator[str]:
    monitoring = configure_monitoring(FLUXSTACK_SEED)
    try:
        with serve_asgi(monitoring.instrument(starlette_app())) as base:
            yield base
    finally:
        monitoring.shutdown()


def chunked_body() -> Iterator[bytes]:
    yield b"a" * 700
    yield b"b" * 700
    yield b"c" * 600


def test_starlette_traffic_gives_exact_metrics(served_starlette: str) -> None:
    """Known traffic through real uvicorn yields exact counts, sizes, statuses and routes."""
    base = served_starlette
    with httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(3):
            assert client.get("/").status_code == 200
        assert client.get("/items/1").status_code == 200
        assert client.get("/items/2").status_code == 200
        assert client.post("/upload", content=chunked_body()).text == "2000"
        assert client.get("/stream").content == CHUNK * 3
        assert client.get("/does-not-exist").status_code == 404
        assert client.put("/").status_code == 405
        assert client.get("/sub/things/7").status_code == 200
        started = time.perf_counter()
        assert client.get("/background").text == "done"
        assert time.perf_counter() - started < 5
    # uvicorn closes a connection whose app raised: a request of its own.
    assert httpx.get(f"{base}/boom", timeout=10).status_code == 500

    # The /background request is recorded when its app call returns, after the 0.3 s task.
    deadline = time.monotonic() + 10
    while True:
        _, v = scrape(base)
        if (
            "http_requests_total",
            labels("GET", "/background"),
        ) in v or time.monotonic() > deadline:
            break
    item_size = len(httpx.Response(200, json={**ITEM_BODY, "id": "1"}).content)
    assert v[("http_requests_total", labels("GET", "/"))] == 3
    assert v[("http_requests_total", labels("GET", "/items/{item_id}"))] == 2
    assert v[("http_responses_total", labels("GET", "/items/{item_id}", 200))] == 2
    assert (
        v[("http_response_size_bytes_sum", labels("GET", "/items/{item_id}", 200))] == 2 * item_size
    )
    assert v[("http_response_size_bytes_sum", labels("GET", "/", 200))] == 15
    # The chunked upload: body bytes counted as received, no Content-Length involved.
    assert v[("http_request_size_bytes_sum", labels("POST", "/upload"))] == 2000
    assert v[("http_request_size_bytes_count", labels("POST", "/upload"))] == 1
    assert v[("http_response_size_bytes_sum", labels("GET", "/stream", 200))] == 3000
    assert v[("http_responses_total", labels("GET", "<unmatched>", 404))] == 1
    assert v[("http_responses_total", labels("PUT", "/", 405))] == 1
    assert v[("http_responses_total", labels("GET", "/boom", 500))] == 1
    assert v[("http_errors_total", labels("GET", "/boom", 500, error_type="RuntimeError"))] == 1
    assert v[("http_requests_total", labels("GET", "/sub/things/{thing_id}"))] == 1
    # Background work (0.3 s) is not part of the request's duration.
    assert v[("http_request_duration_seconds_sum", labels("GET", "/background", 200))] < 0.25
    # Histogram counts equal request counts; no raw path ever becomes a label.
    assert v[("http_request_duration_seconds_count", labels("GET", "/", 200))] == 3
    assert not [k for k in v if ("route", "/items/1") in k[1]]
    # Only 4xx/5xx at or above the threshold (500) are errors.
    assert not [k for k in v if k[0] == "http_errors_total" and ("status_code", "404") in k[1]]
    families = {name for name, _ in v}
    for name in ("process_memory_rss_bytes", "system_memory_total_bytes", "system_load_average_1m"):
        assert name in families


@requires_promtool
def test_exposition_passes_promtool(served_starlette: str) -> None:
    """After mixed traffic, promtool check metrics reports nothing, in text and OpenMetrics."""
    with httpx.Client(base_url=served_starlette, timeout=10) as client:
        client.get("/")
        client.get("/nope")
        client.post("/upload", content=b"x" * 512)
    httpx.get(f"{served_starlette}/boom", timeout=10)
    text, _ = scrape(served_starlette)
    assert text.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert promtool_check_metrics(text.text) == []
    om = httpx.get(
        f"{served_starlette}/metrics",
        headers={"accept": "application/openmetrics-text;version=1.0.0"},
        timeout=10,
    )
    assert (
        om.headers["content-type"] == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    )
    # promtool reads the 0.0.4 text format only; OpenMetrics is checked by the strict OM parser.
    assert {f.name for f in parse_om(om.text)} >= {"http_requests", "http_request_duration_seconds"}


def test_the_catalogue_families_and_nothing_else(served_starlette: str) -> None:
    """/metrics holds exactly the catalogue's families: no default collectors, no target_info."""
    with httpx.Client(base_url=served_starlette, timeout=10) as client:
        client.get("/")
        client.get("/block")  # gives the loop-lag probe a sample
    httpx.get(f"{served_starlette}/boom", timeout=10)
    response = httpx.get(f"{served_starlette}/metrics", timeout=10)
    names = {f.name for f in parse_text(response.text)}
    assert names == {
        "http_requests",
        "http_responses",
        "http_errors",
        "http_request_duration_seconds",
        "http_request_size_bytes",
        "http_response_size_bytes",
        "process_memory_rss_bytes",
        "process_memory_heap_used_bytes",
        "process_cpu_user_seconds",
        "nodejs_eventloop_lag_seconds",
        "system_memory_total_bytes",
        "system_load_average_1m",
        "system_cpu_cores",
    }
    assert "otel_scope_name" not in response.text


def test_gzip_when_accepted(served_starlette: str) -> None:
    """A scraper that accepts gzip gets a gzip body that decompresses to the exposition."""
    raw = httpx.get(f"{served_starlette}/metrics", headers={"accept-encoding": "gzip"}, timeout=10)
    assert raw.headers["content-encoding"] == "gzip"
    plain = httpx.get(
        f"{served_starlette}/metrics", headers={"accept-encoding": "identity"}, timeout=10
    )
    assert "content-encoding" not in plain.headers
    # httpx decodes the body: equal content proves the gzip stream was whole and valid.
    assert b"# TYPE http_requests_total counter" in raw.content
    assert len(raw.content) > int(raw.headers["content-length"])


def test_event_loop_lag_sees_a_blocking_endpoint(served_starlette: str) -> None:
    """An endpoint that blocks the loop 200 ms makes nodejs_eventloop_lag_seconds read >= 0.1."""
    with httpx.Client(base_url=served_starlette, timeout=10) as client:
        client.get("/")  # starts the probe on the server's loop
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # wait until the probe has sampled
            if ("nodejs_eventloop_lag_seconds", frozenset()) in scrape(served_starlette)[1]:
                break
        assert client.get("/block").text == "blocked"
    _, v = scrape(served_starlette)
    assert v[("nodejs_eventloop_lag_seconds", frozenset())] >= 0.1


def test_fastapi_routers_mounts_and_add_middleware() -> None:
    """FastAPI via add_middleware: included routers and mounted apps give full route templates."""
    monitoring = configure_monitoring({"system_metrics": False})
    app = fastapi_app()
    app.add_middleware(MonitoringMiddleware, monitoring=monitoring)
    try:
        with serve_asgi(app) as base, httpx.Client(base_url=base, timeout=10) as client:
            assert client.get("/api/users/3").json() == {"user_id": 3}
            assert client.get("/api/users/4").status_code == 200
            assert client.get("/inner/ping/9").json() == {"n": 9}
            assert client.get("/sync").status_code == 200
            assert client.get("/api/users/not-a-number").status_code == 422
            assert httpx.get(f"{base}/boom", timeout=10).status_code == 500
            _, v = scrape(base)
    finally:
        monitoring.shutdown()
    assert v[("http_requests_total", labels("GET", "/api/users/{user_id}"))] == 3
    assert v[("http_responses_total", labels("GET", "/api/users/{user_id}", 422))] == 1
    assert v[("http_requests_total", labels("GET", "/inner/ping/{n}"))] == 1
    assert v[("http_requests_total", labels("GET", "/sync"))] == 1
    assert v[("http_errors_total", labels("GET", "/boom", 500, error_type="RuntimeError"))] == 1


def test_standalone_server_serves_the_exposition() -> None:
    """With a port, /metrics is served on its own loopback server and not on the app."""
    monitoring = configure_monitoring(
        {"exporters": [{"type": "prometheus", "host": "127.0.0.1", "port": 0}]}
    )
    try:
        (server,) = monitoring.prometheus_servers
        with serve_asgi(monitoring.instrument(starlette_app())) as base:
            httpx.get(f"{base}/", timeout=10)
            assert httpx.get(f"{base}/metrics", timeout=10).status_code == 404
            own = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10)
        assert own.status_code == 200
        assert 'http_requests_total{method="GET",route="/"} 1' in own.text
    finally:
        monitoring.shutdown()


@pytest.mark.slow
def test_concurrency_10000_requests_over_100_connections() -> None:
    """10,000 requests over 100 concurrent connections, async and thread-pool endpoints: exact."""
    monitoring = configure_monitoring({"system_metrics": False})
    per_route = 5000
    requests = [("GET", "/items/7", b""), ("GET", "/sync", b"")] * per_route
    try:
        with serve_asgi(monitoring.instrument(starlette_app())) as base:
            result = run_load(base, requests, connections=100)
            _, v = scrape(base)
    finally:
        monitoring.shutdown()
    assert result.count("/items/7", 200) == per_route
    assert result.count("/sync", 200) == per_route
    for route in ("/items/{item_id}", "/sync"):
        assert v[("http_requests_total", labels("GET", route))] == per_route
        assert v[("http_responses_total", labels("GET", route, 200))] == per_route
        assert v[("http_request_duration_seconds_count", labels("GET", route, 200))] == per_route
        assert (
            v[("http_request_duration_seconds_bucket", labels("GET", route, 200, le="+Inf"))]
            == per_route
        )


@requires_prometheus
def test_real_prometheus_scrapes_the_app(served_starlette: str) -> None:
    """A real Prometheus server scrapes /metrics and its API returns the expected series."""
    with httpx.Client(base_url=served_starlette, timeout=10) as client:
        for _ in range(4):
            client.get("/items/5")
    httpx.get(f"{served_starlette}/boom", timeout=10)
    target = served_starlette.removeprefix("http://")
    with PrometheusServer(targets=[target]) as prometheus:
        result = prometheus.wait_for(
            'http_requests_total{route="/items/{item_id}"}',
            lambda r: bool(r) and float(r[0]["value"][1]) == 4,
            timeout=30,
        )
        assert result[0]["metric"]["method"] == "GET"
        errors = prometheus.query('http_errors_total{error_type="RuntimeError"}')
        assert float(errors[0]["value"][1]) == 1
        rss = prometheus.query("process_memory_rss_bytes")
        assert float(rss[0]["value"][1]) > 0
        histogram = prometheus.query(
            'histogram_quantile(0.5, sum by (le) (http_request_duration_seconds_bucket{route="/items/{item_id}"}))'
        )
        assert 0 < float(histogram[0]["value"][1]) <= 10
