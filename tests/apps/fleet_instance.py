"""One instance of a fleet (a process standing for a host), for the fleet tests.

Usage: ``python fleet_instance.py OTLP_URL REQUESTS_A REQUESTS_B``. It serves ``/metrics`` on a
port of its own, pushes OTLP to ``OTLP_URL``, sends the requests through its app, prints one JSON
line (``port``, ``instance``), then runs until its standard input closes and shuts down, which
pushes a last time.
"""

from __future__ import annotations

import asyncio
import json
import sys

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from fluxstack_otel import configure_monitoring


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def send(app: object, counts: dict[str, int]) -> None:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://fleet") as client:
        for path, count in counts.items():
            for _ in range(count):
                response = await client.get(path)
                response.raise_for_status()


def main() -> None:
    otlp, a, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    monitoring = configure_monitoring(
        {
            "service_name": "fleet-app",
            "collect_interval": 0.5,
            "system_metrics": False,
            "exporters": [
                {"type": "prometheus", "port": 0},
                {"type": "otlp", "endpoint": otlp, "interval": 0.5},
            ],
        }
    )
    app = monitoring.instrument(Starlette(routes=[Route("/a", ok), Route("/b", ok)]))
    asyncio.run(send(app, {"/a": a, "/b": b}))
    instance = monitoring.collect().resource_metrics[0].resource.attributes["service.instance.id"]
    port = monitoring.prometheus_servers[0].port
    print(json.dumps({"port": port, "instance": instance}), flush=True)
    sys.stdin.read()  # until the test closes our stdin
    monitoring.shutdown(5.0)


if __name__ == "__main__":
    main()
