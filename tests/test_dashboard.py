"""The dashboard endpoints over real uvicorn: page, assets, headers, where the data comes from."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from fluxstack_otel import ConfigError, Monitoring, configure_monitoring
from fluxstack_otel._internal.metrics.catalog import BUILTIN_METRICS, EVENT_LOOP_LAG
from fluxstack_otel._internal.sinks.dashboard.sink import CONTENT_SECURITY_POLICY
from servers import ASGIApp

PAGE = "/metrics/dashboard"


async def _hello(request: Any) -> PlainTextResponse:
    return PlainTextResponse("hello")


@pytest.fixture
def monitored() -> Iterator[Callable[[dict[str, Any]], tuple[Monitoring, ASGIApp]]]:
    """``monitored(config) -> (monitoring, app)``; every monitoring is shut down at the end."""
    built: list[Monitoring] = []

    def build(config: dict[str, Any]) -> tuple[Monitoring, ASGIApp]:
        monitoring = configure_monitoring(config)
        built.append(monitoring)
        return monitoring, monitoring.instrument(Starlette(routes=[Route("/", _hello)]))

    yield build
    for monitoring in built:
        monitoring.shutdown()


def _client(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, trust_env=False, timeout=10.0)


class _Tags(HTMLParser):
    """Collects start tags with their attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _page_and_document(
    monitored: Any, serve: Any, config: dict[str, Any]
) -> tuple[dict[str, str | None], dict[str, Any], set[str]]:
    """After one request to the app: the page's body attributes, its data document, and the
    names of the document's metrics."""
    _, app = monitored(config)
    with _client(serve(app)) as client:
        client.get("/")
        body = dict(next(attrs for tag, attrs in _tags(client.get(PAGE).text) if tag == "body"))
        document: dict[str, Any] = client.get(f"{PAGE}/data.json").json()
    return body, document, {m["name"] for m in document["metrics"]}


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def test_dashboard_is_off_by_default(monitored: Any, serve: Any) -> None:
    """Without ``dashboard.enabled`` the path is the app's, not a monitoring endpoint."""
    _, app = monitored({})
    with _client(serve(app)) as client:
        assert client.get(PAGE).status_code == 404


def test_page_and_assets_are_served_with_a_strict_policy(monitored: Any, serve: Any) -> None:
    """The page, its script and stylesheet come with the CSP, nosniff and the right types."""
    _, app = monitored({"dashboard": {"enabled": True}})
    with _client(serve(app)) as client:
        expected = {
            PAGE: "text/html",
            f"{PAGE}/app.js": "text/javascript",
            f"{PAGE}/chart.js": "text/javascript",
            f"{PAGE}/quantile.js": "text/javascript",
            f"{PAGE}/style.css": "text/css",
        }
        for path, content_type in expected.items():
            response = client.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"].startswith(content_type)
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["x-frame-options"] == "DENY"
        head = client.head(PAGE)
        assert head.status_code == 200
        assert head.content == b""
        post = client.post(PAGE)
        assert post.status_code == 405
        assert post.headers["allow"] == "GET, HEAD"


@pytest.mark.slow
def test_page_has_no_inline_code_and_no_outside_url(monitored: Any, serve: Any) -> None:
    """Nothing inline (the CSP would block it) and no URL to another origin: it works offline."""
    _, app = monitored({"dashboard": {"enabled": True}})
    with _client(serve(app)) as client:
        page = client.get(PAGE).text
        scripts_text = "".join(
            client.get(f"{PAGE}/{name}").text for name in ("app.js", "chart.js", "quantile.js")
        )
        style = client.get(f"{PAGE}/style.css").text
    tags = _tags(page)
    scripts = [attrs for tag, attrs in tags if tag == "script"]
    assert scripts == [
        {"src": "dashboard/chart.js", "defer": None},
        {"src": "dashboard/quantile.js", "defer": None},
        {"src": "dashboard/app.js", "defer": None},
    ]
    assert "<style" not in page
    assert not [
        attrs for _, attrs in tags if "style" in attrs or any(k.startswith("on") for k in attrs)
    ]
    # The SVG namespace is a name, never fetched; no other URL appears.
    scripts_text = scripts_text.replace('"http://www.w3.org/2000/svg"', "")
    for text in (page, scripts_text, style):
        assert not re.search(r"https?://", text)
        assert "@import" not in text


def test_page_reads_the_document_it_serves_without_a_json_endpoint(
    monitored: Any, serve: Any
) -> None:
    """Without a json exporter endpoint the dashboard serves the document at ``<path>/data.json``."""
    config = {"service_name": "shop <&>", "dashboard": {"enabled": True}}
    body, document, names = _page_and_document(monitored, serve, config)
    assert body["data-source"] == "dashboard/data.json"
    assert document["resource"]["service_name"] == "shop <&>"
    assert "http_requests_total" in names
    assert "alerts" in document  # extras reach this document too


def test_page_reads_its_own_document_next_to_a_json_exporter(monitored: Any, serve: Any) -> None:
    """With a json exporter too, the page still reads its own data (relative to a custom path)."""
    config = {
        "exporters": [{"type": "prometheus"}, {"type": "json", "endpoint": "/metrics.json"}],
        "dashboard": {"enabled": True, "path": "/ops/dash"},
    }
    _, app = monitored(config)
    with _client(serve(app)) as client:
        page = client.get("/ops/dash").text
        body = dict(next(attrs for tag, attrs in _tags(page) if tag == "body"))
        assert body["data-source"] == "dash/data.json"
        assert client.get("/ops/dash/data.json").status_code == 200
        assert client.get("/ops/dash/app.js").status_code == 200
        assert client.get("/metrics.json").status_code == 200


@pytest.mark.parametrize("path", ["metrics/dashboard", "/metrics/dashboard/", 3])
def test_a_bad_dashboard_path_is_a_config_error(path: object) -> None:
    """The path must start with '/' and not end with one; the error names the key."""
    with pytest.raises(ConfigError, match=r"dashboard\.path"):
        configure_monitoring({"dashboard": {"enabled": True, "path": path}})


def test_dashboard_is_protected_like_the_other_endpoints(monitored: Any, serve: Any) -> None:
    """With ``auth`` set, the page, its assets and its data need the credentials too."""
    config = {
        "auth": {"basic": {"username": "ops", "password": "s3cret"}},
        "dashboard": {"enabled": True},
    }
    _, app = monitored(config)
    assets = [f"{PAGE}/{name}" for name in ("app.js", "chart.js", "quantile.js", "style.css")]
    paths = [PAGE, *assets, f"{PAGE}/data.json"]
    with _client(serve(app)) as client:
        for path in paths:
            refused = client.get(path)
            assert refused.status_code == 401, path
            assert refused.headers["www-authenticate"].startswith("Basic")
            assert client.get(path, auth=("ops", "s3cret")).status_code == 200, path


def test_page_data_keeps_the_catalogue_names_under_another_naming(
    monitored: Any, serve: Any
) -> None:
    """With ``naming: semconv`` the exporters rename, but the page's data keeps the names it reads."""
    config = {"naming": "semconv", "dashboard": {"enabled": True}}
    _, _, names = _page_and_document(monitored, serve, config)
    # The loop-lag gauge has no value until its probe has run; every other built-in is there.
    assert {spec.name for spec in BUILTIN_METRICS if spec is not EVENT_LOOP_LAG} <= names
    assert not [name for name in names if "." in name]  # no semantic-convention name
