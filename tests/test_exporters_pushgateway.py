"""A prometheus entry with push_url: the exposition PUT to a real Pushgateway, grouped by job and
instance, every interval and at shutdown; failures reported, never raised, secrets masked."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from fluxstack_otel import configure_monitoring
from fluxstack_otel._internal.config.model import (
    MonitoringConfig,
    PrometheusExporterConfig,
    load_config,
)
from fluxstack_otel._internal.runtime.failures import failure_counts
from fluxstack_otel._internal.runtime.scheduler import Tick
from fluxstack_otel._internal.sinks.base import SinkContext
from fluxstack_otel._internal.sinks.prometheus.exposition import DEFAULT_OPTIONS
from fluxstack_otel._internal.sinks.prometheus.push import Pusher, grouping_url
from fluxstack_otel._internal.sinks.prometheus.sink import PrometheusSink
from fluxstack_otel.errors import ConfigError
from servers import PushgatewayServer, free_port, requires_pushgateway, serve_asgi, wait_until
from support.pipeline import Pipeline


def push_sink(pipeline: Pipeline, push_url: str, interval: float) -> PrometheusSink:
    """A Prometheus sink that pushes the pipeline's stream to ``push_url``."""
    entry = PrometheusExporterConfig(push_url=push_url, interval=interval)
    config = MonitoringConfig(exporters=(entry,), system_metrics=False)
    return PrometheusSink(entry, SinkContext(config=config, stream=pipeline.stream))


@pytest.fixture
def pushgateway() -> Iterator[PushgatewayServer]:
    with PushgatewayServer() as server:
        yield server


def requests_total(groups: list[dict[str, Any]], **grouping: str) -> float | None:
    """The sum of ``http_requests_total`` in the group with these labels, or None if absent."""
    for group in groups:
        if all(group["labels"].get(k) == v for k, v in grouping.items()):
            family = group.get("http_requests_total")
            if family is None:
                return None
            return sum(float(m["value"]) for m in family["metrics"])
    return None


def one_tick(seconds: float = 5.0) -> Tick:
    return Tick(time.monotonic() + seconds)


# --- configuration -------------------------------------------------------------------------


def test_push_url_is_read_in_both_key_styles() -> None:
    """``push_url`` and the FluxStack-style ``pushUrl`` set the same field of the entry."""
    snake = load_config(
        {"exporters": [{"type": "prometheus", "push_url": "http://127.0.0.1:9091"}]}
    )
    camel = load_config({"exporters": [{"type": "prometheus", "pushUrl": "http://127.0.0.1:9091"}]})
    assert snake.exporters[0].push_url == camel.exporters[0].push_url == "http://127.0.0.1:9091"  # type: ignore[union-attr]


def test_a_push_url_that_is_not_http_is_a_config_error_naming_the_key() -> None:
    """A non-http(s) push URL is one ConfigError naming the key, the value and what is allowed."""
    with pytest.raises(ConfigError) as caught:
        load_config({"exporters": [{"type": "prometheus", "push_url": "ftp://gateway:9091"}]})
    message = str(caught.value)
    assert "exporters[0].push_url" in message
    assert "'ftp://gateway:9091'" in message
    assert "http:// or https:// URL" in message


def test_the_repr_and_the_error_mask_the_push_urls_password() -> None:
    """The password in a push URL's userinfo appears neither in the repr nor in an error."""
    entry = PrometheusExporterConfig(push_url="http://user:s3cretpw@127.0.0.1:9091")
    assert "s3cretpw" not in repr(entry)
    assert "127.0.0.1:9091" in repr(entry)
    with pytest.raises(ConfigError) as caught:
        PrometheusExporterConfig(push_url="ftp://user:s3cretpw@gateway")
    assert "s3cretpw" not in str(caught.value)


# --- the group's URL -----------------------------------------------------------------------


def test_grouping_url_is_job_then_instance_as_push_to_gateway_builds_it(
    pipeline: Pipeline,
) -> None:
    """The URL is ``<push_url>/metrics/job/<service>/instance/<instance id>``, slash-safe."""
    data = pipeline.stream.collect()
    assert grouping_url("http://gw:9091/", data) == "http://gw:9091/metrics/job/svc/instance/i-1"
    odd = Pipeline(instance_id="pod/7", service="shop api")
    try:
        url = grouping_url("http://gw:9091", odd.stream.collect())
    finally:
        odd.provider.shutdown()
    assert url == "http://gw:9091/metrics/job/shop%20api/instance@base64/cG9kLzc="


# --- a real Pushgateway --------------------------------------------------------------------


@requires_pushgateway
def test_every_interval_pushes_the_current_totals(
    pipeline: Pipeline, pushgateway: PushgatewayServer
) -> None:
    """Each interval PUTs the exposition: the Pushgateway's group follows the app's totals."""
    sink = push_sink(pipeline, pushgateway.url, interval=0.1)
    pipeline.request()
    sink.start()
    try:
        wait_until(
            lambda: requests_total(pushgateway.groups(), job="svc", instance="i-1") == 1.0,
            timeout=10.0,
            message="the first push",
        )
        pipeline.request()
        pipeline.request()
        wait_until(
            lambda: requests_total(pushgateway.groups(), job="svc", instance="i-1") == 3.0,
            timeout=10.0,
            message="a later push with the new requests",
        )
    finally:
        sink.shutdown(5.0)


@requires_pushgateway
def test_shutdown_pushes_once_more_with_the_last_counts(
    pipeline: Pipeline, pushgateway: PushgatewayServer
) -> None:
    """With an interval longer than the test, the one push is the shutdown's, with every request."""
    sink = push_sink(pipeline, pushgateway.url, interval=3600.0)
    sink.start()
    for _ in range(4):
        pipeline.request()
    assert requests_total(pushgateway.groups(), job="svc", instance="i-1") is None
    sink.shutdown(5.0)
    assert requests_total(pushgateway.groups(), job="svc", instance="i-1") == 4.0


@requires_pushgateway
def test_a_slash_in_the_instance_id_reaches_the_pushgateway_intact(
    pushgateway: PushgatewayServer,
) -> None:
    """An instance id with '/' is base64-encoded in the URL and decoded by the Pushgateway."""
    odd = Pipeline(instance_id="pod/7", service="shop")
    try:
        odd.request()
        pusher = Pusher(pushgateway.url, odd.stream, DEFAULT_OPTIONS, 3600.0)
        assert pusher.push(one_tick()) is True
    finally:
        odd.provider.shutdown()
    assert requests_total(pushgateway.groups(), job="shop", instance="pod/7") == 1.0


@requires_pushgateway
def test_configure_monitoring_pushes_requests_served_by_uvicorn(
    pushgateway: PushgatewayServer,
) -> None:
    """A FluxStack-style entry with pushUrl pushes the requests a real uvicorn served."""

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi")

    monitoring = configure_monitoring(
        {
            "serviceName": "shop",
            "systemMetrics": False,
            "exporters": [{"type": "prometheus", "pushUrl": pushgateway.url, "interval": 100}],
        }
    )
    try:
        with serve_asgi(monitoring.instrument(Starlette(routes=[Route("/hello", hello)]))) as base:
            for _ in range(3):
                assert httpx.get(f"{base}/hello").status_code == 200
            wait_until(
                lambda: requests_total(pushgateway.groups(), job="shop") == 3.0,
                timeout=10.0,
                message="the three requests at the Pushgateway",
            )
            scraped = httpx.get(f"{base}/metrics")  # the entry still serves its endpoint
            assert scraped.status_code == 200
            assert "http_requests_total" in scraped.text
    finally:
        monitoring.shutdown()


# --- failures ------------------------------------------------------------------------------


def test_an_unreachable_pushgateway_is_reported_not_raised_and_masked(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused PUT returns False, counts a failure, and no log line shows the password."""
    url = f"http://pushuser:s3cretpw@127.0.0.1:{free_port()}"  # nothing listens there
    pusher = Pusher(url, pipeline.stream, DEFAULT_OPTIONS, 3600.0)
    before = sum(failure_counts().values())
    with caplog.at_level(logging.DEBUG, logger="fluxstack_otel"):
        assert pusher.push(one_tick(0.2)) is False
    assert sum(failure_counts().values()) > before
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Pushgateway" in text
    assert "s3cretpw" not in text
    assert "pushuser" not in text


def test_a_pushgateway_refusing_the_body_is_reported_with_its_status(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    """A 400 answer is final: reported once with the method and status, never raised."""
    calls: list[str] = []

    def refuse(url: str, body: bytes, headers: object, timeout: float) -> int:
        from fluxstack_otel._internal.transport.post import PostError

        calls.append(url)
        raise PostError("PUT http://gw:9091 answered 400", retryable=False)

    pusher = Pusher("http://gw:9091", pipeline.stream, DEFAULT_OPTIONS, 3600.0, send=refuse)
    with caplog.at_level(logging.DEBUG, logger="fluxstack_otel"):
        assert pusher.push(one_tick()) is False
    assert calls == ["http://gw:9091/metrics/job/svc/instance/i-1"]
    assert "answered 400" in "\n".join(r.getMessage() for r in caplog.records)
