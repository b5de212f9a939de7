"""``opentelemetry-instrument uvicorn app:app`` on apps that import nothing from this package.

Real subprocesses: opentelemetry-instrument finds the distro and configurator entry points,
the configurator builds the pipeline from the environment, and the hooks wrap the app.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from autoinst import (
    APPS,
    AUTO_MARKS,
    INSTRUMENT,
    UVICORN,
    Server,
    auto_env,
    declared_entry_points,
    server,
    target_info,
    uvicorn_argv,
)
from fluxstack_otel._internal.integration.distro import FluxstackConfigurator, FluxstackDistro
from fluxstack_otel._internal.integration.instrumentor import FluxstackInstrumentor
from fluxstack_otel._internal.metrics.catalog import BUILTIN_METRICS
from servers import wait_until
from support.exposition import series

pytestmark = AUTO_MARKS

_TYPE_LINE = re.compile(r"^# TYPE (\S+) ", re.M)


def instrumented(
    app: str,
    entry_dir: Path | None,
    tmp_path: Path,
    env: Mapping[str, str] | None = None,
    *,
    prefix: Sequence[str] = (str(INSTRUMENT),),
    ready_path: str = "/",
) -> AbstractContextManager[Server]:
    """``opentelemetry-instrument uvicorn APP`` (or another ``prefix``) on a free port."""
    argv = uvicorn_argv(app, "--log-level", "warning", prefix=prefix)
    return server(
        argv, auto_env(entry_dir, env or {}), tmp_path / "server.log", cwd=tmp_path,
        ready_path=ready_path,
    )  # fmt: skip


def labels(**pairs: str) -> frozenset[tuple[str, str]]:
    return frozenset(pairs.items())


def get(client: httpx.Client, path: str) -> httpx.Response:
    return client.get(path, headers={"Connection": "close"})


def one_request(
    app: str, path: str, entry_dir: Path | None, tmp_path: Path
) -> tuple[httpx.Response, str]:
    """``GET path`` of ``app`` under opentelemetry-instrument, and the /metrics text after it."""
    with instrumented(app, entry_dir, tmp_path) as srv, srv.client() as client:
        response = get(client, path)
        return response, get(client, "/metrics").text


def finished(
    argv: list[str], env: Mapping[str, str], cwd: Path, *, timeout: float
) -> subprocess.CompletedProcess[str]:
    """``argv`` run to its end in ``cwd``, its output captured as text, whatever its status."""
    return subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_entry_points_are_declared_and_loadable() -> None:
    """pyproject.toml declares the distro, configurator and instrumentor; each is what it claims."""
    declared = declared_entry_points()
    assert declared["opentelemetry_distro"] == {
        "fluxstack_otel": "fluxstack_otel._internal.integration.distro:FluxstackDistro"
    }
    assert declared["opentelemetry_configurator"] == {
        "fluxstack_otel": "fluxstack_otel._internal.integration.distro:FluxstackConfigurator"
    }
    assert declared["opentelemetry_instrumentor"] == {
        "fluxstack_otel": "fluxstack_otel._internal.integration.instrumentor:FluxstackInstrumentor"
    }
    assert isinstance(FluxstackInstrumentor(), BaseInstrumentor)
    assert isinstance(FluxstackDistro(), BaseDistro)
    assert callable(FluxstackConfigurator().configure)


def test_an_unmodified_starlette_app_is_monitored_with_the_defaults(
    entry_dir: Path | None, tmp_path: Path
) -> None:
    """No configuration: the twelve metrics at /metrics on the app, route templates, mounts once."""
    with (
        instrumented("auto_starlette:app", entry_dir, tmp_path) as srv,
        srv.client() as client,
    ):
        assert get(client, "/items/42").json() == {"id": "42"}
        assert client.post("/upload", content=b"x" * 300).text == "300"
        assert get(client, "/boom").status_code == 500
        assert get(client, "/sub/things/7").json() == {"thing": "7"}

        def missing() -> list[str]:
            declared = set(_TYPE_LINE.findall(get(client, "/metrics").text))
            return [m.name for m in BUILTIN_METRICS if m.name not in declared]

        # The event-loop lag appears with the probe's first sample, 50 ms after startup.
        wait_until(lambda: not missing(), timeout=5, message=lambda: f"all twelve: {missing()}")
        text = get(client, "/metrics").text
    requests = series(text, "http_requests_total")
    # The warm-up GET / of the harness is counted too; the mount is counted once, by template.
    assert requests[labels(method="GET", route="/items/{item_id}")] == 1
    assert requests[labels(method="POST", route="/upload")] == 1
    assert requests[labels(method="GET", route="/sub/things/{thing_id}")] == 1
    errors = series(text, "http_errors_total")
    assert errors == {
        labels(method="GET", route="/boom", status_code="500", error_type="RuntimeError"): 1.0
    }
    sizes = series(text, "http_request_size_bytes_sum")
    assert sizes[labels(method="POST", route="/upload")] == 300


def test_an_unmodified_fastapi_app_is_monitored(entry_dir: Path | None, tmp_path: Path) -> None:
    """FastAPI (a Starlette subclass) under opentelemetry-instrument: router templates recorded."""
    response, text = one_request("auto_fastapi:app", "/api/users/5", entry_dir, tmp_path)
    assert response.json() == {"user_id": 5}
    requests = series(text, "http_requests_total")
    assert requests[labels(method="GET", route="/api/users/{user_id}")] == 1


def test_a_bare_asgi_app_under_uvicorn_is_monitored(entry_dir: Path | None, tmp_path: Path) -> None:
    """No framework: the uvicorn hook wraps what uvicorn loads; the route is the fixed fallback."""
    response, text = one_request("auto_asgi:app", "/anything/1", entry_dir, tmp_path)
    assert response.text == "bare"
    assert sum(series(text, "http_requests_total").values()) == 2  # the warm-up and /anything/1


def test_environment_configures_the_auto_instrumented_app(
    entry_dir: Path | None, tmp_path: Path
) -> None:
    """OTEL_SERVICE_NAME, METRICS_INTERVAL and FLUXSTACK_MONITORING_* reach the pipeline."""
    env = {
        "OTEL_SERVICE_NAME": "orders",
        "FLUXSTACK_MONITORING_EXPORTERS": json.dumps(
            [
                {"type": "prometheus", "endpoint": "/internal/metrics", "target_info": True},
                {"type": "console", "stream": "stdout", "format": "json"},
            ]
        ),
        "METRICS_INTERVAL": "200",  # ms: the console exporter prints every 0.2 s
        "FLUXSTACK_MONITORING_EXCLUDED_PATHS": "/health*",
    }
    with (
        instrumented("auto_starlette:app", entry_dir, tmp_path, env) as srv,
        srv.client() as client,
    ):
        get(client, "/health/live")
        assert get(client, "/metrics").status_code == 404  # moved to /internal/metrics
        text = get(client, "/internal/metrics").text
        labels = target_info(text)
        assert labels["service_name"] == "orders"
        routes = {dict(key)["route"] for key in series(text, "http_requests_total")}
        assert not any(route.startswith("/health") for route in routes)

        def printed() -> list[dict[str, object]]:
            lines = [line for line in srv.output().splitlines() if line.startswith("{")]
            return [json.loads(line) for line in lines]

        wait_until(lambda: len(printed()) >= 2, timeout=10, message="two console documents")
    assert printed()[0]["resource"]["instance_id"] == labels["service_instance_id"]  # type: ignore[index]


def test_a_bad_configuration_stops_the_process_with_a_clear_message(
    entry_dir: Path | None, tmp_path: Path
) -> None:
    """A set-up error is loud: the message on stderr, exit status 1, the app never serves."""
    env = auto_env(entry_dir, {"METRICS_INTERVAL": "soon"})
    argv = [
        str(INSTRUMENT),
        str(UVICORN),
        "auto_starlette:app",
        "--app-dir",
        str(APPS),
        "--port",
        "1",
    ]
    done = finished(argv, env, tmp_path, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "fluxstack-otel: configuration error: METRICS_INTERVAL: expected a finite number of"
        " milliseconds > 0 or a duration such as '30s' or '500ms', got 'soon'"
    )
    assert "Uvicorn running" not in done.stderr


def test_disabled_by_the_environment_leaves_the_app_alone(
    entry_dir: Path | None, tmp_path: Path
) -> None:
    """OTEL_SDK_DISABLED=true: no wrapping, no endpoint; the app serves as it is."""
    env = {"OTEL_SDK_DISABLED": "true"}
    with (
        instrumented("auto_starlette:app", entry_dir, tmp_path, env) as srv,
        srv.client() as client,
    ):
        assert get(client, "/items/1").status_code == 200
        assert get(client, "/metrics").status_code == 404


def test_fluxstack_otel_run_does_the_same(entry_dir: Path | None, tmp_path: Path) -> None:
    """``fluxstack-otel run -- uvicorn app:app`` monitors the app like opentelemetry-instrument."""
    prefix = (sys.executable, "-m", "fluxstack_otel", "run", "--")
    with (
        instrumented(
            "auto_fastapi:app", entry_dir, tmp_path, {"OTEL_SERVICE_NAME": "runner"}, prefix=prefix
        ) as srv,
        srv.client() as client,
    ):
        assert get(client, "/api/users/1").status_code == 200
        text = get(client, "/metrics").text
    requests = series(text, "http_requests_total")
    assert requests[labels(method="GET", route="/api/users/{user_id}")] == 1


@pytest.mark.parametrize(
    ("env", "command", "message"),
    [
        ({"HTTP_METRICS": "yes"}, ["uvicorn"],
         "fluxstack-otel: configuration error: HTTP_METRICS: expected true, false, 1 or 0, got 'yes'"),
        ({}, [], "fluxstack-otel: configuration error: no command to run;"),
        ({}, ["no-such-command-here"],
         "fluxstack-otel: configuration error: command not found: 'no-such-command-here'"),
    ],
    ids=["bad-config", "no-command", "unknown-command"],
)  # fmt: skip
def test_run_fails_before_starting_the_command(
    entry_dir: Path | None,
    tmp_path: Path,
    env: dict[str, str],
    command: list[str],
    message: str,
) -> None:
    """``run`` checks the configuration and the command first: exit 1 and the reason."""
    argv = [sys.executable, "-m", "fluxstack_otel", "run", "--", *command]
    done = finished(argv, auto_env(entry_dir, env), tmp_path, timeout=30)
    assert done.returncode == 1
    assert done.stderr.startswith(message)
