"""The hooks auto-instrumentation installs, in process: what gets wrapped, and only once."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.metrics import MeterProvider
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from fluxstack_otel import Monitoring, MonitoringMiddleware, load_config
from fluxstack_otel._internal.integration.autowrap import MARK, install, installed, uninstall
from servers import serve_asgi


def make_monitoring(**overrides: Any) -> Monitoring:
    """A pipeline without background work, and not the process-wide provider."""
    config = {"set_global": False, "system_metrics": False, **overrides}
    return Monitoring(load_config(config))


@pytest.fixture
def hooked() -> Iterator[Monitoring]:
    """The hooks installed for a fresh pipeline, removed (and the pipeline shut) afterwards."""
    monitoring = make_monitoring()
    install(monitoring)
    try:
        yield monitoring
    finally:
        uninstall()
        monitoring.shutdown()


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello")


def requests_total(monitoring: Monitoring) -> dict[str, int]:
    """route -> http_requests_total of a pipeline."""
    out: dict[str, int] = {}
    for rm in monitoring.collect().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == "http_requests_total":
                    for point in metric.data.data_points:  # type: ignore[union-attr]
                        route = str(point.attributes["route"])  # type: ignore[index]
                        out[route] = out.get(route, 0) + int(point.value)
    return out


async def call(app: Any, *paths: str) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        return [await client.get(path) for path in paths]


def test_a_starlette_app_is_wrapped_at_its_first_call(hooked: Monitoring) -> None:
    """An app built after install serves /metrics and counts requests; a mount counts once."""
    sub = Starlette(routes=[Route("/x/{n}", hello)])
    app = Starlette(routes=[Route("/", hello), Mount("/sub", app=sub)])
    first, mounted, metrics = asyncio.run(call(app, "/", "/sub/x/1", "/metrics"))
    assert (first.status_code, mounted.status_code, metrics.status_code) == (200, 200, 200)
    assert requests_total(hooked) == {"/": 1, "/sub/x/{n}": 1}


NATIVE_TELEMETRY = "telemetry" in inspect.signature(FastAPI).parameters


@pytest.mark.parametrize(
    "native",
    [
        False,
        pytest.param(
            True,
            marks=pytest.mark.skipif(not NATIVE_TELEMETRY, reason="FastAPI has no telemetry yet"),
        ),
    ],
    ids=["plain", "native-telemetry"],
)
def test_fastapi_is_wrapped_though_it_builds_its_own_stack(
    hooked: Monitoring, native: bool
) -> None:
    """FastAPI overrides build_middleware_stack, and with its native telemetry on builds the
    stack in its own __call__: either way the stack it stores is wrapped."""
    provider = MeterProvider(shutdown_on_exit=False)
    app = FastAPI(telemetry={"meter_provider": provider}) if native else FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    try:
        asyncio.run(call(app, "/items/3"))
    finally:
        provider.shutdown()
    assert requests_total(hooked) == {"/items/{item_id}": 1}


def test_an_app_with_its_own_middleware_is_not_counted_twice(hooked: Monitoring) -> None:
    """add_middleware(MonitoringMiddleware) in app code: the hook only marks the scope."""
    own = make_monitoring()
    try:
        app = Starlette(
            routes=[Route("/", hello)],
            middleware=[Middleware(MonitoringMiddleware, monitoring=own)],
        )
        asyncio.run(call(app, "/", "/"))
        assert requests_total(own) == {"/": 2}
        assert requests_total(hooked) == {}
    finally:
        own.shutdown()


def test_an_explicitly_instrumented_app_under_uvicorn_is_not_counted_twice(
    hooked: Monitoring,
) -> None:
    """monitoring.instrument(app) handed to uvicorn: the uvicorn hook sees it and only marks."""
    own = make_monitoring()
    try:
        app = own.instrument(Starlette(routes=[Route("/", hello)]))
        with serve_asgi(app) as url:
            assert httpx.get(url, timeout=5, trust_env=False).text == "hello"
        assert requests_total(own) == {"/": 1}
        assert requests_total(hooked) == {}
    finally:
        own.shutdown()


def test_a_bare_asgi_app_under_uvicorn_is_wrapped(hooked: Monitoring) -> None:
    """Not Starlette: the uvicorn hook wraps what uvicorn loaded."""

    async def bare(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with serve_asgi(bare, lifespan="off") as url, httpx.Client(trust_env=False) as client:
        assert client.get(url + "/a").status_code == 204
        assert client.get(url + "/metrics").status_code == 200
    assert sum(requests_total(hooked).values()) == 1


def test_the_lifespan_shutdown_flushes_and_ends_the_pipeline(hooked: Monitoring) -> None:
    """After the app completes its lifespan shutdown the pipeline is shut down (the final flush)."""
    app = Starlette(routes=[Route("/", hello)])
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, str]:
        return next(incoming)

    async def send(message: dict[str, str]) -> None:
        sent.append(message["type"])
        if message["type"] == "lifespan.shutdown.complete":
            assert hooked._closed, "shut down before the server hears the app is done"

    scope: dict[str, Any] = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    asyncio.run(app(scope, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert scope[MARK] is True


def test_uninstall_restores_and_a_disabled_pipeline_wraps_nothing() -> None:
    """Apps are left alone once the hooks are removed, and while the pipeline is disabled."""
    disabled = make_monitoring(enabled=False)
    install(disabled)
    try:
        assert installed() is disabled
        (response,) = asyncio.run(call(Starlette(routes=[Route("/", hello)]), "/metrics"))
        assert response.status_code == 404
    finally:
        uninstall()
    assert installed() is None
    (response,) = asyncio.run(call(Starlette(routes=[Route("/", hello)]), "/metrics"))
    assert response.status_code == 404


def test_install_is_idempotent(hooked: Monitoring) -> None:
    """A second install only switches the pipeline later apps are wrapped with."""
    other = make_monitoring()
    try:
        install(other)
        asyncio.run(call(Starlette(routes=[Route("/", hello)]), "/"))
        assert requests_total(other) == {"/": 1}
        assert requests_total(hooked) == {}
    finally:
        install(hooked)
        other.shutdown()
