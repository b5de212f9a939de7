"""Hostile HTTP/1.1 clients for loopback tests: raw request bytes, bodies cut short, streams dropped.

``loadgen`` sends well-formed requests; these helpers send what a hostile or broken client sends:
any method, path and Host header as raw bytes, bodies announced but never finished, responses
abandoned after the first bytes. Each helper is bounded by a timeout, and raises with what it saw
when the server does not behave.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

from loadgen import read_response

__all__ = ["disconnect_mid_body", "disconnect_mid_stream", "raw_requests"]

HOST = "127.0.0.1"


async def _connection(port: int, requests: Sequence[bytes], timeout: float) -> list[int]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
    statuses = []
    try:
        for raw in requests:
            writer.write(raw)
            statuses.append(await read_response(reader, timeout, head=raw.startswith(b"HEAD ")))
    finally:
        writer.close()
        await writer.wait_closed()
    return statuses


def raw_requests(
    port: int,
    requests: Sequence[bytes],
    *,
    connections: int = 20,
    timeout: float = 10.0,
    deadline: float = 60.0,
) -> list[int]:
    """Send complete raw requests over keep-alive connections; return every status, in any order.

    Every request must leave the connection usable (a valid request line, a ``Content-Length``
    matching its body): the server answers each before the next is written.
    """
    shares = [requests[i::connections] for i in range(connections)]

    async def main() -> list[list[int]]:
        return await asyncio.wait_for(
            asyncio.gather(*(_connection(port, share, timeout) for share in shares if share)),
            deadline,
        )

    return [status for statuses in asyncio.run(main()) for status in statuses]


def disconnect_mid_body(
    port: int, path: str, *, announced: int, sent: int, timeout: float = 10.0
) -> None:
    """POST announcing ``announced`` body bytes, send ``sent`` of them, then close the socket."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {announced}\r\n\r\n"
        sock.sendall(head.encode() + b"b" * sent)


def disconnect_mid_stream(port: int, path: str, *, timeout: float = 10.0) -> bytes:
    """GET ``path``, read until the first body bytes arrive, then close; return what was read."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        seen = b""
        while b"\r\n\r\n" not in seen or seen.endswith(b"\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"the server closed the stream early: {seen[:200]!r}")
            seen += chunk
        return seen
