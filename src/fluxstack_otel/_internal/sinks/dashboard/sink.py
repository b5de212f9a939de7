"""The built-in dashboard: one HTML page, its script and stylesheet, served through the middleware.

The dashboard is a sink with endpoints only (no background work), so it is served, and wrapped by
whatever protects the other monitoring endpoints, exactly like ``/metrics``. Under its ``path``:

- ``<path>``: the page (``dashboard/index.html``), with a strict Content-Security-Policy: no
  inline script or style, no third-party origin, so the page works offline and cannot be made to
  load anything else;
- ``<path>/app.js`` and ``<path>/style.css``: the assets, shipped as package data;
- ``<path>/data.json``: the JSON document (``exporters/_document.py``) the page polls.

The dashboard serves its own document rather than pointing the page at a json exporter's
endpoint: exporters present the metrics under the configured naming profile, which may rename
them, while the page reads the catalogue's names; and the page keeps working whatever exporters
are configured. The document is built only when the page asks, as a json endpoint's is.

The page polls the document and computes everything else itself: rates from the difference of two
successive documents, p50/p95/p99 from the histogram buckets as PromQL's ``histogram_quantile``
does. The metric names it reads come from the catalogue, written into the page's ``data-metrics``
attribute, so the script spells none of them. Links from the page to its assets and to the
document are relative, so the page still works when the app is mounted under a prefix.
"""

from __future__ import annotations

import html
import json
import posixpath
from collections.abc import Awaitable, Callable, MutableMapping
from importlib import resources
from typing import TYPE_CHECKING, Any

from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.sinks.json_endpoint import JsonEndpoint

if TYPE_CHECKING:
    from fluxstack_otel._internal.config.model import DashboardConfig
    from fluxstack_otel._internal.sinks.base import Endpoint, SinkContext

__all__ = ["CONTENT_SECURITY_POLICY", "SUBPATHS", "DashboardSink"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_ASSETS = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
_DATA = "data.json"
SUBPATHS = ("/", *(f"/{name}" for name in _ASSETS), f"/{_DATA}")
"""What the dashboard serves under its path besides the page (``/`` redirects to the page)."""
# Seconds between two polls of the document, when ``collect_interval`` is longer than this: a page
# someone watches should move every few seconds; the system gauges are read at every collection.
_MAX_REFRESH = 5.0

# Roles the script knows -> catalogue names (the page's data-metrics attribute).
_METRICS = {
    "requests": cat.HTTP_REQUESTS,
    "responses": cat.HTTP_RESPONSES,
    "errors": cat.HTTP_ERRORS,
    "duration": cat.HTTP_REQUEST_DURATION,
    "rss": cat.PROCESS_RSS,
    "heap": cat.PROCESS_HEAP_USED,
    "cpu": cat.PROCESS_CPU_USER,
    "loop_lag": cat.EVENT_LOOP_LAG,
    "memory_total": cat.SYSTEM_MEMORY_TOTAL,
    "load": cat.SYSTEM_LOAD_1M,
}
_LABELS = {"route": cat.LABEL_ROUTE, "method": cat.LABEL_METHOD}


class DashboardSink:
    """The dashboard page and its assets, as endpoints of the middleware.

    Args:
        config: The ``dashboard`` section (enabled, path).
        context: The monitoring's sink context: the stream and extras for ``data.json``,
            ``collect_interval`` for the refresh period, ``service_name`` for the title.

    Raises:
        OSError: The page's assets are missing from the installed package.
    """

    def __init__(self, config: DashboardConfig, context: SinkContext) -> None:
        self._path = config.path
        self._data = f"{self._path}/{_DATA}"
        refresh = min(context.config.collect_interval, _MAX_REFRESH)
        # Read once here: nothing touches the disk on a request.
        package = resources.files("fluxstack_otel._internal.sinks.dashboard") / "static"
        page = (package / "index.html").read_text(encoding="utf-8")
        here = posixpath.dirname(self._path)
        page = page.replace("{{base}}", html.escape(posixpath.basename(self._path)))
        page = page.replace("{{data}}", html.escape(posixpath.relpath(self._data, here)))
        page = page.replace("{{refresh}}", f"{refresh:g}")
        page = page.replace("{{metrics}}", html.escape(json.dumps(_roles())))
        page = page.replace("{{service}}", html.escape(context.config.service_name))
        self._endpoints: dict[str, Endpoint] = {
            self._path: _Static(page.encode(), "text/html; charset=utf-8"),
        }
        for name, content_type in _ASSETS.items():
            body = (package / name).read_bytes()
            self._endpoints[f"{self._path}/{name}"] = _Static(body, content_type)
        self._endpoints[self._data] = JsonEndpoint(context.stream.collect, context.extras)
        # <path>/ would resolve the page's relative links one level too deep: send it to <path>.
        # Relative, so it holds under any root_path or mount prefix.
        self._endpoints[f"{self._path}/"] = _Redirect(f"../{posixpath.basename(self._path)}")

    @property
    def data_path(self) -> str:
        """The path of the JSON document the page reads."""
        return self._data

    def endpoints(self) -> dict[str, Endpoint]:
        return dict(self._endpoints)

    def start(self) -> None:
        """Nothing runs in the background."""

    def shutdown(self, timeout: float) -> None:
        """Nothing to flush."""


def _roles() -> dict[str, str]:
    roles = {role: spec.name for role, spec in _METRICS.items()}
    roles.update({f"label_{role}": label for role, label in _LABELS.items()})
    return roles


class _Redirect:
    """A permanent redirect (308: the method is kept) to a relative location."""

    def __init__(self, location: str) -> None:
        self._headers = [
            (b"location", location.encode()),
            (b"content-length", b"0"),
            (b"cache-control", b"no-cache"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 308, "headers": self._headers})
        await send({"type": "http.response.body", "body": b""})


class _Static:
    """One fixed body with the dashboard's security headers (GET and HEAD)."""

    def __init__(self, body: bytes, content_type: str) -> None:
        self._body = body
        self._headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-cache"),
            (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            body = b"Method Not Allowed"
            headers = [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"allow", b"GET, HEAD"),
            ]
            await send({"type": "http.response.start", "status": 405, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await send({"type": "http.response.start", "status": 200, "headers": self._headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else self._body})
