"""An unmodified Starlette app: nothing here knows about monitoring (auto-instrumentation tests).

Run as ``opentelemetry-instrument uvicorn auto_starlette:app``.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route


async def home(request: Request) -> Response:
    return PlainTextResponse("hello")


async def item(request: Request) -> Response:
    return JSONResponse({"id": request.path_params["item_id"]})


async def upload(request: Request) -> Response:
    return PlainTextResponse(str(len(await request.body())))


async def boom(request: Request) -> Response:
    raise RuntimeError("unhandled")


async def thing(request: Request) -> Response:
    return JSONResponse({"thing": request.path_params["thing_id"]})


sub = Starlette(routes=[Route("/things/{thing_id}", thing)])
app = Starlette(
    routes=[
        Route("/", home),
        Route("/items/{item_id}", item),
        Route("/upload", upload, methods=["POST"]),
        Route("/boom", boom),
        Mount("/sub", app=sub),
    ]
)
