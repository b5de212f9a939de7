"""A small, fast HTTP/1.1 load generator for loopback tests: raw asyncio streams, keep-alive.

httpx costs about a millisecond per request on these machines, which turns a 10,000-request test
into minutes; this client costs tens of microseconds, so the server is what the test measures.
Bounded: every request has a timeout and the whole run has a deadline.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from urllib.parse import urlsplit

__all__ = ["LoadResult", "read_response", "run_load"]


class LoadResult:
    """Status codes seen, per path."""

    def __init__(self) -> None:
        self.statuses: Counter[tuple[str, int]] = Counter()

    def count(self, path: str, status: int) -> int:
        return self.statuses[(path, status)]


async def read_response(reader: asyncio.StreamReader, timeout: float, *, head: bool) -> int:
    """Read one response (status line, headers, and a body unless it answers a HEAD)."""
    status_line = await asyncio.wait_for(reader.readline(), timeout)
    if not status_line:
        raise ConnectionError("the server closed the connection before answering")
    status = int(status_line.split()[1])
    length, chunked = 0, False
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if head:
        return status
    if chunked:
        while True:
            size = int((await asyncio.wait_for(reader.readline(), timeout)).split(b";")[0], 16)
            await asyncio.wait_for(reader.readexactly(size + 2), timeout)
            if size == 0:
                break
    elif length:
        await asyncio.wait_for(reader.readexactly(length), timeout)
    return status


async def _one_connection(
    host: str,
    port: int,
    requests: Sequence[tuple[str, str, bytes]],
    result: LoadResult,
    timeout: float,
) -> None:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        for method, path, body in requests:
            head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n\r\n"
            writer.write(head.encode() + body)
            status = await read_response(reader, timeout, head=method == "HEAD")
            result.statuses[(path, status)] += 1
    finally:
        writer.close()
        await writer.wait_closed()


def run_load(
    base_url: str,
    requests: Sequence[tuple[str, str, bytes]],
    *,
    connections: int = 100,
    timeout: float = 30.0,
    deadline: float = 120.0,
) -> LoadResult:
    """Send ``requests`` (method, path, body) spread over ``connections`` keep-alive connections.

    Returns:
        The statuses seen per path.
    """
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    result = LoadResult()
    shares = [requests[i::connections] for i in range(connections)]

    async def main() -> None:
        await asyncio.wait_for(
            asyncio.gather(
                *(_one_connection(host, port, share, result, timeout) for share in shares if share)
            ),
            deadline,
        )

    asyncio.run(main())
    return result
