"""Fuzz: the middleware preserves the app's behaviour byte for byte, whatever the exchange.

Hypothesis generates an ASGI scope (type, method, path with odd characters, headers, query
string), what the server delivers (body chunks, an early disconnect), a server whose ``send``
fails at some point (a client gone), and a scripted app (how much it reads, what it answers, where
it raises). The same exchange is played against the bare app and the wrapped app; the messages
the app sends, the messages it receives, and the exception that comes out must be identical, and
the exception must be the very object the app raised.

Configuration fuzzing (only ``ConfigError`` escapes ``load_config``) lives in
``tests/test_config.py``.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluxstack_otel import Monitoring, configure_monitoring

EXAMPLES = 300


class AppError(Exception):
    """Raised by the scripted app."""


class ClientGone(OSError):
    """Raised by the fake server's ``send``, as uvicorn's does when the socket is closed."""


@dataclass(frozen=True)
class Script:
    """What the app does: read, answer, maybe raise."""

    reads: int
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    chunks: tuple[bytes, ...]
    finish: bool
    raise_at: int | None
    error: type[Exception]


@dataclass(frozen=True)
class Exchange:
    scope: dict[str, Any]
    delivered: tuple[dict[str, Any], ...]
    send_fails_at: int | None
    script: Script


_token = st.text(alphabet="!#$%&'*+.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)  # fmt: skip
_methods = st.one_of(
    st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"]), _token
)
_paths = st.one_of(
    st.text(min_size=0, max_size=40).map(lambda t: "/" + t),
    st.sampled_from(["/", "/%", "/%zz", "/%C3%28", "/a%00b", "/\x00", "/\udcff", "//", "/metric"]),
)
_header = st.tuples(st.binary(min_size=1, max_size=16), st.binary(max_size=32))
_scripts = st.builds(
    Script,
    reads=st.integers(0, 4),
    status=st.sampled_from([200, 201, 204, 301, 404, 418, 500, 503]),
    headers=st.lists(_header, max_size=3).map(tuple),
    chunks=st.lists(st.binary(max_size=64), max_size=4).map(tuple),
    finish=st.booleans(),
    raise_at=st.one_of(st.none(), st.integers(0, 5)),
    error=st.sampled_from([AppError, ValueError, KeyError, RuntimeError]),
)


@st.composite
def exchanges(draw: st.DrawFn) -> Exchange:
    kind = draw(st.sampled_from(["http"] * 8 + ["websocket", "lifespan"]))
    scope: dict[str, Any] = {
        "type": kind,
        "asgi": {"version": "3.0"},
        "path": draw(_paths),
        "root_path": draw(st.sampled_from(["", "/prefix"])),
        "query_string": draw(st.binary(max_size=32)),
        "headers": draw(st.lists(_header, max_size=4)),
    }
    if kind == "http":
        scope["method"] = draw(_methods)
    if kind == "lifespan":
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    chunks = draw(st.lists(st.binary(max_size=64), max_size=4))
    delivered: list[dict[str, Any]] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    if draw(st.booleans()) and delivered:  # the client goes mid-body
        delivered = delivered[: draw(st.integers(0, len(delivered) - 1))]
    delivered.append({"type": "http.disconnect"})
    send_fails_at = draw(st.one_of(st.none(), st.integers(0, 5)))
    return Exchange(scope, tuple(delivered), send_fails_at, draw(_scripts))


@dataclass
class Outcome:
    sent: list[dict[str, Any]]
    received: list[dict[str, Any]]
    error: tuple[type[BaseException], tuple[Any, ...]] | None
    same_object: bool


def scripted_app(script: Script, raised: list[BaseException]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen = []
        for _ in range(script.reads):
            message = await receive()
            seen.append((message.get("type"), message.get("body"), message.get("more_body")))
            if message.get("type") == "http.disconnect":
                break
        headers = [*script.headers, (b"x-seen", repr(seen).encode())]  # what the app was given
        messages: list[dict[str, Any]] = [
            {"type": "http.response.start", "status": script.status, "headers": headers}
        ]
        messages += [
            {"type": "http.response.body", "body": c, "more_body": True} for c in script.chunks
        ]
        if script.finish:
            messages.append({"type": "http.response.body", "body": b"", "more_body": False})
        for index, message in enumerate(messages):
            if script.raise_at == index:
                error = script.error("raised by the app", index)
                raised.append(error)
                raise error
            await send(message)
        if script.raise_at == len(messages):
            error = script.error("raised by the app at the end")
            raised.append(error)
            raise error

    return app


def play(
    loop: asyncio.AbstractEventLoop, exchange: Exchange, monitoring: Monitoring | None
) -> Outcome:
    pending = list(exchange.delivered)
    sent: list[dict[str, Any]] = []
    received: list[dict[str, Any]] = []
    raised: list[BaseException] = []

    async def receive() -> dict[str, Any]:
        message = dict(pending.pop(0)) if pending else {"type": "http.disconnect"}
        received.append(copy.deepcopy(message))
        return message

    async def send(message: dict[str, Any]) -> None:
        if exchange.send_fails_at == len(sent):
            raise ClientGone("the client went away")
        sent.append(copy.deepcopy(message))

    app = scripted_app(exchange.script, raised)
    if monitoring is not None:
        app = monitoring.instrument(app)
    error = None
    same = True
    try:
        loop.run_until_complete(app(copy.deepcopy(exchange.scope), receive, send))
    except Exception as exc:
        error = (type(exc), exc.args)
        same = not raised or exc is raised[0] or isinstance(exc, ClientGone)
    return Outcome(sent, received, error, same)


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def monitoring() -> Iterator[Monitoring]:
    m = configure_monitoring({"system_metrics": False})
    yield m
    m.shutdown()


@pytest.mark.slow
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(exchange=exchanges())
def test_the_wrapped_app_behaves_exactly_like_the_bare_app(
    loop: asyncio.AbstractEventLoop, monitoring: Monitoring, exchange: Exchange
) -> None:
    """Identical sends, receives and exceptions; the app's exception object itself propagates."""
    if exchange.scope.get("path") == "/metrics":
        return  # served by the middleware itself, by design
    bare = play(loop, exchange, None)
    wrapped = play(loop, exchange, monitoring)
    assert wrapped.sent == bare.sent
    assert wrapped.received == bare.received
    assert wrapped.error == bare.error
    assert wrapped.same_object


def test_odd_exchanges_are_each_counted_once(loop: asyncio.AbstractEventLoop) -> None:
    """An unknown method, a malformed path, an app that raises: one request counted for each."""
    m = configure_monitoring({"system_metrics": False})
    answers = Script(1, 200, (), (b"x",), True, None, AppError)
    raises = Script(0, 200, (), (), False, 0, AppError)
    http = {"type": "http", "method": "BREW", "path": "/%zz", "root_path": "",
            "query_string": b"a=1", "headers": []}  # fmt: skip
    try:
        for script in (answers, raises, answers):
            play(loop, Exchange(http, ({"type": "http.disconnect"},), None, script), m)
        text = m.render_prometheus().decode()
    finally:
        m.shutdown()
    assert 'http_requests_total{method="_OTHER",route="<unmatched>"} 3' in text
    assert 'error_type="AppError"' in text
