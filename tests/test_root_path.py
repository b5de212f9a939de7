"""Endpoints, exclusions and route labels under a ``root_path``: uvicorn --root-path and Mounts."""

from __future__ import annotations

import asyncio
import string
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from fluxstack_otel import Monitoring, configure_monitoring
from fluxstack_otel._internal.http.paths import local_path
from servers import serve_asgi, wait_until

# Every kind of endpoint: the exposition, the JSON document, the dashboard page, assets and data.
CONFIG: dict[str, Any] = {
    "system_metrics": False,
    "exporters": [{"type": "prometheus"}, {"type": "json", "endpoint": "/metrics.json"}],
    "dashboard": {"enabled": True},
    "excluded_paths": ["/health", "/static/*", "re:^/internal/[a-z]+$"],
}
ENDPOINTS = [
    "/metrics",
    "/metrics.json",
    "/metrics/dashboard",
    "/metrics/dashboard/app.js",
    "/metrics/dashboard/style.css",
    "/metrics/dashboard/data.json",
]


async def ok(request: Request) -> Response:
    return PlainTextResponse("ok")


INNER_PATHS = ["/health", "/static/{name}", "/internal/{name}", "/items/{item_id}"]
"""The inner app's routes, each answering ``ok``; a mount under a template adds one more."""


def inner_app() -> Starlette:
    leaf = Mount("/deep/{zone}", routes=[Route("/leaf/{leaf_id}", ok)])
    return Starlette(routes=[*(Route(path, ok) for path in INNER_PATHS), leaf])


@pytest.fixture
def monitoring() -> Iterator[Monitoring]:
    m = configure_monitoring(CONFIG)
    yield m
    m.shutdown()


def series(m: Monitoring, name: str = "http_requests_total") -> dict[tuple[str, str], float]:
    out = {}
    for family in text_string_to_metric_families(m.render_prometheus().decode()):
        for s in family.samples:
            if s.name == name:
                out[(s.labels["method"], s.labels["route"])] = s.value
    return out


def test_local_path_strips_the_prefix_only_at_a_segment_boundary() -> None:
    """``/api/metrics`` under ``/api`` is ``/metrics``; ``/apix`` and a path without it stay."""
    assert local_path("/api/metrics", "/api") == "/metrics"
    assert local_path("/api", "/api") == "/"
    assert local_path("/apix/metrics", "/api") == "/apix/metrics"
    assert local_path("/metrics", "/api") == "/metrics"  # a server that leaves root_path out


def test_a_route_shared_by_the_top_level_and_a_mount_keeps_each_template() -> None:
    """One ``Route`` object listed at the top and under ``/v1`` is labelled by where it matched."""
    shared = [Route("/items/{item_id}", ok)]
    m = configure_monitoring({"system_metrics": False})
    app = m.instrument(Starlette(routes=[*shared, Mount("/v1", routes=shared)]))

    async def drive() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for path in ("/items/1", "/v1/items/2", "/items/3", "/v1/items/4", "/v1/items/5"):
                assert (await client.get(path)).status_code == 200

    try:
        asyncio.run(drive())
        assert series(m) == {("GET", "/items/{item_id}"): 2.0, ("GET", "/v1/items/{item_id}"): 3.0}
    finally:
        m.shutdown()


def _check_served_and_uncounted(client: Any, prefix: str, m: Monitoring) -> None:
    for path in ENDPOINTS:
        response = client.get(prefix + path)
        assert response.status_code == 200, (prefix + path, response.status_code)
    for path in ("/health", "/static/a.css", "/internal/x"):
        assert client.get(prefix + path).status_code == 200
    assert client.get(prefix + "/items/7").status_code == 200
    # The middleware records once the app has returned, a moment after the client has the body.
    counted = wait_until(lambda: series(m), timeout=10, message="the app request to be recorded")
    # Scrapes and excluded paths are no request of the app; the one app request is.
    assert counted == {("GET", prefix_template(prefix) + "/items/{item_id}"): 1.0}


def prefix_template(prefix: str) -> str:
    # The mounts above the middleware are part of the route; a deployment's root_path is not.
    return {"": "", "/sub": "/sub", "/t/acme": "/t/{tenant}"}[prefix]


def test_real_uvicorn_root_path_serves_every_endpoint(monitoring: Monitoring) -> None:
    """Under ``uvicorn --root-path /api`` every endpoint answers and exclusions still hold."""
    app = monitoring.instrument(inner_app())
    with (
        serve_asgi(app, root_path="/api") as base,
        httpx.Client(base_url=base, timeout=10, trust_env=False) as client,
    ):
        # The proxy in front strips /api; uvicorn puts it back into both path and root_path.
        _check_served_and_uncounted(client, "", monitoring)


@pytest.mark.parametrize("prefix", ["/sub", "/t/acme"])
def test_a_mounted_instrumented_app_serves_every_endpoint(
    monitoring: Monitoring, prefix: str
) -> None:
    """Mounted at a fixed or a templated prefix, every endpoint answers below the mount."""
    outer = Starlette(
        routes=[Mount("/sub", app=monitoring.instrument(inner_app()))]
        if prefix == "/sub"
        else [Mount("/t/{tenant}", app=monitoring.instrument(inner_app()))]
    )
    with serve_asgi(outer) as base, httpx.Client(base_url=base, timeout=10) as client:
        _check_served_and_uncounted(client, prefix, monitoring)


def test_the_dashboard_trailing_slash_redirects_to_the_page_under_a_mount(
    monitoring: Monitoring,
) -> None:
    """``<dashboard>/`` answers 308 to the page, relative, so the redirect holds under a mount."""
    outer = Starlette(routes=[Mount("/sub", app=monitoring.instrument(inner_app()))])
    with serve_asgi(outer) as base, httpx.Client(base_url=base, timeout=10) as client:
        first = client.get("/sub/metrics/dashboard/")
        assert first.status_code == 308
        assert first.headers["location"] == "../dashboard"
        followed = client.get("/sub/metrics/dashboard/", follow_redirects=True)
        assert followed.status_code == 200
        assert str(followed.url).endswith("/sub/metrics/dashboard")
        assert "<html" in followed.text.lower()


# --- the route label is a template, never raw text -----------------------------------------------

SEGMENT = st.text(string.ascii_letters + string.digits + "-_.@~", min_size=1, max_size=20).filter(
    lambda s: s not in (".", "..")
)
TEMPLATES = {
    "/t/{tenant}/items/{item_id}",
    "/t/{tenant}/deep/{zone}/leaf/{leaf_id}",
    "/t/{tenant}/health",
    "<unmatched>",
}


REQUESTS = st.lists(
    st.tuples(st.sampled_from(["items", "deep", "health", "nowhere"]), SEGMENT, SEGMENT, SEGMENT),
    min_size=1,
    max_size=8,
)


def test_route_labels_under_a_templated_mount_are_templates() -> None:
    """Whatever tenants, ids and paths clients send, every route label is one of the templates."""
    m = configure_monitoring({"system_metrics": False})
    app = Starlette(routes=[Mount("/t/{tenant}", app=m.instrument(inner_app()))])

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(requests=REQUESTS)
    def check(requests: list[tuple[str, str, str, str]]) -> None:
        paths = [
            {
                "items": f"/t/{tenant}/items/{a}",
                "deep": f"/t/{tenant}/deep/{a}/leaf/{b}",
                "health": f"/t/{tenant}/health",
                "nowhere": f"/t/{tenant}/{a}/{b}",
            }[kind]
            for kind, tenant, a, b in requests
        ]

        async def drive() -> None:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                for path in paths:
                    await client.get(path)

        asyncio.run(drive())
        routes = {route for _, route in series(m)}
        assert routes <= TEMPLATES, routes - TEMPLATES

    try:
        check()
    finally:
        m.shutdown()


def test_a_malformed_root_path_never_breaks_the_request(monitoring: Monitoring) -> None:
    """A non-string ``root_path`` or ``app_root_path`` reaches the app; monitoring raises nothing."""
    seen = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        pass

    wrapped = monitoring.instrument(app)
    for root_path, app_root_path in ((b"/api", ""), (7, 7), ("/api", b"/x")):
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/api/x",
            "root_path": root_path,
            "app_root_path": app_root_path,
            "headers": [],
            "query_string": b"",
        }
        asyncio.run(wrapped(scope, receive, send))
    assert seen == ["/api/x"] * 3
