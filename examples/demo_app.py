"""A small Starlette app monitored by fluxstack-otel, with light traffic of its own.

    make demo                                  # or: python examples/demo_app.py
    python examples/demo_app.py --port 9000 --no-traffic

Then open the dashboard at http://127.0.0.1:8000/metrics/dashboard: the background traffic (a
few requests every half second, through the monitored app) makes it move, and the occasional
failing request raises the demo's alert. http://127.0.0.1:8000/metrics is the same data for
Prometheus.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from fluxstack_otel import Monitoring, configure_monitoring

ASGIApp = Callable[..., Awaitable[None]]

TRAFFIC_PERIOD = 0.5  # seconds between two rounds of generated requests

# The demo's monitoring: the defaults (Prometheus at /metrics, the health thresholds) plus the
# built-in dashboard, a faster refresh than the 5 s default, and one alert the traffic sets off.
DEMO_CONFIG = {
    "collect_interval": 2,
    "alert_evaluation_interval": 5,
    "dashboard": {"enabled": True, "path": "/metrics/dashboard"},
    "alerts": [
        {
            "name": "DemoErrors",
            "metric": "http_errors_total",
            "aggregation": "rate",
            "operator": ">",
            "value": 0,
            "window": 60,
            "severity": "warning",
            "message": "the demo's /error route failed in the last minute",
        }
    ],
}


async def homepage(request: Request) -> Response:
    return PlainTextResponse(
        "Hello from the fluxstack-otel demo. Dashboard: /metrics/dashboard, metrics: /metrics\n"
    )


async def item(request: Request) -> Response:
    item_id: int = request.path_params["item_id"]
    return JSONResponse(
        {"item_id": item_id, "name": f"item {item_id}", "in_stock": item_id % 3 != 0}
    )


async def echo(request: Request) -> Response:
    body = await request.body()
    media_type = request.headers.get("content-type", "application/octet-stream")
    return Response(body, media_type=media_type)


async def slow(request: Request) -> Response:
    delay = random.uniform(0.05, 0.3)
    await asyncio.sleep(delay)
    return PlainTextResponse(f"done in {delay:.3f} s\n")


async def error(request: Request) -> Response:
    raise RuntimeError("the demo's /error route always fails")


ROUTES = [
    Route("/", homepage),
    Route("/items/{item_id:int}", item),
    Route("/echo", echo, methods=["POST"]),
    Route("/slow", slow),
    Route("/error", error),
]


async def generate_traffic(app: ASGIApp, period: float = TRAFFIC_PERIOD) -> None:
    """Send a few requests through the monitored app every ``period`` seconds, until cancelled."""
    # In-process ASGI transport: no port to wait for, and every request still passes through the
    # monitoring middleware. Exceptions of /error come back as 500 responses instead of raising.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        while True:
            await client.get("/")
            await client.get(f"/items/{random.randint(1, 50)}")
            await client.post("/echo", json={"message": "hello", "size": random.randint(1, 500)})
            if random.random() < 0.5:
                await client.get("/slow")
            if random.random() < 0.1:
                await client.get("/error")
            if random.random() < 0.1:
                await client.get("/items/not-a-number")  # no route: a 404
            await asyncio.sleep(period)


def build_app(monitoring: Monitoring, *, traffic: bool) -> ASGIApp:
    """The demo app wrapped by ``monitoring``; its lifespan runs the traffic generator."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(generate_traffic(monitored)) if traffic else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    monitored = monitoring.instrument(Starlette(routes=ROUTES, lifespan=lifespan))
    return monitored


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "8000")),
        help="port to bind (default $PORT or 8000)",
    )
    parser.add_argument(
        "--no-traffic",
        dest="traffic",
        action="store_false",
        help="do not generate background requests",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    monitoring = configure_monitoring(DEMO_CONFIG)
    try:
        app = build_app(monitoring, traffic=args.traffic)
        base = f"http://{args.host}:{args.port}"
        print("fluxstack-otel demo")
        print(f"  app:       {base}/")
        print(f"  dashboard: {base}{monitoring.config.dashboard.path}")
        print(f"  metrics:   {base}/metrics")
        print("  routes:    GET /  GET /items/{item_id}  POST /echo  GET /slow  GET /error")
        state = (
            f"on, every {TRAFFIC_PERIOD:g} s (--no-traffic to turn off)" if args.traffic else "off"
        )
        print(f"  background traffic: {state}")
        print("Press Ctrl+C to stop.", flush=True)
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    finally:
        monitoring.shutdown()


if __name__ == "__main__":
    main()
