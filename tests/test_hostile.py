"""Hostile traffic: random paths, methods and Host headers, huge bodies, dropped clients.

The bulk (100,000 requests) goes through the middleware in process, where a request costs tens of
microseconds; a representative slice of every kind goes through real uvicorn over loopback sockets.
What must hold: the series stay bounded whatever the paths, every request is counted exactly, no
label carries a query string, header, cookie or user id, memory does not grow with the number of
distinct paths, and nothing escapes the middleware that the bare app would not have raised.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import re
import string
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from fluxstack_otel import Monitoring, configure_monitoring
from fluxstack_otel._internal.http.routes import KNOWN_METHODS
from loadgen_hostile import disconnect_mid_body, disconnect_mid_stream, raw_requests
from servers import serve_asgi, wait_until
from support.asgi import drive

pytestmark = pytest.mark.slow  # real servers or subprocesses: left out of make unit-fast

BULK = 100_000
SLICE = 3_000
MARKER = "zq7secret"  # in every query string, credential, cookie and user id sent
ROUTES = {"/", "/items/{item_id}", "/upload", "/ignore", "/stream", "<unmatched>"}
TEN_MB = 10 * 1024 * 1024


async def home(request: Request) -> Response:
    return PlainTextResponse("home")


async def item(request: Request) -> Response:
    return PlainTextResponse(request.path_params["item_id"][:10])


async def upload(request: Request) -> Response:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return PlainTextResponse(str(size))


async def ignore(request: Request) -> Response:
    return PlainTextResponse("ignored")


async def stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(2000):  # bounded: ends by itself within ~10 s if nobody disconnects
            yield b"x" * 1024
            await asyncio.sleep(0.005)

    return StreamingResponse(chunks())


def make_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/", home),
            Route("/items/{item_id}", item),
            Route("/upload", upload, methods=["POST"]),
            Route("/ignore", ignore, methods=["POST"]),
            Route("/stream", stream),
        ]
    )


@pytest.fixture
def monitoring() -> Iterator[Monitoring]:
    m = configure_monitoring({"system_metrics": False})
    yield m
    m.shutdown()


def series(m: Monitoring) -> list[tuple[str, dict[str, str], float]]:
    text = m.render_prometheus().decode()
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def requests_by_method(m: Monitoring) -> Counter[str]:
    out: Counter[str] = Counter()
    for name, labels, value in series(m):
        if name == "http_requests_total":
            out[labels["method"]] += int(value)
    return out


# --- generated hostile requests ---------------------------------------------------------------

_ODD_PATHS = [
    "/%", "/%zz", "/%C3%28", "/a%00b", "/%2e%2e/%2e%2e/etc/passwd", "//", "/..;/", "/\u202e",
    "/items/", "/items/%ff", "/ünïcode/😀", "/" + "a" * 4000, "/items/1/extra", "/%%%%",
]  # fmt: skip
_METHODS = [*sorted(KNOWN_METHODS), "get", "FOO", "M-SEARCH", "PROPFIND", "BREW", "X" * 50]


def hostile(rng: random.Random, i: int) -> tuple[str, str, str, str]:
    """(method, path, host, query) for request ``i``: mostly unique paths and hosts."""
    method = (
        rng.choice(_METHODS)
        if rng.random() < 0.7
        else "".join(rng.choices(string.ascii_uppercase + "-_", k=rng.randint(1, 12)))
    )
    roll = rng.random()
    if roll < 0.3:
        path = f"/items/{i}-{rng.getrandbits(32):x}"
    elif roll < 0.4:
        path = rng.choice(_ODD_PATHS)
    elif roll < 0.45:
        path = "/"
    else:
        path = "/" + "".join(
            rng.choices(string.ascii_letters + string.digits + "%-._~/", k=rng.randint(1, 40))
        )
    host = f"h{rng.getrandbits(40):x}.example:{rng.randint(1, 65535)}"
    query = f"token={MARKER}&user={MARKER}{i}"
    return method, path, host, query


def scope_of(method: str, path: str, host: str, query: str, i: int) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [
            (b"host", host.encode()),
            (b"authorization", f"Bearer {MARKER}".encode()),
            (b"cookie", f"session={MARKER}; user_id={MARKER}{i}".encode()),
            (b"x-user-id", f"{MARKER}{i}".encode()),
            (b"user-agent", f"hostile/{MARKER}".encode()),
        ],
        "client": ("127.0.0.1", 40000 + i % 20000),
        "server": ("127.0.0.1", 8000),
    }


async def _drive(app: Any, scopes: Iterator[dict[str, Any]]) -> int:
    done = 0
    for s in scopes:
        await drive(app, s)
        done += 1
    return done


def assert_labels_are_clean(m: Monitoring) -> None:
    for name, labels, _ in series(m):
        if not name.startswith("http_"):
            continue
        text = repr(labels)
        assert MARKER not in text, (name, labels)
        assert labels.get("method", "GET") in KNOWN_METHODS | {"_OTHER"}, labels
        assert labels.get("route", "/") in ROUTES, labels
        assert set(labels) <= {"method", "route", "status_code", "error_type", "le"}, labels


def test_100000_hostile_requests_keep_series_bounded_and_counts_exact(
    monitoring: Monitoring,
) -> None:
    """100,000 random methods/paths/Hosts in process: exact per-method counts, <= 60 series,
    and no memory kept per request."""
    rng = random.Random(1729)
    inputs = [hostile(rng, i) for i in range(BULK)]
    expected = Counter(m if m in KNOWN_METHODS else "_OTHER" for m, *_ in inputs)
    app = monitoring.instrument(make_app())
    warm, traced = 10_000, 5_000
    process = psutil.Process()

    def run(start: int, stop: int) -> None:
        asyncio.run(_drive(app, (scope_of(*inputs[i], i) for i in range(start, stop))))
        monitoring.collect()
        gc.collect()

    run(0, warm)
    rss_before = process.memory_info().rss
    run(warm, BULK - traced)
    rss_growth = process.memory_info().rss - rss_before
    # tracemalloc costs ~10x per request, so it watches only the last 5,000 (all new paths).
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        run(BULK - traced, BULK)
        traced_growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    assert requests_by_method(monitoring) == expected
    request_series = [s for s in series(monitoring) if s[0] == "http_requests_total"]
    assert len(request_series) <= len(KNOWN_METHODS | {"_OTHER"}) * len(ROUTES)
    assert_labels_are_clean(monitoring)
    print(
        f"hostile bulk: {len(request_series)} request series; RSS growth over "
        f"{BULK - warm - traced} requests {rss_growth / 2**20:.1f} MiB; traced growth over "
        f"{traced} requests {traced_growth / 1024:.0f} KiB"
    )
    # Each request has a new path and Host: keeping as little as 30 bytes of each would show.
    assert traced_growth < 150 * 1024, f"{traced_growth} bytes retained by {traced} requests"
    assert rss_growth < 16 * 2**20, f"RSS grew {rss_growth} bytes"


def test_labels_never_carry_query_strings_headers_cookies_or_user_ids(
    monitoring: Monitoring,
) -> None:
    """Route templates and normalised methods only, whatever the request carries."""
    app = monitoring.instrument(make_app())
    rng = random.Random(7)
    scopes = [scope_of(*hostile(rng, i), i) for i in range(500)]
    scopes.append(scope_of("GET", f"/items/{MARKER}", "h", f"user_id={MARKER}", 0))
    asyncio.run(_drive(app, iter(scopes)))
    exposition = monitoring.render_prometheus().decode()
    assert MARKER not in exposition
    assert 'route="/items/{item_id}"' in exposition
    assert_labels_are_clean(monitoring)


# --- through real uvicorn -----------------------------------------------------------------------


def _raw(method: str, path: str, host: str, query: str, i: int) -> bytes:
    target = path.encode("utf-8").replace(b" ", b"%20") or b"/"
    return (
        method.encode() + b" " + target + b"?" + query.encode() + b" HTTP/1.1\r\n"
        b"Host: " + host.encode() + b"\r\n"
        b"Cookie: session=" + MARKER.encode() + b"\r\n"
        b"X-User-Id: " + f"{MARKER}{i}".encode() + b"\r\n"
        b"Content-Length: 0\r\n\r\n"
    )


_H11_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_H11_TARGET = re.compile(r"[\x21-\x7e]+")


@pytest.mark.slow
def test_a_slice_through_real_uvicorn_is_counted_exactly(monitoring: Monitoring) -> None:
    """3,000 hostile requests over 20 sockets: every answered request is counted, labels clean."""
    rng = random.Random(99)
    inputs = []
    while len(inputs) < SLICE:
        method, path, host, query = hostile(rng, len(inputs))
        # Only what reaches the app: a request line uvicorn rejects never gets to any middleware.
        # CONNECT opens a tunnel rather than an exchange, so a raw client cannot reuse the socket.
        if _H11_TOKEN.fullmatch(method) and _H11_TARGET.fullmatch(path) and method != "CONNECT":
            inputs.append((method, path, host, query))
    with serve_asgi(monitoring.instrument(make_app())) as base:
        port = int(base.rsplit(":", 1)[1])
        statuses = raw_requests(port, [_raw(*x, i) for i, x in enumerate(inputs)])
    assert len(statuses) == SLICE
    assert all(s < 500 for s in statuses), Counter(statuses)
    expected = Counter(m if m in KNOWN_METHODS else "_OTHER" for m, *_ in inputs)
    assert requests_by_method(monitoring) == expected
    assert_labels_are_clean(monitoring)


def _value(m: Monitoring, name: str, **labels: str) -> float:
    return sum(
        v
        for n, lab, v in series(m)
        if n == name and all(lab.get(k) == x for k, x in labels.items())
    )


@pytest.mark.slow
def test_ten_megabyte_bodies_are_measured_and_need_not_be_read(monitoring: Monitoring) -> None:
    """10 MB uploads, read or ignored by the app: counted, sized by what the app read, served."""
    head = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(TEN_MB).encode() + b"\r\n\r\n"
    body = b"b" * TEN_MB
    with serve_asgi(monitoring.instrument(make_app())) as base:
        port = int(base.rsplit(":", 1)[1])
        statuses = raw_requests(port, [head % b"/upload" + body] * 2, connections=2)
        ignored = raw_requests(port, [head % b"/ignore" + body], connections=1)
    assert statuses == [200, 200]
    assert ignored == [200]
    assert _value(monitoring, "http_requests_total", route="/upload") == 2
    assert _value(monitoring, "http_request_size_bytes_sum", route="/upload") == 2 * TEN_MB
    assert _value(monitoring, "http_requests_total", route="/ignore") == 1


def _vanishing_clients(port: int) -> None:
    for _ in range(5):
        disconnect_mid_body(port, "/upload", announced=1_000_000, sent=100_000)
    for _ in range(5):
        first = disconnect_mid_stream(port, "/stream")
        assert first.startswith(b"HTTP/1.1 200")


class _Escaped(logging.Handler):
    """The exceptions uvicorn logs as escaping the ASGI app (its logger does not propagate)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[0] is not None:
            self.seen[record.exc_info[0].__name__] += 1


@pytest.mark.slow
def test_clients_that_vanish_mid_body_or_mid_stream_are_counted(monitoring: Monitoring) -> None:
    """Dropped uploads and abandoned streams: each counted once, the server keeps serving, and
    uvicorn sees the same exceptions escape as from the bare app."""
    logger = logging.getLogger("uvicorn.error")
    handler = _Escaped()
    logger.addHandler(handler)
    try:
        # log_config=None: uvicorn must not replace the handlers of its loggers, ours included.
        with serve_asgi(make_app(), log_config=None) as base:
            _vanishing_clients(int(base.rsplit(":", 1)[1]))
            # Each dropped upload ends in one logged exception: wait until all five are in.
            wait_until(lambda: handler.seen.total() >= 5, timeout=20, message="the bare errors")
        bare, handler.seen = handler.seen, Counter()
        with serve_asgi(monitoring.instrument(make_app()), log_config=None) as base:
            port = int(base.rsplit(":", 1)[1])
            _vanishing_clients(port)
            wait_until(
                lambda: (
                    _value(monitoring, "http_requests_total", route="/upload") == 5
                    and _value(monitoring, "http_requests_total", route="/stream") == 5
                ),
                timeout=20,
                message="every dropped request to be recorded",
            )
            assert raw_requests(port, [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"], connections=1) == [
                200
            ]
        wrapped = handler.seen
    finally:
        logger.removeHandler(handler)
    assert wrapped == bare, (wrapped, bare)
    assert _value(monitoring, "http_requests_total", route="/") == 1
    # What an abandoned upload read before the client went is counted, never more than was sent.
    assert 0 < _value(monitoring, "http_request_size_bytes_sum", route="/upload") <= 5 * 100_000
