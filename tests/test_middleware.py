"""MonitoringMiddleware driven in-process with raw ASGI messages: edge cases of the HTTP rules."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fluxstack_otel import Monitoring, MonitoringMiddleware, configure_monitoring
from fluxstack_otel._internal.http.recorder import DRAIN_AT
from support.asgi import drive


@pytest.fixture
def monitoring() -> Iterator[Monitoring]:
    m = configure_monitoring({"system_metrics": False})
    yield m
    m.shutdown()


def values(m: Monitoring) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(m.render_prometheus().decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def scope(path: str = "/", method: str = "GET", **extra: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [],
        **extra,
    }


MR = frozenset({("method", "GET"), ("route", "<unmatched>")})


def test_exception_is_reraised_unchanged_and_recorded_as_500(monitoring: Monitoring) -> None:
    """The app's own exception object propagates; the metrics show a 500 with its class name."""
    error = KeyError("boom")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise error

    wrapped = monitoring.instrument(app)
    with pytest.raises(KeyError) as caught:
        asyncio.run(drive(wrapped, scope("/x")))
    assert caught.value is error
    v = values(monitoring)
    mrs = MR | {("status_code", "500")}
    assert v[("http_responses_total", mrs)] == 1
    assert v[("http_errors_total", mrs | {("error_type", "KeyError")})] == 1


def test_request_without_response_counts_only_as_request(monitoring: Monitoring) -> None:
    """A client that disconnects before any response is a request, not a response."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    asyncio.run(drive(monitoring.instrument(app), scope("/gone", "POST"), [b"ab", b"cd"]))
    v = values(monitoring)
    post = frozenset({("method", "POST"), ("route", "<unmatched>")})
    assert v[("http_requests_total", post)] == 1
    assert v[("http_request_size_bytes_sum", post)] == 4
    assert not [k for k in v if k[0] == "http_responses_total"]


def test_duration_stops_at_the_last_body_byte(monitoring: Monitoring) -> None:
    """Work after the final body message (a background task) is not part of the duration."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        await asyncio.sleep(0.3)

    asyncio.run(drive(monitoring.instrument(app), scope("/bg")))
    v = values(monitoring)
    assert v[("http_request_duration_seconds_sum", MR | {("status_code", "200")})] < 0.25


def test_duration_includes_a_slow_client_until_the_final_chunk_is_handed_over(
    monitoring: Monitoring,
) -> None:
    """A server held up writing an earlier chunk (flow control, a slow client) is inside the
    duration; its write of the final chunk is not: the duration ends when that is handed over."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a" * 10, "more_body": True})
        await send({"type": "http.response.body", "body": b"b" * 10})

    async def server_send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            await asyncio.sleep(0.1 if message.get("more_body") else 0.4)

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    asyncio.run(monitoring.instrument(app)(scope("/slow"), receive, server_send))
    duration = values(monitoring)[
        ("http_request_duration_seconds_sum", MR | {("status_code", "200")})
    ]
    assert 0.099 <= duration < 0.4


def test_streamed_body_bytes_are_counted_as_sent(monitoring: Monitoring) -> None:
    """Response size is the sum of the body chunks actually sent, not a header."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"999999")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for _ in range(4):
            await send({"type": "http.response.body", "body": b"x" * 250, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    asyncio.run(drive(monitoring.instrument(app), scope("/s")))
    v = values(monitoring)
    assert v[("http_response_size_bytes_sum", MR | {("status_code", "200")})] == 1000


def test_requests_beyond_a_full_queue_are_all_counted(monitoring: Monitoring) -> None:
    """Requests past the queue's fold threshold are folded on the way, none lost or doubled."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"abc"})

    wrapped = monitoring.instrument(app)
    n = 2 * DRAIN_AT + 3

    async def many() -> None:
        for _ in range(n):
            await drive(wrapped, scope("/q", method="POST"), [b"12345"])

    asyncio.run(many())
    v = values(monitoring)
    mr = frozenset({("method", "POST"), ("route", "<unmatched>")})
    assert v[("http_requests_total", mr)] == n
    assert v[("http_request_size_bytes_sum", mr)] == 5 * n
    assert v[("http_response_size_bytes_sum", mr | {("status_code", "200")})] == 3 * n


def test_error_status_threshold_is_configurable() -> None:
    """With error_status_threshold 400 a 404 counts as an error with error_type '404'."""
    m = configure_monitoring({"system_metrics": False, "error_status_threshold": 400})

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    asyncio.run(drive(m.instrument(app), scope("/missing")))
    v = values(m)
    key = MR | {("status_code", "404"), ("error_type", "404")}
    assert v[("http_errors_total", key)] == 1
    m.shutdown()


def test_non_standard_methods_fold_into_other(monitoring: Monitoring) -> None:
    """Random methods cannot create series: they are counted under method '_OTHER'."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    wrapped = monitoring.instrument(app)
    for method in ("FOO", "BAR", "GET"):
        asyncio.run(drive(wrapped, scope("/", method)))
    v = values(monitoring)
    other = frozenset({("method", "_OTHER"), ("route", "<unmatched>")})
    assert v[("http_requests_total", other)] == 2
    assert v[("http_requests_total", MR)] == 1


def test_excluded_paths_are_not_counted() -> None:
    """Exact and prefix exclusions bypass the recorder entirely."""
    m = configure_monitoring({"system_metrics": False, "excluded_paths": ["/health", "/static/*"]})

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    wrapped = m.instrument(app)
    for path in ("/health", "/static/app.js", "/counted"):
        asyncio.run(drive(wrapped, scope(path)))
    v = values(m)
    assert v[("http_requests_total", MR)] == 1
    m.shutdown()


def test_websocket_and_lifespan_scopes_pass_through_untouched(monitoring: Monitoring) -> None:
    """Non-HTTP scopes reach the app with the original scope, receive and send objects."""
    seen: list[tuple[Any, Any, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, receive, send))

    async def receive() -> dict[str, Any]:
        return {}

    async def send(message: Any) -> None:
        return None

    wrapped = monitoring.instrument(app)
    for kind in ("websocket", "lifespan"):
        s = {"type": kind, "path": "/metrics"}
        asyncio.run(wrapped(s, receive, send))
        assert seen[-1] == (s, receive, send)
    assert not [k for k in values(monitoring) if k[0] == "http_requests_total"]


def test_disabled_monitoring_returns_the_bare_app() -> None:
    """enabled: false gives a no-op: instrument returns the app itself, the middleware passes all."""
    m = configure_monitoring({"enabled": False})

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"app says no"})

    assert m.instrument(app) is app
    sent = asyncio.run(drive(MonitoringMiddleware(app, monitoring=m), scope("/metrics")))
    assert sent[1]["body"] == b"app says no"
    m.shutdown()


def test_two_instances_in_one_process_do_not_share_series() -> None:
    """Each Monitoring has a private registry: traffic through one is invisible to the other."""
    a = configure_monitoring({"system_metrics": False})
    # Only one live instance may provide the process-wide MeterProvider (set_global).
    b = configure_monitoring({"system_metrics": False, "set_global": False})

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    asyncio.run(drive(a.instrument(app), scope("/only-a")))
    assert values(a)[("http_requests_total", MR)] == 1
    assert not [k for k in values(b) if k[0] == "http_requests_total"]
    a.shutdown()
    b.shutdown()


def test_metrics_endpoint_rejects_other_methods(monitoring: Monitoring) -> None:
    """POST /metrics answers 405 with an Allow header instead of reaching the app."""

    async def app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - not reached
        raise AssertionError("the app must not see /metrics")

    sent = asyncio.run(drive(monitoring.instrument(app), scope("/metrics", "POST")))
    assert sent[0]["status"] == 405
    assert (b"allow", b"GET, HEAD") in sent[0]["headers"]


def test_shutdown_is_idempotent(monitoring: Monitoring) -> None:
    """Calling shutdown twice is harmless."""
    monitoring.shutdown()
    monitoring.shutdown()


def test_slow_request_log_names_method_route_and_duration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With slow_request_log on, a request slower than response_time logs one warning."""
    m = configure_monitoring(
        {"system_metrics": False, "thresholds": {"response_time": 0.05, "slow_request_log": True}}
    )

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/slow":
            await asyncio.sleep(0.08)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    wrapped = m.instrument(app)
    with caplog.at_level(logging.WARNING, logger="fluxstack_otel"):
        asyncio.run(drive(wrapped, scope("/fast")))
        asyncio.run(drive(wrapped, scope("/slow")))
    slow = [r for r in caplog.records if r.getMessage().startswith("slow request")]
    assert len(slow) == 1
    assert "GET <unmatched>" in slow[0].getMessage()
    assert slow[0].duration_ms >= 80  # type: ignore[attr-defined]
    m.shutdown()


def test_an_unhandled_exception_records_the_body_that_reaches_the_client() -> None:
    """add_middleware and instrument() both record the 21-byte 500 body the client receives."""
    import httpx
    from starlette.applications import Starlette
    from starlette.routing import Route

    from servers import serve_asgi

    async def boom(request: Any) -> Any:
        raise RuntimeError("boom")

    sizes = {}
    for how in ("add_middleware", "instrument"):
        m = configure_monitoring({"system_metrics": False, "set_global": False})
        try:
            app = Starlette(routes=[Route("/boom", boom)])
            if how == "add_middleware":
                app.add_middleware(MonitoringMiddleware, monitoring=m)
                served: Any = app
            else:
                served = m.instrument(app)
            with serve_asgi(served) as base:
                response = httpx.get(f"{base}/boom", timeout=10, trust_env=False)
            assert response.status_code == 500
            v = values(m)
            labels = frozenset({("method", "GET"), ("route", "/boom"), ("status_code", "500")})
            sizes[how] = (v[("http_response_size_bytes_sum", labels)], len(response.content))
        finally:
            m.shutdown()
    assert sizes == {"add_middleware": (21.0, 21), "instrument": (21.0, 21)}


def test_two_endpoints_on_one_path_are_a_config_error_naming_both_keys() -> None:
    """A dashboard at /metrics, or a JSON endpoint on a dashboard asset, names both settings."""
    from fluxstack_otel.errors import ConfigError

    cases = [
        ({"dashboard": {"enabled": True, "path": "/metrics"}}, "dashboard.path", "exporters[0]"),
        (
            {"exporters": [{"type": "prometheus"}, {"type": "json", "endpoint": "/metrics"}]},
            "exporters[1].endpoint",
            "exporters[0].endpoint",
        ),
        (
            {
                "exporters": [{"type": "json", "endpoint": "/metrics/dashboard/data.json"}],
                "dashboard": {"enabled": True},
            },
            "dashboard.path",
            "exporters[0].endpoint",
        ),
    ]
    for config, key, other in cases:
        with pytest.raises(ConfigError) as caught:
            configure_monitoring({"system_metrics": False, **config}).shutdown()
        assert caught.value.path == key, config
        assert other in str(caught.value)


def test_an_app_route_shadowed_by_an_endpoint_is_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """instrument() and add_middleware warn about an app route on /metrics, naming the key."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    async def own(request: Any) -> Any:
        raise AssertionError("never reached")

    m = configure_monitoring({"system_metrics": False})
    try:
        with caplog.at_level(logging.WARNING, logger="fluxstack_otel"):
            m.instrument(Starlette(routes=[Route("/metrics", own), Route("/ok", own)]))
            # add_middleware: Starlette builds the stack on the first request; the middleware
            # looks through it to the router.
            app = Starlette(routes=[Route("/metrics", own)])
            app.add_middleware(MonitoringMiddleware, monitoring=m)
            asyncio.run(drive(app, scope("/metrics")))
        warnings = [r.getMessage() for r in caplog.records if "shadowed" in r.getMessage()]
    finally:
        m.shutdown()
    assert len(warnings) == 2
    assert all("'/metrics'" in w and "exporters[0].endpoint" in w for w in warnings)


def test_excluded_route_templates_exclude_every_matching_request() -> None:
    """``/users/{id}`` in excluded_paths excludes every user; other routes are still counted."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def ok(request: Any) -> Any:
        return PlainTextResponse("ok")

    m = configure_monitoring({"system_metrics": False, "excluded_paths": ["/users/{user_id}"]})
    try:
        wrapped = m.instrument(
            Starlette(routes=[Route("/users/{user_id}", ok), Route("/items/{n}", ok)])
        )
        for path in ("/users/1", "/users/2", "/items/3"):
            asyncio.run(drive(wrapped, scope(path)))
        routes = {
            dict(labels)["route"]
            for (name, labels), _ in values(m).items()
            if name == "http_requests_total"
        }
    finally:
        m.shutdown()
    assert routes == {"/items/{n}"}


def test_a_scope_without_a_method_is_recorded_as_get(monitoring: Monitoring) -> None:
    """A malformed HTTP scope with no ``method`` key is served and counted as a GET."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    s = scope("/x")
    del s["method"]
    asyncio.run(drive(monitoring.instrument(app), s))
    assert values(monitoring)[("http_requests_total", MR)] == 1
