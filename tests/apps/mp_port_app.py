"""A Starlette app for the fixed-port multi-worker test, run by gunicorn: ``mp_port_app:app``.

Every worker configures a Prometheus exporter on the same port (``MP_PROM_PORT``) with host-wide
metrics in ``MP_DIR``: one worker serves the port, the others stand by.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from fluxstack_otel import configure_monitoring

monitoring = configure_monitoring(
    {
        "service_name": "mp-port-test",
        "collect_interval": 0.3,
        "system_metrics": False,
        "multiprocess": {"enabled": True, "directory": os.environ["MP_DIR"]},
        "exporters": [
            {"type": "prometheus", "host": "127.0.0.1", "port": int(os.environ["MP_PROM_PORT"])}
        ],
    }
)


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    monitoring.shutdown(2.0)


app = monitoring.instrument(Starlette(routes=[Route("/hello", hello)], lifespan=lifespan))
