"""The opt-in HTTP options peers' users expect, through real uvicorn and a real Prometheus scrape.

``constant_labels``, ``labels`` (a header and a callback, each with a value cap),
``group_status_codes``, ``in_progress``, ``excluded_paths`` by route template and by ``re:``
pattern, ``record_unmatched: false`` and ``zero_error_series``. One app has them all, one
Prometheus scrapes it; the in-process tests below pin the bounds and failure handling.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from fluxstack_otel import Monitoring, configure_monitoring
from fluxstack_otel.errors import ConfigError
from servers import PrometheusServer, promtool_check_metrics, requires_prometheus, serve_asgi

RELEASE = threading.Event()


def plan(scope: Any) -> str | None:
    """The ``plan`` label's callback: a query parameter, or None (the label's default)."""
    query = scope.get("query_string", b"").decode()
    return query.removeprefix("plan=") if query.startswith("plan=") else None


OPTIONS: dict[str, Any] = {
    "system_metrics": False,
    "set_global": False,  # the module's app lives beside the other tests' monitorings
    "constant_labels": {"team": "shop"},
    "labels": {
        "tenant": {"header": "x-tenant", "max_values": 2, "default": "none"},
        "plan": {"callback": plan},
    },
    "group_status_codes": True,
    "in_progress": True,
    "excluded_paths": ["/users/{user_id}", "re:^/internal/.*$"],
    "record_unmatched": False,
    "zero_error_series": True,
}


async def ok(request: Request) -> Response:
    return PlainTextResponse("ok")


async def fail(request: Request) -> Response:
    return PlainTextResponse("no", status_code=503)


async def slow(request: Request) -> Response:
    await asyncio.get_running_loop().run_in_executor(None, RELEASE.wait, 30)
    return PlainTextResponse("slow")


def app() -> Starlette:
    return Starlette(
        routes=[
            Route("/items/{item_id}", ok),
            Route("/fail", fail),
            Route("/slow", slow),
            Route("/users/{user_id}", ok),
            Route("/internal/{name}", ok),
        ]
    )


def samples(m: Monitoring, name: str) -> list[tuple[dict[str, str], float]]:
    text = m.render_prometheus().decode()
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Monitoring, str]]:
    m = configure_monitoring(OPTIONS)
    try:
        with serve_asgi(m.instrument(app())) as base:
            yield m, base
    finally:
        RELEASE.set()
        m.shutdown()


@pytest.mark.slow
@requires_prometheus
def test_every_option_reaches_a_real_prometheus(served: tuple[Monitoring, str]) -> None:
    """Prometheus ingests each option's labels and series, and promtool finds nothing to lint."""
    m, base = served
    RELEASE.clear()
    with httpx.Client(base_url=base, timeout=10, trust_env=False) as client:
        for tenant in ("a", "b", "c", "d"):  # the cap of 2 keeps a and b, then <overflow>
            assert client.get("/items/1", headers={"x-tenant": tenant}).status_code == 200
        assert client.get("/items/2?plan=pro").status_code == 200  # no header: "none"
        assert client.get("/fail").status_code == 503
        for path in ("/users/7", "/users/8", "/internal/x", "/nowhere"):
            client.get(path)  # not recorded: a template, a pattern, unmatched
        blocked = threading.Thread(target=client.get, args=("/slow",), daemon=True)
        blocked.start()
        host = base.removeprefix("http://")
        try:
            with PrometheusServer([host], scrape_interval="500ms") as prom:
                prom.wait_for('http_requests_in_progress{route="/slow",team="shop"} == 1')
                RELEASE.set()
                blocked.join(10)
                prom.wait_for('http_requests_in_progress{route="/slow"} == 0')
                got = {
                    (r["metric"]["tenant"], r["metric"].get("plan", "")): float(r["value"][1])
                    for r in prom.query('http_requests_total{route="/items/{item_id}"}')
                }
                assert got == {
                    ("a", ""): 1,
                    ("b", ""): 1,
                    ("<overflow>", ""): 2,
                    ("none", "pro"): 1,
                }
                statuses = {r["metric"]["status_code"] for r in prom.query("http_responses_total")}
                assert statuses == {"2xx", "5xx"}
                routes = {r["metric"]["route"] for r in prom.query("http_requests_total")}
                assert routes == {"/items/{item_id}", "/fail", "/slow"}
                # The error ratio of a route without errors is 0, not "no data".
                ratio = prom.query(
                    'sum by (route) (http_errors_total{route="/items/{item_id}"})'
                    ' / sum by (route) (http_requests_total{route="/items/{item_id}"})'
                )
                assert [float(r["value"][1]) for r in ratio] == [0.0]
                errors = prom.query('http_errors_total{route="/fail"}')
                assert [(r["metric"]["error_type"], r["value"][1]) for r in errors] == [
                    ("5xx", "1")
                ]
        finally:
            RELEASE.set()
    assert promtool_check_metrics(m.render_prometheus()) == []


def test_a_header_label_keeps_at_most_its_cap_of_values() -> None:
    """Beyond ``max_values`` distinct values a label reads ``<overflow>``; known ones stay."""
    m = configure_monitoring(
        {"system_metrics": False, "labels": {"tenant": {"header": "X-Tenant", "max_values": 3}}}
    )
    try:
        wrapped = m.instrument(app())
        with serve_asgi(wrapped) as base, httpx.Client(base_url=base, trust_env=False) as client:
            for i in range(50):
                client.get("/items/1", headers={"x-tenant": f"t{i}"})
            client.get("/items/1", headers={"x-tenant": "t0"})
        got = {s[0]["tenant"]: s[1] for s in samples(m, "http_requests_total")}
    finally:
        m.shutdown()
    assert got == {"t0": 2, "t1": 1, "t2": 1, "<overflow>": 47}


def test_a_failing_label_callback_is_counted_and_the_request_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A callback that raises gives the default value; the failure is logged, not raised."""

    def broken(scope: Any) -> str:
        raise RuntimeError("no plan")

    m = configure_monitoring(
        {"system_metrics": False, "labels": {"plan": {"callback": broken, "default": "?"}}}
    )
    try:
        with (
            caplog.at_level(logging.WARNING, "fluxstack_otel"),
            serve_asgi(m.instrument(app())) as base,
        ):
            assert httpx.get(f"{base}/items/1", trust_env=False).status_code == 200
        got = samples(m, "http_requests_total")
    finally:
        m.shutdown()
    assert [(labels["plan"], value) for labels, value in got] == [("?", 1)]
    assert any("label 'plan'" in r.getMessage() for r in caplog.records)


def test_zero_error_series_stay_within_the_cardinality_cap() -> None:
    """A zero point exists only where a route has no error series, so the cap still holds."""
    cap = 6
    m = configure_monitoring(
        {"system_metrics": False, "zero_error_series": True, "max_series_per_metric": cap}
    )
    try:
        with serve_asgi(m.instrument(app())) as base, httpx.Client(base_url=base) as client:
            for i in range(20):
                client.get(f"/items/{i}")
                client.get("/fail")
        errors = samples(m, "http_errors_total")
        requests = samples(m, "http_requests_total")
    finally:
        m.shutdown()
    assert len(errors) <= cap
    assert len(requests) <= cap
    zero = [labels for labels, value in errors if value == 0]
    assert zero == [{"method": "GET", "route": "/items/{item_id}"}]


def test_in_progress_is_absent_unless_configured() -> None:
    """Without ``in_progress: true`` the exposition has no in-progress family at all."""
    m = configure_monitoring({"system_metrics": False})
    try:
        with serve_asgi(m.instrument(app())) as base:
            httpx.get(f"{base}/items/1", trust_env=False)
        assert "http_requests_in_progress" not in m.render_prometheus().decode()
    finally:
        m.shutdown()


@pytest.mark.parametrize(
    ("config", "key", "words"),
    [
        ({"labels": {"route": {"header": "x-r"}}}, "labels.route", "other than"),
        ({"labels": {"t": {}}}, "labels.t", "exactly one of 'header' and 'callback'"),
        ({"labels": {"t": {"header": "x", "callback": plan}}}, "labels.t", "exactly one"),
        ({"labels": {"t": {"callback": 3}}}, "labels.t.callback", "a function"),
        ({"labels": {"t": {"header": ""}}}, "labels.t.header", "an HTTP header name"),
        (
            {"labels": {"t": {"header": "x", "max_values": 0}}},
            "labels.t.max_values",
            "from 1 to 100000",
        ),
        ({"constant_labels": {"2x": "a"}}, "constant_labels.2x", "Prometheus label name"),
        ({"constant_labels": {"team": 3}}, "constant_labels.team", "a string"),
        ({"excluded_paths": ["re:("]}, "excluded_paths[0]", "regular expression"),
        ({"group_status_codes": "yes"}, "group_status_codes", "true or false"),
    ],
)
def test_bad_option_values_are_config_errors_naming_the_key(
    config: dict[str, Any], key: str, words: str
) -> None:
    """Each bad option value is one ConfigError naming its key path and what is allowed."""
    with pytest.raises(ConfigError) as caught:
        configure_monitoring({"system_metrics": False, **config}).shutdown()
    assert caught.value.path == key
    assert words in str(caught.value)


def test_request_labels_and_in_progress_stay_within_the_cardinality_cap() -> None:
    """With many label values and routes, every HTTP family keeps at most the cap's series."""
    cap = 8
    m = configure_monitoring(
        {
            "system_metrics": False,
            "max_series_per_metric": cap,
            "labels": {"tenant": {"header": "x-tenant", "max_values": 1000}},
            "in_progress": True,
            "constant_labels": {"team": "shop"},
        }
    )
    try:
        with serve_asgi(m.instrument(app())) as base, httpx.Client(base_url=base) as client:
            for i in range(40):
                client.get(f"/items/{i}", headers={"x-tenant": f"t{i}"})
                client.get("/fail", headers={"x-tenant": f"t{i}"})
        text = m.render_prometheus().decode()
    finally:
        m.shutdown()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("http_requests", "http_responses", "http_errors", "http_requests_in_progress"):
        assert 0 < len(families[name].samples) <= cap, name
    for name in ("http_request_duration_seconds", "http_response_size_bytes"):
        assert len({s.labels.get("tenant") for s in families[name].samples}) <= cap, name
    overflow = [s for s in families["http_requests"].samples if s.labels["route"] == "<overflow>"]
    assert overflow
    assert all(s.labels["team"] == "shop" for s in overflow)
    assert sum(s.value for s in families["http_requests"].samples) == 80
