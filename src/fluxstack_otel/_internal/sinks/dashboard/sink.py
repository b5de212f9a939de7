"""The built-in dashboard: one HTML page, its script and stylesheet, served through the middleware.

The dashboard is a sink whose endpoints are served, and wrapped by whatever protects the other
monitoring endpoints, exactly like ``/metrics``; its one background job samples the history ring
(``history.py``) every step. Under its ``path``:

- ``<path>``: the page (``dashboard/index.html``), with a strict Content-Security-Policy: no
  inline script or style, no third-party origin, so the page works offline and cannot be made to
  load anything else;
- ``<path>/app.js``, ``<path>/chart.js`` (the SVG charts, no library), ``<path>/quantile.js``
  (quantiles from classic or exponential buckets) and ``<path>/style.css``:
  the assets, shipped as package data;
- ``<path>/data.json``: the JSON document (``sinks/document.py``) the page polls, with a
  ``history`` section: the ring's points (``?since=<t>``: only those after ``t``).

The dashboard serves its own document rather than pointing the page at a json exporter's
endpoint: exporters present the metrics under the configured naming profile, which may rename
them, while the page reads the catalogue's names; and the page keeps working whatever exporters
are configured. The document is built only when the page asks, as a json endpoint's is.

The page draws its charts and computes its rates, ratios and quantiles (from the exponential
buckets where the histograms keep them, else PromQL's ``histogram_quantile`` over the classic
ones) from the history's points, each the difference of two collections the server made; the document gives it the totals, the routes and the active alerts. The metric names
it reads there come from the catalogue, written into the page's ``data-metrics`` attribute, so the
script spells none of them. Links from the page to its assets and to the
document are relative, so the page still works when the app is mounted under a prefix.
"""

from __future__ import annotations

import html
import json
import logging
import posixpath
from functools import partial
from importlib import resources
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from fluxstack_otel._internal.asgi_types import Receive, Scope, Send
from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.runtime import background
from fluxstack_otel._internal.runtime.failures import report_failure
from fluxstack_otel._internal.runtime.fork import call_in_child
from fluxstack_otel._internal.sinks.base import ALLOWED_METHODS, method_not_allowed
from fluxstack_otel._internal.sinks.dashboard.history import History, ring_shape
from fluxstack_otel._internal.sinks.dashboard.layout import ASSETS, DATA
from fluxstack_otel._internal.sinks.document import CONTENT_TYPE, document, dumps, safe_extras
from fluxstack_otel._internal.sinks.periodic import PeriodicWorker, Tick

if TYPE_CHECKING:
    from fluxstack_otel._internal.config.model import DashboardConfig
    from fluxstack_otel._internal.sinks.base import Endpoint, SinkContext

__all__ = ["CONTENT_SECURITY_POLICY", "DashboardSink"]

_log = logging.getLogger("fluxstack_otel")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
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
    "cores": cat.SYSTEM_CPU_CORES,
}
_LABELS = {"route": cat.LABEL_ROUTE, "method": cat.LABEL_METHOD}


class DashboardSink:
    """The dashboard page and its assets, as endpoints of the middleware.

    Args:
        config: The ``dashboard`` section (enabled, path, history).
        context: The monitoring's sink context: the stream and extras for ``data.json`` and
            the history, ``collect_interval`` for the refresh period and the history's step,
            ``service_name`` for the title.

    Raises:
        OSError: The page's assets are missing from the installed package.
    """

    def __init__(self, config: DashboardConfig, context: SinkContext) -> None:
        self._path = config.path
        self._data = f"{self._path}/{DATA}"
        points, step = ring_shape(config.history, context.config.collect_interval)
        refresh = min(step, _MAX_REFRESH)
        self._history: History | None = None
        self._worker: PeriodicWorker | None = None
        if points:
            extras = context.extras
            self._history = History(
                context.stream.collect,
                lambda: safe_extras(extras).get("alerts") or [],
                points=points,
                step=step,
            )
            # The one tie to the scheduler: a job every step; the final run at stop is skipped.
            self._worker = PeriodicWorker(
                f"fluxstack-otel-dashboard {self._path}", step, self._tick
            )
            call_in_child(self._after_fork_in_child)
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
        for name, content_type in ASSETS.items():
            body = (package / name).read_bytes()
            self._endpoints[f"{self._path}/{name}"] = _Static(body, content_type)
        self._endpoints[self._data] = _Data(context, self._history)
        # <path>/ would resolve the page's relative links one level too deep: send it to <path>.
        # Relative, so it holds under any root_path or mount prefix.
        self._endpoints[f"{self._path}/"] = _Redirect(f"../{posixpath.basename(self._path)}")

    @property
    def data_path(self) -> str:
        """The path of the JSON document the page reads."""
        return self._data

    def endpoints(self) -> dict[str, Endpoint]:
        return dict(self._endpoints)

    @property
    def history(self) -> History | None:
        """The history ring (None with ``history: 0``)."""
        return self._history

    def start(self) -> None:
        """Take the history's baseline now, then sample every step."""
        if self._history is None or self._worker is None:
            return
        self._sample()
        self._worker.start()

    def shutdown(self, timeout: float) -> None:
        """Stop sampling; nothing to flush."""
        if self._worker is not None:
            self._worker.stop(timeout)

    def _tick(self, tick: Tick) -> None:
        if not tick.final:
            self._sample()

    def _sample(self) -> None:
        if self._history is None:
            return
        try:
            self._history.sample()
        except Exception:
            report_failure("sampling the dashboard history")

    def _after_fork_in_child(self) -> None:
        # The parent's points describe the parent; a worker's page starts from its own baseline.
        if self._history is not None:
            self._history.clear()


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
        if method not in ALLOWED_METHODS:
            await method_not_allowed(send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": self._headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else self._body})


class _Data:
    """``data.json``: the document now, plus the history's points (GET and HEAD).

    Built on the package's render thread (``runtime/background.py``), so a large document never
    stalls requests.
    """

    def __init__(self, context: SinkContext, history: History | None) -> None:
        self._collect = context.stream.collect
        self._extras = context.extras
        self._history = history

    def body(self, since: float | None = None) -> bytes:
        """The document as served now, with the points after ``since`` (all when None)."""
        text = dumps(document(self._collect(), safe_extras(self._extras)))
        if self._history is not None:
            text = text[:-1] + ',"history":' + self._history.encoded(since) + "}"
        return text.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            await _send(send, 405, b"Method Not Allowed", b"text/plain; charset=utf-8",
                        [(b"allow", b"GET, HEAD")])  # fmt: skip
            return
        since = _since(scope.get("query_string", b""))
        try:
            body = await background.run(partial(self.body, since))
        except Exception:
            _log.exception("building the dashboard document failed")
            await _send(send, 500, b"metrics collection failed", b"text/plain; charset=utf-8")
            return
        await _send(send, 200, b"" if method == "HEAD" else body, CONTENT_TYPE.encode(),
                    length=len(body))  # fmt: skip


def _since(query: bytes) -> float | None:
    """``?since=<unix seconds>``; anything else (absent, not a finite number) means everything."""
    try:
        value = float(parse_qs(query.decode("latin-1")).get("since", [""])[0])
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


async def _send(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
    *,
    length: int | None = None,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body) if length is None else length).encode()),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
