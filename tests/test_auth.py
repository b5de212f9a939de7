"""The ``auth`` section: who may read /metrics, the JSON endpoint and the standalone server."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fluxstack_otel import ConfigError, Monitoring, configure_monitoring, load_config
from fluxstack_otel._internal.integration.cli import main
from fluxstack_otel._internal.sinks.auth import Guard, ProtectedEndpoint
from fluxstack_otel._internal.sinks.endpoint_server import EndpointServer
from servers import serve_asgi, settle

TOKEN = "tok-3f9a-secret"
PASSWORD = "pw-77c1-secret"
METRIC_WORDS = (b"http_", b"process_", b"# HELP", b"# TYPE", b"{")


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"app"})


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def http_scope(
    path: str, *, client: Any = ("127.0.0.1", 5000), auth: str | None = None
) -> dict[str, Any]:
    headers = [] if auth is None else [(b"authorization", auth.encode("latin-1"))]
    return {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
            "root_path": "", "query_string": b"", "headers": headers, "client": client}  # fmt: skip


def call(asgi: Any, scope: dict[str, Any]) -> tuple[int, dict[bytes, list[bytes]], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(asgi(scope, receive, send))
    headers: dict[bytes, list[bytes]] = {}
    for key, value in sent[0].get("headers", []):
        headers.setdefault(key, []).append(value)
    return sent[0]["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])


@pytest.fixture
def protected() -> Iterator[Monitoring]:
    m = configure_monitoring(
        {
            "system_metrics": False,
            "exporters": [{"type": "prometheus"}, {"type": "json", "endpoint": "/metrics.json"}],
            "auth": {
                "bearer_token": TOKEN,
                "basic": {"username": "scraper", "password": PASSWORD},
                "allow_networks": ["127.0.0.0/8", "::1"],
            },
        }
    )
    yield m
    m.shutdown()


def assert_refused(status: int, body: bytes, expected: int) -> None:
    assert status == expected
    assert body == (b"Unauthorized" if expected == 401 else b"Forbidden")
    assert not any(word in body for word in METRIC_WORDS)


@pytest.mark.parametrize("path", ["/metrics", "/metrics.json"])
def test_every_endpoint_needs_credentials_and_says_nothing_without(
    protected: Monitoring, path: str
) -> None:
    """No or wrong credentials: 401 with both challenges and a fixed body; right ones: 200."""
    wrapped = protected.instrument(app)
    for auth in (None, "Bearer wrong", "Bearer " + TOKEN[:-1], basic("scraper", "nope"),
                 basic("other", PASSWORD), "Basic !!notbase64", "Digest x", "Bearer"):  # fmt: skip
        status, headers, body = call(wrapped, http_scope(path, auth=auth))
        assert_refused(status, body, 401)
        assert sorted(headers[b"www-authenticate"]) == [
            b'Basic realm="metrics", charset="UTF-8"',
            b'Bearer realm="metrics"',
        ]
    for auth in ("Bearer " + TOKEN, "bearer  " + TOKEN, basic("scraper", PASSWORD)):
        status, _, body = call(wrapped, http_scope(path, auth=auth))
        assert status == 200
        assert b"http_requests_total" in body


def test_clients_outside_the_networks_get_403_even_with_the_token(protected: Monitoring) -> None:
    """The network is checked first: a right token from the wrong place is still refused."""
    wrapped = protected.instrument(app)
    for client in (("10.1.2.3", 1), ("::2", 1), None, ("unix-socket", 0), ["8.8.8.8", 1]):
        status, _, body = call(
            wrapped, http_scope("/metrics", client=client, auth="Bearer " + TOKEN)
        )
        assert_refused(status, body, 403)
    for client in (("127.0.0.9", 1), ("::1", 1), ("::ffff:127.0.0.1", 1)):
        status, _, _ = call(wrapped, http_scope("/metrics", client=client, auth="Bearer " + TOKEN))
        assert status == 200


def test_the_app_itself_is_not_guarded(protected: Monitoring) -> None:
    """Requests to the app's own paths never meet the guard, from any client."""
    wrapped = protected.instrument(app)
    status, _, body = call(wrapped, http_scope("/anything", client=("10.9.9.9", 1)))
    assert (status, body) == (200, b"app")


def test_a_refused_request_never_runs_the_endpoint() -> None:
    """The endpoint is not called (nothing is collected) for a refused request."""
    calls: list[str] = []

    async def endpoint(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        await app(scope, receive, send)

    guarded = ProtectedEndpoint(endpoint, Guard(bearer_token=TOKEN))
    status, _, _ = call(guarded, http_scope("/metrics"))
    assert status == 401
    assert calls == []
    call(guarded, http_scope("/metrics", auth="Bearer " + TOKEN))
    assert calls == ["/metrics"]


def test_no_auth_section_means_no_guard() -> None:
    """Without rules the endpoints are served as before (no wrapper in the way)."""
    assert Guard.from_config(load_config({}).auth) is None
    assert Guard.from_config(load_config({"auth": {}}).auth) is None


def test_secrets_are_masked_in_repr_and_never_echoed_by_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """repr of the config and of the guard hides both secrets; bad secrets are not quoted."""
    config = load_config(
        {"auth": {"bearer_token": TOKEN, "basic": {"username": "u", "password": PASSWORD}}}
    )
    shown = repr(config) + repr(config.auth) + repr(Guard.from_config(config.auth))
    assert TOKEN not in shown
    assert PASSWORD not in shown
    assert "***" in repr(config.auth)
    for bad in ({"bearer_token": TOKEN + "\n"}, {"basic": {"username": "u", "password": ""}}):
        with pytest.raises(ConfigError) as info:
            load_config({"auth": bad})
        assert TOKEN not in str(info.value)
        assert info.value.path is not None
        assert info.value.path.startswith("auth.")


def test_secrets_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``*_env`` keys name a variable read at load time; an unset variable is a ConfigError."""
    monkeypatch.setenv("METRICS_TOKEN", TOKEN)
    monkeypatch.setenv("METRICS_PASSWORD", PASSWORD)
    auth = load_config(
        {
            "auth": {
                "bearer_token_env": "METRICS_TOKEN",
                "basic": {"username": "u", "password_env": "METRICS_PASSWORD"},
            }
        }
    ).auth
    assert auth.bearer_token == TOKEN
    assert auth.basic is not None
    assert auth.basic.password == PASSWORD
    camel = load_config({"httpMetrics": True, "auth": {"bearerTokenEnv": "METRICS_TOKEN"}})
    assert camel.auth.bearer_token == TOKEN
    with pytest.raises(ConfigError, match="'UNSET_VARIABLE_X' is unset") as info:
        load_config({"auth": {"bearer_token_env": "UNSET_VARIABLE_X"}})
    assert info.value.path == "auth.bearer_token_env"
    with pytest.raises(ConfigError, match="keep one"):
        load_config({"auth": {"bearer_token": "x", "bearer_token_env": "METRICS_TOKEN"}})


@pytest.mark.parametrize(
    ("auth", "path"),
    [
        ({"allow_networks": ["10.0.0.0/33"]}, "auth.allow_networks[0]"),
        ({"allow_networks": "10.0.0.0/8"}, "auth.allow_networks"),
        ({"allow_networks": [10]}, "auth.allow_networks[0]"),
        ({"basic": {"username": "a:b", "password": "x"}}, "auth.basic.username"),
        ({"basic": {"username": "u"}}, "auth.basic"),
        ({"bearer_token": 123}, "auth.bearer_token"),
        ({"bearer": "x"}, "auth.bearer"),
    ],
)
def test_bad_auth_values_name_their_key(auth: dict[str, Any], path: str) -> None:
    """Every bad value is a ConfigError at its key path."""
    with pytest.raises(ConfigError) as info:
        load_config({"auth": auth})
    assert info.value.path == path


def test_networks_are_normalised() -> None:
    """Host bits and single addresses are accepted and stored as networks."""
    auth = load_config({"auth": {"allow_networks": ["10.1.2.3/8", "::1", " 192.168.0.1 "]}}).auth
    assert auth.allow_networks == ("10.0.0.0/8", "::1/128", "192.168.0.1/32")


def test_over_real_uvicorn_the_endpoints_are_guarded_and_the_app_is_not(
    protected: Monitoring, caplog: pytest.LogCaptureFixture
) -> None:
    """Real sockets: 401 then 200 on both endpoints, the app answers anyone, nothing logged."""
    with (
        caplog.at_level(logging.DEBUG, logger="fluxstack_otel"),
        serve_asgi(protected.instrument(app)) as base,
        httpx.Client(base_url=base, timeout=10, trust_env=False) as client,
    ):
        assert client.get("/").text == "app"
        for path in ("/metrics", "/metrics.json"):
            refused = client.get(path, headers={"Authorization": "Bearer " + PASSWORD})
            assert_refused(refused.status_code, refused.content, 401)
            assert client.get(path, auth=("scraper", PASSWORD)).status_code == 200
            assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert TOKEN not in caplog.text
    assert PASSWORD not in caplog.text


@pytest.mark.slow
def test_standalone_prometheus_server_applies_the_same_rules() -> None:
    """The threaded server on its own port: 401 without credentials, 403 outside the networks."""
    exporters = [{"type": "prometheus", "host": "127.0.0.1", "port": 0}]
    config: dict[str, Any] = {"system_metrics": False, "exporters": exporters}
    monitoring = configure_monitoring({**config, "auth": {"bearer_token": TOKEN}})
    try:
        (server,) = monitoring.prometheus_servers
        url = f"http://127.0.0.1:{server.port}"
        with httpx.Client(base_url=url, timeout=10, trust_env=False) as client:
            refused = client.get("/metrics")
            assert_refused(refused.status_code, refused.content, 401)
            assert refused.headers["www-authenticate"] == 'Bearer realm="metrics"'
            # Unknown paths are refused the same way: their existence is not revealed either.
            assert client.get("/other").status_code == 401
            ok = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200
            assert "# TYPE http_requests_total counter" in ok.text
    finally:
        monitoring.shutdown()
    monitoring = configure_monitoring(
        {**config, "auth": {"bearer_token": TOKEN, "allow_networks": ["10.0.0.0/8"]}}
    )
    try:
        (server,) = monitoring.prometheus_servers
        with httpx.Client(timeout=10, trust_env=False) as client:
            denied = client.get(
                f"http://127.0.0.1:{server.port}/metrics",
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
        assert_refused(denied.status_code, denied.content, 403)
    finally:
        monitoring.shutdown()


@pytest.mark.slow
def test_endpoint_server_serves_every_endpoint_apart_from_the_app() -> None:
    """endpoint_server.port: /metrics and the JSON endpoint leave the app for their own port,
    answer as they would on the app, and keep the auth rules (unknown paths included)."""
    monitoring = configure_monitoring(
        {
            "system_metrics": False,
            "exporters": [{"type": "prometheus"}, {"type": "json", "endpoint": "/metrics.json"}],
            "auth": {"bearer_token": TOKEN},
            "endpoint_server": {"host": "127.0.0.1", "port": 0},
        }
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        (server,) = [s for s in monitoring._sinks if isinstance(s, EndpointServer)]
        with (
            serve_asgi(monitoring.instrument(app)) as base,
            httpx.Client(timeout=10, trust_env=False) as client,
        ):
            # On the app, the monitoring paths are the app's own now.
            assert client.get(f"{base}/metrics", headers=auth).text == "app"
            settle(base)  # the endpoint server runs on another thread: let the record land
            apart = f"http://127.0.0.1:{server.port}"
            refused = client.get(f"{apart}/metrics")
            assert_refused(refused.status_code, refused.content, 401)
            assert client.get(f"{apart}/nothing-here").status_code == 401
            assert client.get(f"{apart}/nothing-here", headers=auth).status_code == 404
            scrape = client.get(f"{apart}/metrics", headers=auth)
            assert scrape.status_code == 200
            assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
            assert 'http_requests_total{method="GET",route="<unmatched>"} 1' in scrape.text
            gz = client.get(f"{apart}/metrics", headers={**auth, "Accept-Encoding": "gzip"})
            assert gz.headers["content-encoding"] == "gzip"
            document = client.get(f"{apart}/metrics.json", headers=auth).json()
            assert {m["name"] for m in document["metrics"]} >= {"http_requests_total"}
            assert client.post(f"{apart}/metrics", headers=auth).status_code == 405
            head = client.head(f"{apart}/metrics", headers=auth)
            assert (head.status_code, head.content) == (200, b"")
    finally:
        monitoring.shutdown()
    assert not server._threads[0].is_alive()


def test_check_config_masks_the_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``fluxstack-otel check-config`` shows the auth section with both secrets as ***."""
    path = tmp_path / "monitoring.toml"
    path.write_text(
        f'[auth]\nbearer_token = "{TOKEN}"\nallow_networks = ["10.0.0.0/8"]\n'
        f'[auth.basic]\nusername = "scraper"\npassword = "{PASSWORD}"\n'
    )
    for extra in ([], ["--json"]):
        assert main(["check-config", *extra, str(path)]) == 0
        out = capsys.readouterr().out
        assert "10.0.0.0/8" in out
        assert "scraper" in out
        assert TOKEN not in out
        assert PASSWORD not in out


def test_the_dashboard_and_its_assets_are_guarded_too() -> None:
    """Every dashboard path (page, script, stylesheet, data) answers 401 without the token."""
    monitoring = configure_monitoring(
        {"system_metrics": False, "dashboard": {"enabled": True}, "auth": {"bearer_token": TOKEN}}
    )
    try:
        wrapped = monitoring.instrument(app)
        paths = [p for p in monitoring._wiring().endpoints if p.startswith("/metrics/dashboard")]
        assert len(paths) >= 3
        for path in paths:
            status, _, body = call(wrapped, http_scope(path))
            assert_refused(status, body, 401)
            status, _, _ = call(wrapped, http_scope(path, auth=f"Bearer {TOKEN}"))
            assert status == (308 if path.endswith("/") else 200)  # <path>/ redirects to <path>
    finally:
        monitoring.shutdown()


def test_an_endpoint_server_address_that_cannot_be_bound_is_a_config_error() -> None:
    """A taken port is reported at configuration time, naming the section."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match="cannot serve the endpoints") as info:
            configure_monitoring(
                {"system_metrics": False, "endpoint_server": {"host": "127.0.0.1", "port": port}}
            )
    assert info.value.path == "endpoint_server.port"
