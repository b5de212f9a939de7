"""Traces under ``opentelemetry-instrument``, set up from the standard variables like a distro.

Real subprocesses (``opentelemetry-instrument uvicorn``) and a loopback OTLP/HTTP receiver that
decodes spans with opentelemetry-proto. ``FLUXSTACK_MONITORING_TRACING=true`` gives the server
spans (OpenTelemetry's ASGI middleware) and the duration exemplars; ``OTEL_TRACES_*`` and
``OTEL_EXPORTER_OTLP_*`` say where spans go and which are kept, as with opentelemetry-distro.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

from autoinst import (
    AUTO_MARKS,
    Server,
    auto_env,
    gunicorn_argv,
    server,
    uvicorn_argv,
)
from receivers import TraceHttpReceiver

pytestmark = AUTO_MARKS
OM = {"accept": "application/openmetrics-text", "connection": "close"}


def argv() -> list[str]:
    return uvicorn_argv("auto_starlette:app", "--log-level", "warning")


def instrumented(
    entry_dir: Path | None, tmp_path: Path, env: Mapping[str, str]
) -> AbstractContextManager[Server]:
    return server(argv(), auto_env(entry_dir, env), tmp_path / "server.log", cwd=tmp_path)


def otlp_to(receiver: TraceHttpReceiver, **more: str) -> dict[str, str]:
    return {
        "FLUXSTACK_MONITORING_TRACING": "true",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{receiver.base_url}/v1/traces",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        **more,
    }


def exemplar_traces(text: str) -> set[str]:
    return {
        s.exemplar.labels["trace_id"]
        for f in parse_om(text)
        for s in f.samples
        if s.name == "http_request_duration_seconds_bucket" and s.exemplar is not None
    }


def test_server_spans_reach_the_otlp_receiver_and_exemplars_name_them(
    entry_dir: Path | None, tmp_path: Path
) -> None:
    """OTEL_TRACES_EXPORTER=otlp: the server spans arrive and the exemplars carry their ids."""
    with TraceHttpReceiver() as receiver:
        env = otlp_to(receiver, OTEL_SERVICE_NAME="orders")
        with (
            instrumented(entry_dir, tmp_path, env) as srv,
            srv.client() as client,
        ):
            for item in range(3):
                assert client.get(f"/items/{item}").status_code == 200
            receiver.wait_for(
                lambda spans: sum(s.name.startswith("GET /items/") for s in spans) >= 3
            )
            traces = exemplar_traces(client.get("/metrics", headers=OM).text)
        received = {span.trace_id.hex() for span in receiver.spans}
    assert traces
    assert traces <= received


def test_the_sampler_variable_is_honoured(entry_dir: Path | None, tmp_path: Path) -> None:
    """OTEL_TRACES_SAMPLER=always_off: no span is exported and no exemplar is kept."""
    with TraceHttpReceiver() as receiver:
        env = otlp_to(receiver, OTEL_TRACES_SAMPLER="always_off")
        with (
            instrumented(entry_dir, tmp_path, env) as srv,
            srv.client() as client,
        ):
            assert client.get("/items/1").status_code == 200
            assert exemplar_traces(client.get("/metrics", headers=OM).text) == set()
            srv.stop()  # the exit flushes the span processor: anything sampled has arrived
        assert receiver.spans == []


def test_console_traces_print_spans_to_stdout(entry_dir: Path | None, tmp_path: Path) -> None:
    """OTEL_TRACES_EXPORTER=console prints each server span, as the SDK's console exporter does."""
    env = {"FLUXSTACK_MONITORING_TRACING": "true", "OTEL_TRACES_EXPORTER": "console",
           "OTEL_BSP_SCHEDULE_DELAY": "100"}  # fmt: skip
    with (
        instrumented(entry_dir, tmp_path, env) as srv,
        srv.client() as client,
    ):
        assert client.get("/items/9").status_code == 200
        srv.stop()
        output = srv.output()
    assert '"name": "GET /items/9"' in output
    assert '"trace_id": "0x' in output


def test_a_traces_exporter_that_is_not_installed_stops_the_process(
    entry_dir: Path | None, tmp_path: Path
) -> None:
    """OTEL_TRACES_EXPORTER=zipkin, not installed: exit 1 naming it and the installed exporters."""
    done = subprocess.run(
        [part.replace("{port}", "1") for part in argv()],
        env=auto_env(entry_dir, {"OTEL_TRACES_EXPORTER": "zipkin"}),
        capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    assert "OTEL_TRACES_EXPORTER: exporter 'zipkin' is not installed" in done.stderr
    assert "installed: console, otlp_proto_grpc, otlp_proto_http" in done.stderr


LOGS_CHILD = """
import logging
from fluxstack_otel._internal.integration.distro import auto_configure
monitoring = auto_configure()
logging.getLogger("shop").warning("order %s refused", 42)
monitoring.shutdown()
"""


def test_console_logs_print_the_app_records(tmp_path: Path) -> None:
    """OTEL_LOGS_EXPORTER=console with the logging handler on: the app's records reach stdout."""
    env = auto_env(None, {"OTEL_LOGS_EXPORTER": "console",
                          "OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true"})  # fmt: skip
    done = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", LOGS_CHILD],
                          env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"body": "order 42 refused"' in done.stdout
    assert '"service.name": "fluxstack-app"' in done.stdout  # the monitoring's resource


@pytest.mark.parametrize("tracing", ["false", "true"])
def test_gunicorn_workers_boot_with_traces_set_up_in_the_master(
    entry_dir: Path | None, tmp_path: Path, tracing: str
) -> None:
    """Pre-fork workers boot when the master set traces up (a fork-handler order once hung them)."""
    argv = gunicorn_argv("auto_starlette:app", 1)
    with TraceHttpReceiver() as receiver:
        env = auto_env(entry_dir, otlp_to(receiver, FLUXSTACK_MONITORING_TRACING=tracing))
        with (
            server(argv, env, tmp_path / "gunicorn.log", cwd=tmp_path) as srv,
            srv.client() as client,
        ):
            assert client.get("/items/5").status_code == 200
            if tracing == "true":  # the worker's server spans reach the receiver
                receiver.wait_for(lambda spans: any(s.name == "GET /items/5" for s in spans))
