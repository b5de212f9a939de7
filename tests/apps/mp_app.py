"""A Starlette app for the multi-worker tests, run by gunicorn: ``mp_app:app``.

The shared directory and the collect interval come from the environment (``MP_DIR``,
``MP_INTERVAL``; ``MP_DASHBOARD=1`` turns the dashboard on), which the test sets for the gunicorn master and so for every worker.
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
        "service_name": "mp-test",
        "collect_interval": float(os.environ.get("MP_INTERVAL", "0.5")),
        "multiprocess": {"enabled": True, "directory": os.environ["MP_DIR"]},
        "exporters": [{"type": "prometheus"}, {"type": "json", "endpoint": "/metrics.json"}],
        "dashboard": {"enabled": os.environ.get("MP_DASHBOARD") == "1"},
    }
)


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    monitoring.shutdown(2.0)  # the last publish: a recycled worker's counts all stay


app = monitoring.instrument(Starlette(routes=[Route("/hello", hello)], lifespan=lifespan))
