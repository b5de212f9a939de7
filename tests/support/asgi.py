"""An in-process ASGI driver: one HTTP exchange without a socket, every sent message kept."""

from __future__ import annotations

from typing import Any

Message = dict[str, Any]


async def drive(app: Any, scope: Message, body_chunks: list[bytes] | None = None) -> list[Message]:
    """Run ``app`` on one HTTP ``scope``, feeding ``body_chunks``, then a disconnect.

    Returns:
        The messages the app sent, in order.
    """
    chunks = list(body_chunks or [b""])
    sent: list[Message] = []

    async def receive() -> Message:
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def ok_app(scope: Message, receive: Any, send: Any) -> None:
    """The smallest HTTP app: 200 and ``ok`` to every request; other scopes (lifespan) end at once."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
