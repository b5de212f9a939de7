"""Apps monitored without code changes: the hooks auto-instrumentation installs.

Two hooks, each wrapping the app with ``MonitoringMiddleware`` at the outermost layer, exactly as
``monitoring.instrument(app)`` would:

- **Starlette** (and so FastAPI, which subclasses it): the ``middleware_stack`` attribute. When
  an app stores the stack it built on its first call (with the class's own
  ``build_middleware_stack``: FastAPI overrides it, and builds the stack in its own ``__call__``
  when its native telemetry is on), the stack is wrapped, so the outermost layer, around
  ``ServerErrorMiddleware``, the user's middleware and the router, is the monitoring, whatever
  server runs the app (uvicorn, gunicorn's ``UvicornWorker``, hypercorn...). The stack is built
  lazily, so an app imported in a gunicorn master (``preload_app``) is wrapped in each worker.
- **uvicorn**: ``uvicorn.config.Config.load``, for any other ASGI 3 app uvicorn serves (a bare
  ASGI callable, or a framework without a hook here). A Starlette app is left to the first hook,
  which sees the middleware the app adds itself.

Wrapped once per request: the outermost monitored layer marks the scope (``MARK``), and every
inner hooked app (a Starlette app mounted in another, a Starlette app under a wrapped uvicorn
app) sees the mark and passes the request straight on. An app that already has a
``MonitoringMiddleware`` (``add_middleware(MonitoringMiddleware, ...)``, or
``monitoring.instrument(app)`` handed to uvicorn) is not wrapped again; it only marks the scope.

Global state: the one ``Monitoring`` that apps are wrapped with lives here (``_installed``), set
by ``install`` and cleared by ``uninstall``; the hooks read it when an app is built.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fluxstack_otel._internal.asgi_types import ASGIApp, Receive, Scope, Send
from fluxstack_otel._internal.http.middleware import MonitoringMiddleware

if TYPE_CHECKING:
    from fluxstack_otel._internal.monitoring import Monitoring

__all__ = ["MARK", "install", "installed", "uninstall", "wrap"]

MARK = "fluxstack_otel.monitored"
"""The scope key the outermost monitored layer sets."""
_CHAIN_LIMIT = 64  # middleware layers looked through for an existing MonitoringMiddleware
_SHUTDOWN_DONE = frozenset({"lifespan.shutdown.complete", "lifespan.shutdown.failed"})


@dataclass(slots=True)
class _Installed:
    monitoring: Monitoring
    restore: list[Callable[[], None]] = field(default_factory=list)


_installed: _Installed | None = None


class _Monitored:
    """The outermost monitored layer: marks the scope; an already marked request passes on.

    It also ends the pipeline when the server ends the app: after the app completes the lifespan
    shutdown, ``monitoring.shutdown()`` flushes every exporter before the server goes on. A
    worker of gunicorn's ``UvicornWorker`` or of ``uvicorn --workers`` is ended by its SIGTERM
    once the server has stopped, so the interpreter's exit handlers never run there.
    """

    __slots__ = ("app", "monitored", "monitoring")

    def __init__(self, app: ASGIApp, monitoring: Monitoring) -> None:
        self.app = app
        self.monitoring = monitoring
        self.monitored = monitoring.instrument(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if MARK in scope:
            await self.app(scope, receive, send)
            return
        scope[MARK] = True
        if scope["type"] == "lifespan":
            send = self._flush_at_shutdown(send)
        await self.monitored(scope, receive, send)

    def _flush_at_shutdown(self, send: Send) -> Send:
        async def forward(message: MutableMapping[str, Any]) -> None:
            if message["type"] in _SHUTDOWN_DONE:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, self.monitoring.shutdown)
            await send(message)

        return forward


class _MarkOnly:
    """An app that monitors itself: the mark keeps inner hooked apps from counting again."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[MARK] = True
        await self.app(scope, receive, send)


def _chain(app: object) -> list[object]:
    """The app and the layers under it, following the ``app`` attribute middleware keep."""
    layers = [app]
    while len(layers) < _CHAIN_LIMIT:
        inner = getattr(layers[-1], "app", None)
        if inner is None or not callable(inner):
            break
        layers.append(inner)
    return layers


def _monitors_itself(layers: list[object]) -> bool:
    return any(isinstance(layer, MonitoringMiddleware | _Monitored) for layer in layers)


def wrap(app: ASGIApp, monitoring: Monitoring) -> ASGIApp:
    """Wrap ``app`` with ``monitoring`` as the outermost layer, at most once per request.

    Args:
        app: An ASGI app (a built Starlette stack, or what uvicorn loaded).
        monitoring: The pipeline to record into.

    Returns:
        The wrapped app; a mark-only layer when ``app`` already holds a ``MonitoringMiddleware``.
    """
    if _monitors_itself(_chain(app)):
        return _MarkOnly(app)
    return _Monitored(app, monitoring)


def installed() -> Monitoring | None:
    """The ``Monitoring`` the hooks wrap apps with, or None when they are not installed."""
    return None if _installed is None else _installed.monitoring


def install(monitoring: Monitoring) -> None:
    """Install the hooks (Starlette and uvicorn, where importable) for ``monitoring``.

    Idempotent: a second call only changes the ``Monitoring`` later apps are wrapped with.
    """
    global _installed
    if _installed is not None:
        _installed.monitoring = monitoring
        return
    state = _Installed(monitoring)
    if importlib.util.find_spec("starlette") is not None:
        state.restore.append(_hook_starlette())
    if importlib.util.find_spec("uvicorn") is not None:
        state.restore.append(_hook_uvicorn())
    _installed = state


def uninstall() -> None:
    """Remove the hooks; apps built afterwards are not wrapped."""
    global _installed
    state, _installed = _installed, None
    if state is not None:
        for restore in reversed(state.restore):
            restore()


def _current() -> Monitoring | None:
    state = _installed
    if state is None or not state.monitoring.enabled:
        return None
    return state.monitoring


def _hook_starlette() -> Callable[[], None]:
    from starlette.applications import Starlette

    # The hook is the attribute itself: Starlette's __call__ and FastAPI's (which builds the
    # stack on its own when its native telemetry is on) both assign ``self.middleware_stack``
    # once, so a property catches whichever class builds it, with whatever
    # ``build_middleware_stack`` it has. The value stays in the instance's __dict__ under the
    # same name, so apps built before ``install`` keep theirs and ``uninstall`` is one delete.
    def get(self: Starlette) -> Any:
        return self.__dict__.get("middleware_stack")

    def set_(self: Starlette, stack: Any) -> None:
        monitoring = _current()
        if stack is not None and monitoring is not None:
            stack = wrap(stack, monitoring)
        self.__dict__["middleware_stack"] = stack

    setattr(Starlette, "middleware_stack", property(get, set_))  # noqa: B010 (an instance attribute to the type checker)

    def restore() -> None:
        delattr(Starlette, "middleware_stack")

    return restore


def _hook_uvicorn() -> Callable[[], None]:
    from uvicorn.config import Config

    original = Config.load

    def load(self: Config) -> None:
        original(self)
        monitoring = _current()
        if monitoring is None:
            return
        layers = _chain(self.loaded_app)
        if _monitors_itself(layers) or not _is_starlette(layers[-1]):
            self.loaded_app = wrap(self.loaded_app, monitoring)

    Config.load = load  # type: ignore[method-assign]

    def restore() -> None:
        Config.load = original  # type: ignore[method-assign]

    return restore


def _is_starlette(app: object) -> bool:
    try:
        from starlette.applications import Starlette
    except ImportError:
        return False
    return isinstance(app, Starlette)
