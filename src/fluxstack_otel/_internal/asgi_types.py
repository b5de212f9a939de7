"""The ASGI protocol types, named once for the whole package.

``Scope`` is a connection's scope, ``Message`` one event sent or received, ``Receive`` and
``Send`` the two channels, and ``ASGIApp`` an application (or an endpoint: the sinks' endpoints
are ASGI apps for one path). Mutable mappings rather than TypedDicts: the middleware reads and
writes the scope of whatever server and framework it runs under.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
