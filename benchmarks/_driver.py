"""A minimal in-process ASGI driver: scope, receive and send, no sockets, no HTTP client.

Every request gets a fresh scope dict (routers and middlewares write into the scope: ``route``,
``path_params``, ``state``...), copied from a template built once per request kind, so the driver's
own cost stays a dict copy and two small objects. That cost is measured separately (the no-op app)
and reported as the driver floor.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Request:
    """One request kind of a workload."""

    name: str
    method: str
    path: str
    expect_status: int
    body: bytes = b""
    query: bytes = b""
    content_type: bytes = b""

    def scope_template(self) -> dict[str, Any]:
        headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench/1.0"), (b"accept", b"*/*")]
        if self.body:
            headers.append((b"content-length", str(len(self.body)).encode()))
        if self.content_type:
            headers.append((b"content-type", self.content_type))
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 51000),
            "scheme": "http",
            "method": self.method,
            "root_path": "",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": self.query,
            "headers": headers,
        }


class _Exchange:
    """The receive/send pair of one request; keeps the status and counts body bytes."""

    __slots__ = ("body", "chunks", "keep", "sent_bytes", "status")

    def __init__(self, body: bytes, keep: bool = False) -> None:
        self.body: bytes | None = body
        self.status = 0
        self.sent_bytes = 0
        self.keep = keep
        self.chunks: list[bytes] = []

    async def receive(self) -> Message:
        body = self.body
        if body is not None:
            self.body = None
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            chunk = message.get("body", b"")
            self.sent_bytes += len(chunk)
            if self.keep:
                self.chunks.append(chunk)
        elif kind == "http.response.start":
            self.status = message["status"]


class Driver:
    """Drives one ASGI app in process: lifespan, single requests and timed batches.

    Args:
        app: The ASGI application (with its middlewares).
        requests: The workload; a batch cycles through it in order.
    """

    def __init__(self, app: ASGIApp, requests: Sequence[Request]) -> None:
        self.app = app
        self._templates = [(r.scope_template(), r.body) for r in requests]
        self._requests = tuple(requests)
        self._state: dict[str, Any] = {}
        self._lifespan: asyncio.Task[None] | None = None
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()

    # -- lifespan: run the app's startup/shutdown as a server would -------------------------------

    async def startup(self, timeout: float = 30.0) -> bool:
        """Run the lifespan startup; return False if the app does not speak lifespan."""
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        scope["state"] = self._state
        self._lifespan = asyncio.create_task(self._run_lifespan(scope))
        await self._to_app.put({"type": "lifespan.startup"})
        getter = asyncio.ensure_future(self._from_app.get())
        done, _ = await asyncio.wait(
            {getter, self._lifespan}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if getter not in done:
            getter.cancel()
            if self._lifespan in done:
                # The app returned or raised on the lifespan scope: treated as "not supported",
                # as uvicorn's lifespan="auto" does.
                self._lifespan = None
                return False
            raise TimeoutError("lifespan startup did not complete")
        message = getter.result()
        if message["type"] == "lifespan.startup.failed":
            raise RuntimeError(f"lifespan startup failed: {message.get('message', '')!r}")
        return True

    async def _run_lifespan(self, scope: Scope) -> None:
        with contextlib.suppress(Exception):
            await self.app(scope, self._to_app.get, self._from_app.put)

    async def shutdown(self, timeout: float = 30.0) -> None:
        """Run the lifespan shutdown, if startup ran."""
        task, self._lifespan = self._lifespan, None
        if task is None:
            return
        await self._to_app.put({"type": "lifespan.shutdown"})
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout)

    # -- requests --------------------------------------------------------------------------------

    def _scope(self, template: dict[str, Any]) -> dict[str, Any]:
        scope = template.copy()
        scope["headers"] = list(template["headers"])
        scope["state"] = self._state.copy()
        return scope

    async def request(self, index: int, *, keep_body: bool = False) -> tuple[int, bytes]:
        """Send the workload's request ``index`` once; return (status, body if kept)."""
        template, body = self._templates[index]
        exchange = _Exchange(body, keep_body)
        await self.app(self._scope(template), exchange.receive, exchange.send)
        return exchange.status, b"".join(exchange.chunks)

    async def check(self) -> None:
        """Send every request kind once and raise if a status differs from the expected one."""
        for i, req in enumerate(self._requests):
            status, body = await self.request(i, keep_body=True)
            if status != req.expect_status:
                raise RuntimeError(
                    f"{req.method} {req.path} answered {status}, expected {req.expect_status}: "
                    f"{body[:200]!r}"
                )

    async def batch(self, n: int, settle: Callable[[], None] | None = None) -> tuple[int, int]:
        """Send ``n`` requests cycling through the workload; return (wall, CPU) nanoseconds.

        CPU is this thread's own (``time.thread_time_ns``): what the requests cost the thread
        that serves them, without the time other threads held the GIL or the machine's other
        processes held the core. ``settle``, if given, runs inside both timings after the last
        request: work a variant leaves pending for a background thread (a recorder's queue of
        records not yet folded) is done and paid for here instead.
        """
        app = self.app
        templates = self._templates
        k = len(templates)
        state = self._state
        wall = time.perf_counter_ns
        cpu = time.thread_time_ns
        w0 = wall()
        c0 = cpu()
        for i in range(n):
            template, body = templates[i % k]
            scope = template.copy()
            scope["headers"] = list(template["headers"])
            scope["state"] = state.copy()
            exchange = _Exchange(body)
            await app(scope, exchange.receive, exchange.send)
        if settle is not None:
            settle()
        c1 = cpu()
        return wall() - w0, c1 - c0


_NOOP_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"2")],
}
_NOOP_BODY = {"type": "http.response.body", "body": b"ok", "more_body": False}


async def noop_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The cheapest well-behaved ASGI app: the driver's floor is measured against it."""
    if scope["type"] != "http":
        return
    await receive()
    await send(_NOOP_START)
    await send(_NOOP_BODY)
