"""The one standalone server: a Prometheus ``port`` answers like the app, binds or says why."""

from __future__ import annotations

import errno
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fluxstack_otel import ConfigError, configure_monitoring
from fluxstack_otel._internal.monitoring import Monitoring
from fluxstack_otel._internal.sinks.endpoint_server import _bind_error
from fluxstack_otel._internal.sinks.prometheus.sink import PrometheusSink
from servers import wait_until

TOKEN = "s3cret-scrape-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
METHODS = ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "BREW"]


@pytest.fixture
def standalone() -> Iterator[str]:
    """A Prometheus exporter on a port of its own, behind a bearer token: its base URL."""
    monitoring = configure_monitoring(
        {
            "system_metrics": False,
            "set_global": False,
            "auth": {"bearer_token": TOKEN},
            "exporters": [{"type": "prometheus", "host": "127.0.0.1", "port": 0}],
        }
    )
    try:
        (server,) = monitoring.prometheus_servers
        yield f"http://127.0.0.1:{server.port}"
    finally:
        monitoring.shutdown()


@pytest.mark.parametrize("method", METHODS)
def test_other_methods_get_the_guard_then_a_405(standalone: str, method: str) -> None:
    """Any method but GET/HEAD: 401 without credentials, then 405 with Allow, never a 501."""
    with httpx.Client(base_url=standalone, timeout=10, trust_env=False) as client:
        refused = client.request(method, "/metrics")
        assert refused.status_code == 401
        allowed = client.request(method, "/metrics", headers=AUTH)
        assert allowed.status_code == 405
        assert allowed.headers["allow"] == "GET, HEAD"
        assert allowed.headers["content-type"] == "text/plain; charset=utf-8"


def test_no_answer_carries_a_server_banner(standalone: str) -> None:
    """200, 401, 404 and 405 answers of the standalone server have no Server header."""
    with httpx.Client(base_url=standalone, timeout=10, trust_env=False) as client:
        answers = [
            client.get("/metrics", headers=AUTH),
            client.get("/metrics"),
            client.get("/elsewhere", headers=AUTH),
            client.post("/metrics", headers=AUTH),
        ]
    assert [a.status_code for a in answers] == [200, 401, 404, 405]
    for answer in answers:
        assert "server" not in answer.headers


def test_a_request_that_does_not_parse_gets_plain_text_without_a_banner(standalone: str) -> None:
    """A header line too long to parse gets a short plain-text 431: no HTML, no version banner."""
    port = int(standalone.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET /metrics HTTP/1.1\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n")
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 431")
    assert b"server:" not in head.lower()
    assert b"content-type: text/plain" in head.lower()
    assert b"<" not in body


def held_port() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


def test_a_taken_port_is_a_config_error_naming_the_entry() -> None:
    """Without multiprocess, a taken port is a ConfigError at exporters[i].port saying what to do."""
    sock, port = held_port()
    with sock, pytest.raises(ConfigError) as info:
        configure_monitoring(
            {
                "system_metrics": False,
                "set_global": False,
                "exporters": [
                    {"type": "json", "endpoint": "/metrics.json"},
                    {"type": "prometheus", "host": "127.0.0.1", "port": port},
                ],
            }
        )
    assert info.value.path == "exporters[1].port"
    assert f"port {port}" in str(info.value)
    assert "multiprocess" in str(info.value)


def test_an_address_not_of_this_machine_is_a_config_error_naming_the_host() -> None:
    """A host that is no interface here (TEST-NET-1) is a ConfigError at exporters[0].host."""
    with pytest.raises(ConfigError) as info:
        configure_monitoring(
            {
                "system_metrics": False,
                "set_global": False,
                "exporters": [{"type": "prometheus", "host": "192.0.2.1", "port": 0}],
            }
        )
    assert info.value.path == "exporters[0].host"
    assert "'192.0.2.1'" in str(info.value)


@pytest.mark.parametrize(
    ("exc", "key"),
    [
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "exporters[2].host"),
        (OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"), "exporters[2].host"),
        (OSError(errno.EACCES, "Permission denied"), "exporters[2].port"),
        (OverflowError("bind(): port must be 0-65535."), "exporters[2].port"),
    ],
)
def test_every_bind_failure_names_the_key_at_fault(exc: OSError | OverflowError, key: str) -> None:
    """Unresolvable names and foreign addresses blame the host; the rest blame the port."""
    error = _bind_error(exc, "h", 1, "exporters[2]", "the Prometheus exposition", "hint")
    assert isinstance(error, ConfigError)
    assert error.path == key
    assert "cannot serve the Prometheus exposition on 'h' port 1" in str(error)


def host_wide(directory: str, port: int) -> dict[str, Any]:
    return {
        "system_metrics": False,
        "set_global": False,
        "collect_interval": 0.1,
        "multiprocess": {"enabled": True, "directory": directory},
        "exporters": [{"type": "prometheus", "host": "127.0.0.1", "port": port}],
    }


def sink_of(monitoring: Monitoring) -> PrometheusSink:
    (sink,) = [s for s in monitoring._sinks if isinstance(s, PrometheusSink)]
    return sink


def test_with_multiprocess_a_second_worker_stands_by_and_takes_the_port_over(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Host-wide metrics on one port: the second instance logs once, waits, and serves once the
    first is gone."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    first = configure_monitoring(host_wide(str(tmp_path), port))
    caplog.set_level(logging.INFO, logger="fluxstack_otel")
    second = configure_monitoring(host_wide(str(tmp_path), port))
    try:
        assert sink_of(first).server is not None
        assert sink_of(second).standing_by
        standing = [r for r in caplog.records if "stands by" in r.getMessage()]
        assert len(standing) == 1
        assert "exporters[0].port" in standing[0].getMessage()
        assert first._recorder is not None
        first._recorder.record("GET", "/first", 200, None, 0.01, 0, 5, time.perf_counter())
        first.shutdown()  # publishes its counts last, then frees the port
        wait_until(lambda: sink_of(second).server is not None, timeout=10, message="take-over")
        with httpx.Client(timeout=10, trust_env=False) as client:
            scrape = client.get(f"http://127.0.0.1:{port}/metrics")
        assert scrape.status_code == 200
        assert 'http_requests_total{method="GET",route="/first"} 1' in scrape.text
        assert len([r for r in caplog.records if "stands by" in r.getMessage()]) == 1
    finally:
        first.shutdown()
        second.shutdown()
