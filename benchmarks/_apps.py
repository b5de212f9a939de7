"""The measured applications and the instrumentation variants, one small builder each.

Every variant wraps the same four routes (plain text GET, ~1 KB JSON under ``/items/{item_id}``, a
512-byte JSON POST, a handled 500) the way its documentation says to. A builder raises
``Unavailable`` when the peer's package is missing (the variant is skipped with that reason) and
returns a ``Built`` holding the app, a close callback and notes for the report.
"""

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _driver import ASGIApp, Request, noop_app

PLAIN_TEXT = "Hello, world!\n"
# A product-like document that serialises to about 1 KB.
ITEM: dict[str, Any] = {
    "id": 0,
    "name": "Ergonomic stainless steel widget",
    "sku": "WID-0000-STL",
    "price": {"amount": 129.95, "currency": "EUR", "tax_included": True},
    "stock": {"warehouse": "ams-2", "available": 1742, "reserved": 12},
    "tags": ["hardware", "steel", "ergonomic", "bestseller", "ships-in-24h"],
    "dimensions": {"width_mm": 120, "height_mm": 45, "depth_mm": 80, "weight_g": 310},
    "description": (
        "A sturdy widget machined from a single block of stainless steel, brushed by hand and "
        "tested twice before it leaves the workshop. Fits every standard mount and most odd ones."
    ),
    "ratings": {"average": 4.6, "count": 2381, "histogram": [12, 31, 120, 640, 1578]},
    "related": [101, 202, 303, 404, 505, 606, 707, 808],
    "updated_at": "2025-01-15T09:30:00Z",
    "links": {
        "self": "/items/0",
        "images": ["/img/widget-front.jpg", "/img/widget-side.jpg", "/img/widget-box.jpg"],
    },
}
POST_BODY = b'{"data":"' + b"x" * 501 + b'"}'  # exactly 512 bytes

MIX: tuple[Request, ...] = (
    Request("plain", "GET", "/plain", 200),
    Request("json", "GET", "/items/42", 200),
    Request("post", "POST", "/echo", 200, body=POST_BODY, content_type=b"application/json"),
    Request("error", "GET", "/error", 500),
)


class Unavailable(Exception):
    """The variant cannot be built here (missing package); the run skips it with this reason."""


@dataclass
class Context:
    """What builders may need: a scratch directory and the local OTLP sink's endpoint."""

    tmpdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-")))
    otlp_endpoint: str = "http://127.0.0.1:4318"
    sink: Any = None
    # True when one process holds every variant (the in-process section): the package must not
    # claim process-wide state there (see full_config).
    shared_process: bool = False
    # Seconds between the package's periodic exports and alert evaluations (section 1b sets it
    # beyond its run: that work is per interval, not per request).
    periodic_interval: float = 1.0


@dataclass
class Built:
    """A built variant: the ASGI app, how to release it and what the report should say."""

    app: ASGIApp
    close: Callable[[], None] = lambda: None
    notes: list[str] = field(default_factory=list)
    handle: Any = None
    # Work left pending for a background thread, done inside a timed batch (Driver.batch).
    settle: Callable[[], None] | None = None


@dataclass(frozen=True)
class Variant:
    """A measured variant.

    Attributes:
        name: Short key used on the command line and in the JSON.
        label: Human-readable row label.
        base: The bare variant whose time this one's overhead is measured against (None: a base).
        build: Builds the app.
        package: The distribution it needs (for the skip message), if any.
        sections: The sections that measure it.
    """

    name: str
    label: str
    base: str | None
    build: Callable[[Context], Built]
    package: str | None = None
    sections: tuple[str, ...] = ("inproc", "throughput")


# -- the bare applications ---------------------------------------------------------------------


def starlette_app() -> Any:
    """The four routes as a plain Starlette application."""
    from starlette.applications import Starlette
    from starlette.requests import Request as StarletteRequest
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    async def plain(request: StarletteRequest) -> PlainTextResponse:
        return PlainTextResponse(PLAIN_TEXT)

    async def item(request: StarletteRequest) -> JSONResponse:
        return JSONResponse({**ITEM, "id": int(request.path_params["item_id"])})

    async def echo(request: StarletteRequest) -> JSONResponse:
        data = await request.json()
        return JSONResponse({"received": len(data["data"])})

    async def error(request: StarletteRequest) -> PlainTextResponse:
        return PlainTextResponse("internal error", status_code=500)

    return Starlette(
        routes=[
            Route("/plain", plain),
            Route("/items/{item_id}", item),
            Route("/echo", echo, methods=["POST"]),
            Route("/error", error),
        ]
    )


# The wide app: the four routes under each of WIDE prefixes, so a request mix that turns through
# the prefixes (``Widened``) makes 4 x WIDE route templates, each its own series. A batch of
# DRAIN_AT records then holds a few records of each series instead of dozens of four.
WIDE = 16


def wide_app() -> Any:
    """The four routes again under ``/v0`` ... ``/v15``: 64 plain routes (no mounts, whose
    templates take another path through the middleware)."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    four = starlette_app().routes
    return Starlette(
        routes=[
            Route(f"/v{i}{r.path}", r.endpoint, methods=r.methods)
            for i in range(WIDE)
            for r in four
        ]
    )


class Widened:
    """In front of an app (and its middlewares): each request goes to the next prefix in turn."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._prefixes = [(f"/v{i}", f"/v{i}".encode()) for i in range(WIDE)]
        self._turn = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self._turn = turn = (self._turn + 1) % (WIDE * len(MIX))
            prefix, raw = self._prefixes[turn // len(MIX)]  # every kind under each prefix
            scope["path"] = prefix + scope["path"]
            scope["raw_path"] = raw + scope["raw_path"]
        await self.app(scope, receive, send)


def fastapi_app() -> Any:
    """The same four routes as a FastAPI application (typed path parameter, no docs routes)."""
    from fastapi import FastAPI
    from fastapi import Request as FastAPIRequest
    from fastapi.responses import JSONResponse, PlainTextResponse

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/plain")
    async def plain() -> PlainTextResponse:
        return PlainTextResponse(PLAIN_TEXT)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> JSONResponse:
        return JSONResponse({**ITEM, "id": item_id})

    @app.post("/echo")
    async def echo(request: FastAPIRequest) -> JSONResponse:
        data = await request.json()
        return JSONResponse({"received": len(data["data"])})

    @app.get("/error")
    async def error() -> PlainTextResponse:
        return PlainTextResponse("internal error", status_code=500)

    return app


def _require(module: str, dist: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise Unavailable(f"{dist} is not installed (pip install {dist})")


# -- this package -------------------------------------------------------------------------------


def import_package() -> Any:
    """Import fluxstack_otel, or raise Unavailable while it cannot be imported yet."""
    try:
        import fluxstack_otel
    except ImportError as exc:
        raise Unavailable(f"unavailable: {exc}") from exc
    if not hasattr(fluxstack_otel, "configure_monitoring"):
        raise Unavailable("unavailable: fluxstack_otel has no configure_monitoring yet")
    return fluxstack_otel


@dataclass(frozen=True)
class Part:
    """An optional piece of a configuration the harness may drop if the package refuses it."""

    label: str
    key: str
    value: Any

    def apply(self, config: dict[str, Any]) -> None:
        if self.key == "exporters":
            config.setdefault("exporters", []).append(self.value)
        else:
            config[self.key] = self.value


def configure_with_fallback(
    base: dict[str, Any], parts: list[Part]
) -> tuple[Any, list[str], dict[str, Any]]:
    """Configure with every optional part; drop the parts the package refuses, one by one.

    Returns:
        (monitoring, notes naming each dropped part and the error it raised, final config).
    """
    pkg = import_package()
    configure = pkg.configure_monitoring

    def build(chosen: list[Part]) -> dict[str, Any]:
        config = json.loads(json.dumps(base))
        for part in chosen:
            part.apply(config)
        return config

    config = build(parts)
    try:
        return configure(config), [], config
    except Exception as full_error:
        first_error = full_error
    try:
        configure(build([])).shutdown()
    except Exception as exc:
        raise RuntimeError(
            f"configure_monitoring refused the base config {base!r}: {exc!r} "
            f"(full config error: {first_error!r})"
        ) from exc
    kept: list[Part] = []
    notes: list[str] = []
    for part in parts:
        try:
            configure(build([*kept, part])).shutdown()
            kept.append(part)
        except Exception as exc:
            notes.append(f"dropped {part.label}: {type(exc).__name__}: {exc}")
    config = build(kept)
    return configure(config), notes, config


def base_config(*, system_metrics: bool) -> dict[str, Any]:
    """What every measured configuration starts from: HTTP metrics served at /metrics."""
    return {
        "service_name": "bench",
        "http_metrics": True,
        "system_metrics": system_metrics,
        "exporters": [{"type": "prometheus", "endpoint": "/metrics"}],
    }


def full_config(ctx: Context, tag: str = "m") -> tuple[dict[str, Any], list[Part]]:
    """The package's "everything on" configuration, split into a base and optional parts."""
    base = base_config(system_metrics=True)
    parts = [
        Part("json exporter", "exporters", {"type": "json", "endpoint": "/metrics.json"}),
        Part(
            "file exporter",
            "exporters",
            {
                "type": "file",
                "file_path": str(ctx.tmpdir / f"{tag}.prom"),
                "format": "prometheus",
                "interval": ctx.periodic_interval,
            },
        ),
        Part(
            "otlp exporter",
            "exporters",
            {"type": "otlp", "endpoint": ctx.otlp_endpoint, "interval": ctx.periodic_interval},
        ),
        Part(
            "alerts",
            "alerts",
            [
                {
                    "metric": "http_request_duration_seconds",
                    "operator": ">",
                    "value": 1,
                    "severity": "warning",
                },
                {"metric": "http_errors_total", "operator": ">", "value": 100, "severity": "error"},
            ],
        ),
    ]
    if ctx.periodic_interval > 30:
        base["alert_evaluation_interval"] = ctx.periodic_interval
    if ctx.shared_process:
        # With set_global (the default) the package makes its MeterProvider the process-wide
        # OpenTelemetry one, which switches on FastAPI's built-in telemetry in every FastAPI app of
        # the process, the bare one included. One process holds every variant here, so the
        # in-process section turns it off; the throughput servers (one process each) keep it.
        parts.append(Part("set_global: false (shared process)", "set_global", False))
    return base, parts


def package_evidence(ctx: Context, tag: str = "m") -> str:
    """What the package's periodic exporters left behind: OTLP payloads and the metrics file."""
    posts = sum(ctx.sink.posts.values()) if ctx.sink is not None else 0
    path = ctx.tmpdir / f"{tag}.prom"
    size = path.stat().st_size if path.exists() else 0
    return f"OTLP sink received {posts} payload(s) so far (all instances); {path.name} holds {size} bytes"


def build_package(
    ctx: Context, make_app: Callable[[], Any] | None = None, tag: str = "fluxstack"
) -> Built:
    """This package, full configuration, wrapping the Starlette app (or ``make_app()``)."""
    base, parts = full_config(ctx, tag)
    monitoring, notes, config = configure_with_fallback(base, parts)
    try:
        app = monitoring.instrument((make_app or starlette_app)())
    except BaseException:
        monitoring.shutdown()
        raise
    kinds = ", ".join(e["type"] for e in config.get("exporters", []))
    scope = "off" if config.get("set_global") is False else "default (on)"
    notes.insert(
        0, f"exporters: {kinds}; alerts: {len(config.get('alerts', []))}; set_global: {scope}"
    )
    return Built(app, monitoring.shutdown, notes, monitoring, _pending_folds(monitoring))


def build_package_default(ctx: Context) -> Built:
    """This package as ``configure_monitoring()`` builds it with no configuration at all.

    The default: the six HTTP metrics with counted body bytes, system metrics (with the loop-lag
    probe), the Prometheus endpoint at ``/metrics`` and the four threshold rules; no periodic
    exporter, no other alert rule.
    """
    pkg = import_package()
    # As in full_config: one process holding every variant must not claim the global provider.
    monitoring = pkg.configure_monitoring({"set_global": False} if ctx.shared_process else None)
    try:
        app = monitoring.instrument(starlette_app())
    except BaseException:
        monitoring.shutdown()
        raise
    scope = "off (shared process)" if ctx.shared_process else "default (on)"
    notes = [f"default configuration; set_global: {scope}"]
    return Built(app, monitoring.shutdown, notes, monitoring, _pending_folds(monitoring))


def build_wide(ctx: Context) -> Built:
    return Built(Widened(wide_app()))


def build_package_wide(ctx: Context) -> Built:
    """The default configuration on the wide app: 64 route templates, 64 series and more."""
    pkg = import_package()
    monitoring = pkg.configure_monitoring({"set_global": False} if ctx.shared_process else None)
    try:
        app = Widened(monitoring.instrument(wide_app()))
    except BaseException:
        monitoring.shutdown()
        raise
    notes = [f"default configuration on {4 * WIDE} routes, requested in turn"]
    return Built(app, monitoring.shutdown, notes, monitoring, _pending_folds(monitoring))


def build_handwritten_wide(ctx: Context) -> Built:
    """The hand-written reference on the wide app."""
    _require("prometheus_client", "prometheus-client")
    from prometheus_client import CollectorRegistry

    from _handwritten import PrometheusReferenceMiddleware

    registry = CollectorRegistry()
    app = Widened(PrometheusReferenceMiddleware(wide_app(), registry=registry))
    return Built(app, handle=registry)


def _pending_folds(monitoring: Any) -> Callable[[], None] | None:
    """The package's recorder drain: a timed batch takes in the records it queued, all of them.

    The middleware drains on the request thread every ``DRAIN_AT`` records; what a batch leaves
    below that would be drained by the next collection, on a background thread in production,
    on the thread clock of no variant here. Draining at the end of each batch charges the batch.
    It is ``drain_ready``, as the middleware's: the records of a series with few of them stay
    held (``fold.HOLD_ROWS``) and are folded by a later batch of the same variant, as in
    production by a later request; a full fold per batch would charge every 10 ms what a server
    pays once per scrape.
    """
    recorder = monitoring._wiring().recorder
    return None if recorder is None else recorder.drain_ready


def build_package_fastapi(ctx: Context) -> Built:
    """This package, full configuration, wrapping the FastAPI app."""
    _require("fastapi", "fastapi")
    return build_package(ctx, fastapi_app, "fluxstack-fastapi")


# -- the peers ----------------------------------------------------------------------------------


def build_noop(ctx: Context) -> Built:
    return Built(noop_app)


def build_starlette(ctx: Context) -> Built:
    return Built(starlette_app())


class PassThrough:
    """The floor of any metrics middleware: a class middleware whose send wrapper notes the status.

    No timing, no counting, no recording. What it costs is what wrapping an app and its ``send``
    costs before a middleware measures anything; the package's row minus this one is what the
    measuring and recording add.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        status = None  # noted and never read: the least any middleware that labels by status does

        def noted(message: Any) -> Any:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            return send(message)

        await self.app(scope, receive, noted)


def build_passthrough(ctx: Context) -> Built:
    return Built(PassThrough(starlette_app()))


def build_fastapi(ctx: Context) -> Built:
    _require("fastapi", "fastapi")
    return Built(fastapi_app())


def build_handwritten(ctx: Context) -> Built:
    _require("prometheus_client", "prometheus-client")
    from prometheus_client import CollectorRegistry

    from _handwritten import PrometheusReferenceMiddleware

    registry = CollectorRegistry()
    app = PrometheusReferenceMiddleware(starlette_app(), registry=registry)
    return Built(app, handle=registry)


def build_otel(ctx: Context) -> Built:
    _require("opentelemetry.instrumentation.asgi", "opentelemetry-instrumentation-asgi")
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class DiscardSpans(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(DiscardSpans()))
    app = OpenTelemetryMiddleware(
        starlette_app(), tracer_provider=tracer_provider, meter_provider=meter_provider
    )

    def close() -> None:
        tracer_provider.shutdown()
        meter_provider.shutdown()

    notes = ["SDK MeterProvider + InMemoryMetricReader; TracerProvider + BatchSpanProcessor"]
    return Built(app, close, notes, reader)


def build_starlette_exporter(ctx: Context) -> Built:
    _require("starlette_exporter", "starlette-exporter")
    from starlette_exporter import PrometheusMiddleware

    app = starlette_app()
    app.add_middleware(PrometheusMiddleware, app_name="bench", group_paths=True)
    # starlette-exporter 0.24 has no registry option: its metrics live in the global REGISTRY.
    return Built(app, notes=["global prometheus_client REGISTRY (no private-registry option)"])


def build_instrumentator(ctx: Context) -> Built:
    _require("prometheus_fastapi_instrumentator", "prometheus-fastapi-instrumentator")
    _require("fastapi", "fastapi")
    from prometheus_client import CollectorRegistry
    from prometheus_fastapi_instrumentator import Instrumentator

    registry = CollectorRegistry()
    app = fastapi_app()
    Instrumentator(registry=registry).instrument(app)
    return Built(app, handle=registry)


NOOP = Variant("noop", "driver floor (no-op ASGI app)", None, build_noop)
VARIANTS: tuple[Variant, ...] = (
    Variant("starlette", "Starlette (bare)", None, build_starlette, "starlette"),
    Variant("fastapi", "FastAPI (bare)", None, build_fastapi, "fastapi"),
    Variant("fluxstack", "fluxstack-otel, full config", "starlette", build_package),
    Variant(
        "fluxstack-default", "fluxstack-otel, default config", "starlette", build_package_default
    ),
    Variant("passthrough", "pass-through middleware (floor)", "starlette", build_passthrough),
    Variant("handwritten", "hand-written prometheus_client", "starlette", build_handwritten),
    Variant("otel", "OpenTelemetry ASGI middleware", "starlette", build_otel),
    Variant("starlette-exporter", "starlette-exporter", "starlette", build_starlette_exporter),
    Variant("instrumentator", "prometheus-fastapi-instrumentator", "fastapi", build_instrumentator),
    Variant("fluxstack-fastapi", "fluxstack-otel on FastAPI", "fastapi", build_package_fastapi),
    # The cost's flatness in routes and series: the package and the reference on 64 routes.
    Variant(
        "starlette-wide",
        "Starlette, 64 routes (bare)",
        None,
        build_wide,
        "starlette",
        sections=("inproc",),
    ),
    Variant(
        "fluxstack-wide",
        "fluxstack-otel, default config, 64 routes",
        "starlette-wide",
        build_package_wide,
        sections=("inproc",),
    ),
    Variant(
        "handwritten-wide",
        "hand-written prometheus_client, 64 routes",
        "starlette-wide",
        build_handwritten_wide,
        "prometheus-client",
        sections=("inproc",),
    ),
)
BY_NAME = {v.name: v for v in (NOOP, *VARIANTS)}
