"""FastAPI's own OpenTelemetry HTTP telemetry beside this package's: each request counted once.

FastAPI 0.16x records ``http.server.request.duration`` for every app in the process once the
global MeterProvider is set; with ``set_global`` (the default) that provider is this package's,
which keeps FastAPI's metrics off (``metrics/global_provider.py``). Real FastAPI under uvicorn.
"""

from __future__ import annotations

import re

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from fluxstack_otel import configure_monitoring
from servers import serve_asgi

fastapi = pytest.importorskip("fastapi")

_TYPE = re.compile(r"^# TYPE (\S+) ", re.M)
REQUESTS = 5


def make_app() -> fastapi.FastAPI:
    app = fastapi.FastAPI()

    @app.get("/items/{item}")
    def item(item: int) -> dict[str, int]:
        return {"item": item}

    return app


def request_count(text: str, family: str) -> float:
    """The total ``_count`` of one histogram family over its series."""
    return sum(
        s.value for f in parse_text(text) if f.name == family for s in f.samples
        if s.name == family + "_count"
    )  # fmt: skip


@pytest.mark.parametrize("naming", ["fluxstack", "semconv"])
def test_a_monitored_fastapi_app_counts_each_request_once(naming: str) -> None:
    """Under every naming profile /metrics has one family per name and the true request count."""
    m = configure_monitoring({"system_metrics": False, "naming": naming})
    try:
        with serve_asgi(m.instrument(make_app())) as base, httpx.Client(trust_env=False) as c:
            for i in range(REQUESTS):
                assert c.get(f"{base}/items/{i}").status_code == 200
        text = m.render_prometheus().decode()
        names = _TYPE.findall(text)
        assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
        assert not [n for n in names if n.startswith("http_server_active")]
        duration = next(
            name for name in set(names) if "duration" in name and name.startswith("http_")
        )
        assert request_count(text, duration) == REQUESTS
        list(parse_om(m.render_prometheus(openmetrics=True).decode()))  # parses: no duplicate
    finally:
        m.shutdown()


def test_fastapi_records_nothing_of_its_own_into_the_monitoring() -> None:
    """No ``fastapi`` instrumentation scope reaches the stream, for monitored or bare apps."""
    m = configure_monitoring({"system_metrics": False})
    try:
        bare = make_app()
        with (
            serve_asgi(m.instrument(make_app())) as monitored,
            serve_asgi(bare) as unmonitored,
            httpx.Client(trust_env=False) as c,
        ):
            for base in (monitored, unmonitored):
                assert c.get(f"{base}/items/1").status_code == 200
        scopes = {
            scope.scope.name
            for resource in m.collect().resource_metrics
            for scope in resource.scope_metrics
        }
        assert "fastapi" not in scopes
    finally:
        m.shutdown()
