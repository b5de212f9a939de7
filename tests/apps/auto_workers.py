"""An unmodified Starlette app for the worker tests: it only uses the OpenTelemetry API.

At import it counts 5 ``boot_events`` through the global meter, so with gunicorn's
``preload_app`` the master counts them before it forks. Routes: ``/pid`` (the worker's pid),
``/count`` (one ``boot_events``), ``/grow`` (holds 64 MiB more in this worker).
"""

from __future__ import annotations

import os

from opentelemetry import metrics
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

BOOT = metrics.get_meter("auto_workers").create_counter("boot_events")
BOOT.add(5)
_held: list[bytes] = []


async def pid(request: Request) -> Response:
    return PlainTextResponse(str(os.getpid()))


async def count(request: Request) -> Response:
    BOOT.add(1)
    return PlainTextResponse("counted")


async def grow(request: Request) -> Response:
    _held.append(b"x" * (64 << 20))  # written, so resident
    return PlainTextResponse("grown")


app = Starlette(routes=[Route("/pid", pid), Route("/count", count), Route("/grow", grow)])
