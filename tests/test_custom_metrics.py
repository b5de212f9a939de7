"""Custom metrics: the typed helpers, their name checks, every exporter, and ``set_global``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry import metrics
from opentelemetry.metrics import (
    CallbackOptions,
    Counter,
    Histogram,
    Meter,
    Observation,
    UpDownCounter,
)

from fluxstack_otel import ConfigError, Monitoring, configure_monitoring
from fluxstack_otel._internal.runtime.failures import failure_counts
from receivers import HttpReceiver
from servers import promtool_check_metrics, requires_promtool, serve_asgi
from support.exposition import Samples, samples


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hi"})


@pytest.fixture
def monitoring() -> Iterator[Monitoring]:
    m = configure_monitoring({"system_metrics": False, "set_global": False})
    yield m
    m.shutdown()


def queue_depth(options: CallbackOptions) -> Iterable[Observation]:
    return [Observation(7, {"queue": "mail"})]


def record_everything(m: Monitoring) -> None:
    m.counter("shop.orders", unit="{order}", description="Orders placed.").add(3, {"region": "eu"})
    m.up_down_counter("shop.carts.open", description="Open carts.").add(-2)
    m.gauge("shop.temperature", unit="Cel", description="Oven temperature.").set(180)
    latency = m.histogram(
        "shop.checkout.duration", unit="s", description="Checkout time.", buckets=[0.1, 0.5, 2]
    )
    latency.record(0.3)
    latency.record(1.0)
    m.observable_gauge("shop.queue.depth", [queue_depth], description="Queued jobs.")
    m.observable_counter(
        "shop.jobs.done",
        [lambda o: [Observation(11)]],
        description="Jobs done.",
    )
    m.observable_up_down_counter(
        "shop.workers.busy", [lambda o: [Observation(2)]], description="Busy workers."
    )


EXPECTED_PROMETHEUS: Samples = {
    ("shop_orders_total", frozenset({("region", "eu")})): 3,
    ("shop_carts_open", frozenset()): -2,
    ("shop_temperature_celsius", frozenset()): 180,
    ("shop_checkout_duration_seconds_bucket", frozenset({("le", "0.1")})): 0,
    ("shop_checkout_duration_seconds_bucket", frozenset({("le", "0.5")})): 1,
    ("shop_checkout_duration_seconds_bucket", frozenset({("le", "2.0")})): 2,
    ("shop_checkout_duration_seconds_bucket", frozenset({("le", "+Inf")})): 2,
    ("shop_checkout_duration_seconds_count", frozenset()): 2,
    ("shop_queue_depth", frozenset({("queue", "mail")})): 7,
    ("shop_jobs_done_total", frozenset()): 11,
    ("shop_workers_busy", frozenset()): 2,
}
OTEL_NAMES = {
    "shop.orders",
    "shop.carts.open",
    "shop.temperature",
    "shop.checkout.duration",
    "shop.queue.depth",
    "shop.jobs.done",
    "shop.workers.busy",
}


@pytest.mark.slow
@requires_promtool
def test_custom_metrics_reach_prometheus_json_and_otlp() -> None:
    """Every helper's instrument shows in /metrics (both formats), the JSON document and OTLP."""
    with HttpReceiver() as receiver:
        m = configure_monitoring(
            {
                "system_metrics": False,
                "set_global": False,
                "exporters": [
                    {"type": "prometheus"},
                    {"type": "json", "endpoint": "/metrics.json"},
                    {
                        "type": "otlp",
                        "endpoint": f"{receiver.base_url}/v1/metrics",
                        "interval": 3600,
                    },
                ],
            }
        )
        try:
            record_everything(m)
            with (
                serve_asgi(m.instrument(hello)) as base,
                httpx.Client(base_url=base, timeout=10, trust_env=False) as client,
            ):
                assert client.get("/").status_code == 200
                text = client.get("/metrics").text
                om = client.get("/metrics", headers={"accept": "application/openmetrics-text"}).text
                document = client.get("/metrics.json").json()
        finally:
            m.shutdown()  # the OTLP exporter's final export
    got = samples(text)
    for key, value in EXPECTED_PROMETHEUS.items():
        assert got[key] == value, key
    assert "# TYPE shop_orders_total counter" in text
    assert "# HELP shop_orders_total Orders placed." in text
    assert ("shop_orders_total", frozenset({("region", "eu")})) in samples(om, openmetrics=True)
    assert promtool_check_metrics(text) == []
    by_name = {entry["name"]: entry for entry in document["metrics"]}
    assert set(by_name) >= OTEL_NAMES
    assert by_name["shop.orders"]["series"] == [{"labels": {"region": "eu"}, "value": 3}]
    assert by_name["shop.checkout.duration"]["type"] == "histogram"
    exported = {
        m.name
        for r in receiver.requests
        for rm in r.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert exported >= OTEL_NAMES


def test_helpers_return_standard_instruments_on_a_standard_meter(monitoring: Monitoring) -> None:
    """The meter is an OpenTelemetry Meter and the helpers return API instrument types."""
    assert isinstance(monitoring.meter, Meter)
    assert isinstance(monitoring.counter("a.count"), Counter)
    assert isinstance(monitoring.up_down_counter("a.level"), UpDownCounter)
    assert isinstance(monitoring.histogram("a.size", unit="By"), Histogram)
    raw = monitoring.meter.create_counter("raw.made")
    raw.add(5)
    assert samples(monitoring.render_prometheus().decode())[("raw_made_total", frozenset())] == 5


def test_asking_twice_for_one_instrument_is_fine(monitoring: Monitoring) -> None:
    """The same name, kind and unit again adds to the same series."""
    monitoring.counter("jobs.run", description="Jobs.").add(1)
    monitoring.counter("jobs.run", description="Jobs.").add(2)
    assert samples(monitoring.render_prometheus().decode())[("jobs_run_total", frozenset())] == 3


BAD_NAMES: list[tuple[str, str, dict[str, Any], str]] = [
    ("counter", "1orders", {}, "not a valid OpenTelemetry instrument name"),
    ("counter", "orders placed", {}, "not a valid OpenTelemetry instrument name"),
    ("counter", "o" * 256, {}, "not a valid OpenTelemetry instrument name"),
    ("counter", "", {}, "not a valid OpenTelemetry instrument name"),
    ("counter", "http.requests", {}, "collides with the built-in metric 'http_requests_total'"),
    ("counter", "HTTP_Requests_Total", {}, "has the name of a built-in metric"),
    (
        "histogram",
        "http.request.duration",
        {"unit": "s"},
        "collides with the built-in metric 'http_request_duration_seconds'",
    ),
    ("gauge", "http_request_duration_seconds_count", {}, "collides with the built-in"),
    ("gauge", "process.memory.usage", {"unit": "By"}, "has the name of a built-in metric"),
    (
        "counter",
        "process.cpu.time",
        {"unit": "s"},
        "has the name of a built-in metric",
    ),
    ("gauge", "http.server.request", {"unit": "{request}"}, ""),  # free: no clash
    ("up_down_counter", "connections.total", {}, "reserved for counters"),
    ("counter", "orders", {"unit": "é"}, "at most 63 ASCII characters"),
    ("histogram", "latency", {"buckets": [1, 1]}, "strictly increasing"),
    ("histogram", "latency", {"buckets": [0.1, float("nan")]}, "strictly increasing"),
    ("histogram", "latency", {"buckets": "1,2"}, "is not a sequence"),
]


@pytest.mark.parametrize(("helper", "name", "options", "message"), BAD_NAMES)
def test_names_that_collide_or_cannot_be_exposed_are_config_errors(
    monitoring: Monitoring, helper: str, name: str, options: dict[str, Any], message: str
) -> None:
    """Bad names and buckets raise ConfigError at creation, quoting the name and the reason."""
    create = getattr(monitoring, helper)
    if not message:
        create(name, **options)
        return
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as error:
        create(name, **options)
    if name:
        assert repr(name)[:40] in str(error.value) or "custom" in str(error.value)


def test_names_must_stay_apart_from_each_other(monitoring: Monitoring) -> None:
    """A second name with the first's Prometheus name, or one name with two kinds, is refused."""
    monitoring.counter("orders.placed")
    with pytest.raises(ConfigError, match=r"custom metric 'orders\.placed' already uses"):
        monitoring.counter("orders_placed")
    with pytest.raises(ConfigError, match="already created as a counter"):
        monitoring.histogram("orders.placed")
    with pytest.raises(ConfigError, match="already created as a counter with unit ''"):
        monitoring.counter("orders.placed", unit="{order}")


def test_custom_metrics_off_gives_no_op_instruments_that_still_check_names() -> None:
    """With custom_metrics false the helpers work, record nothing, and still refuse bad names."""
    m = configure_monitoring({"system_metrics": False, "custom_metrics": False})
    try:
        m.counter("quiet.count").add(1)
        m.histogram("quiet.latency", buckets=[1.0]).record(3)
        m.observable_gauge("quiet.level", [queue_depth])
        with pytest.raises(ConfigError):
            m.counter("http.requests")
        names = {
            metric.name
            for rm in m.collect().resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
        }
    finally:
        m.shutdown()
    assert not {n for n in names if n.startswith("quiet")}


def test_a_failing_callback_is_reported_and_the_others_still_observed(
    monitoring: Monitoring,
) -> None:
    """A callback that raises costs only its own point; the failure is counted."""

    def broken(options: CallbackOptions) -> Iterable[Observation]:
        raise RuntimeError("sensor unplugged")

    monitoring.observable_gauge("sensor.broken", [broken])
    monitoring.observable_gauge("sensor.fine", [lambda o: [Observation(1)]])
    before = failure_counts().get("the callback of the custom metric 'sensor.broken'", 0)
    got = samples(monitoring.render_prometheus().decode())
    assert got[("sensor_fine", frozenset())] == 1
    assert not [k for k in got if k[0] == "sensor_broken"]
    after = failure_counts()["the callback of the custom metric 'sensor.broken'"]
    assert after == before + 1


def test_callbacks_must_be_functions(monitoring: Monitoring) -> None:
    """A callbacks argument that is not a list of functions is refused, and the name stays free."""
    with pytest.raises(ConfigError, match="is not callable"):
        monitoring.observable_gauge("level", [42])  # type: ignore[list-item]
    monitoring.observable_gauge("level", [queue_depth])


# --- set_global ---------------------------------------------------------------------------------


def global_total(m: Monitoring, name: str) -> float | None:
    return samples(m.render_prometheus().decode()).get((name, frozenset()))


def test_the_global_provider_reports_third_party_metrics_to_the_live_monitoring() -> None:
    """What an instrumentation records through the global OpenTelemetry API reaches /metrics."""
    m = configure_monitoring({"system_metrics": False})
    try:
        calls = metrics.get_meter_provider().get_meter("some.library").create_counter("lib.calls")
        calls.add(4)
        assert global_total(m, "lib_calls_total") == 4
        assert metrics.get_meter("other.library").create_histogram("lib.wait", unit="s")
    finally:
        m.shutdown()


def test_a_second_live_monitoring_takes_the_global_and_gives_it_back_at_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The newest live owner gets global recordings; its shutdown() hands them back, logged."""
    first = configure_monitoring({"system_metrics": False, "service_name": "first"})
    calls = metrics.get_meter("imported.once").create_counter("lib.stacked")
    try:
        calls.add(1)
        second = configure_monitoring({"system_metrics": False, "service_name": "second"})
        try:
            assert "'second' enabled> now provides" in caplog.text
            assert "'first' enabled> keeps its own" in caplog.text
            calls.add(10)
            assert global_total(second, "lib_stacked_total") == 10
            assert global_total(first, "lib_stacked_total") == 1
            first.meter.create_counter("own.calls").add(3)  # its own pipeline goes on
            assert global_total(first, "own_calls_total") == 3
        finally:
            second.shutdown()
        calls.add(100)
        assert global_total(first, "lib_stacked_total") == 101
    finally:
        first.shutdown()


def test_after_shutdown_the_next_monitoring_takes_over_with_the_same_instruments() -> None:
    """Instruments made once (at import) follow the global from one Monitoring to the next."""
    first = configure_monitoring({"system_metrics": False})
    calls = metrics.get_meter("imported.once").create_counter("lib.handoffs")
    try:
        calls.add(1)
        assert global_total(first, "lib_handoffs_total") == 1
    finally:
        first.shutdown()
    calls.add(100)  # nobody owns the global now: dropped, and no error
    second = configure_monitoring({"system_metrics": False})
    try:
        calls.add(2)
        assert global_total(second, "lib_handoffs_total") == 2
    finally:
        second.shutdown()


GLOBAL_CHILD = textwrap.dedent(
    """
    import gc, json, sys
    from opentelemetry import metrics
    from fluxstack_otel import ConfigError, configure_monitoring

    quiet = {"system_metrics": False, "alerts": [], "thresholds": {"error_rate": None,
             "response_time": None, "memory_usage": None, "cpu_usage": None}}
    if sys.argv[1] == "foreign":
        from opentelemetry.sdk.metrics import MeterProvider
        metrics.set_meter_provider(MeterProvider())
        try:
            configure_monitoring(quiet)
        except ConfigError as exc:
            print(json.dumps({"error": str(exc)}))
        m = configure_monitoring({**quiet, "set_global": False})
        m.shutdown()
    else:
        forgotten = configure_monitoring(quiet)  # never shut down
        del forgotten
        gc.collect()
        m = configure_monitoring(quiet)
        metrics.get_meter("x").create_counter("after.gc").add(1)
        print(json.dumps({"text": m.render_prometheus().decode()}))
        m.shutdown()
    """
)


def run_child(mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", GLOBAL_CHILD, mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.slow
def test_a_global_provider_set_by_other_code_is_a_config_error() -> None:
    """When the app already set its own global MeterProvider, set_global explains the conflict."""
    error = run_child("foreign")["error"]
    assert error.startswith("set_global: the process-wide OpenTelemetry MeterProvider was already")
    assert "opentelemetry.sdk.metrics" in error


@pytest.mark.slow
def test_a_monitoring_dropped_without_shutdown_frees_the_global() -> None:
    """An owner that was garbage-collected no longer blocks the next configure_monitoring."""
    assert "after_gc_total 1" in run_child("gc")["text"]
