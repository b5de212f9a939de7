"""Route templates for the ``route`` label: ``/items/{item_id}``, never ``/items/42``.

Starlette (and so FastAPI) routers write the matched route into the ASGI scope
(``scope["route"]``) and mutate the scope in place, so after the app has run the middleware reads
the innermost matched route without matching anything again. Mounts add their raw prefix to
``scope["root_path"]``; the prefix is turned back into the mounts' templates by walking the
wrapped app's routes once per distinct prefix (cached, bounded). A middleware-wrapped app that is
itself mounted (``Mount("/t/{tenant}", app=monitoring.instrument(sub))``) gets the outer mounts'
template too, from the outer router the scope carries in: ``/t/{tenant}/items/{id}``. A deployment
prefix (``uvicorn --root-path``) is no part of a route. A prefix whose mounts cannot be told is
never guessed at: the route is then ``UNMATCHED_ROUTE``, so raw path text never becomes a label.

Frameworks that do not write ``scope["route"]`` get the one fixed value ``UNMATCHED_ROUTE`` unless
they write ``scope["path_template"]`` (a string), which is used as is.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import Any, NamedTuple

from fluxstack_otel._internal.metrics.catalog import UNMATCHED_ROUTE

__all__ = [
    "KNOWN_METHODS",
    "OTHER_METHOD",
    "PLAIN_ROUTE_TYPES",
    "Mounted",
    "cached_route",
    "cached_template",
    "mounted_at",
    "own_routes_of",
    "resolve_route",
]

# Methods outside this set are recorded as OTHER_METHOD (as OpenTelemetry's HTTP semantic
# conventions do) so random methods cannot create series; the middleware applies it inline.
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
OTHER_METHOD = "_OTHER"

_MOUNT_CACHE_LIMIT = 1024
_mount_cache: dict[tuple[int, str], str | None] = {}
_ROUTE_CACHE_LIMIT = 4096
# Route templates by id(route): Starlette routes define __eq__ and so are unhashable. Each cached
# route is kept alive in _cached_routes, so its id cannot be reused while its entry stands and a
# hit needs no identity check (the request path reads it inline: ``cached_template``).
_route_cache: dict[int, str] = {}
_cached_routes: list[object] = []
cached_template = _route_cache.get
# Route classes whose instances keep their template in ``path_format`` (a str made from the path
# when the route is built) and are never mounts: Starlette's Route and FastAPI's APIRoute, added
# by name when a route of one is first resolved, so neither package is imported here. For them
# the request path reads ``route.path_format`` itself: a type check and an attribute read, where
# the cache above takes id() (a new int each time) and a lookup keyed by it.
_PLAIN_ROUTE_CLASSES = frozenset({("starlette.routing", "Route"), ("fastapi.routing", "APIRoute")})
PLAIN_ROUTE_TYPES: set[type] = set()


def cached_route(scope: MutableMapping[str, Any], entry_root_path: str) -> str | None:
    """The template of an unmounted route seen before, else None (then ``resolve_route``).

    The common case, and the request path's: one lookup. The cache is keyed by id() because
    Starlette routes define __eq__ and so are unhashable; the entry keeps the route alive, so
    its id cannot be reused while cached.
    """
    route = scope.get("route")
    # Under a root path the mounts above add their template: resolve_route knows them.
    if route is None or entry_root_path or scope.get("root_path"):
        return None
    if type(route) in PLAIN_ROUTE_TYPES:
        return route.path_format  # type: ignore[no-any-return]
    return _route_cache.get(id(route))


class Mounted(NamedTuple):
    """Where a middleware-wrapped app was mounted: read from the scope as the request entered.

    Only taken when the request enters under a ``root_path`` (a mount, or ``--root-path``).
    """

    route: object
    """``scope["route"]`` at entry: the ``Mount`` that led here (Starlette), or None."""
    router: object
    """``scope["router"]`` at entry: the outer router, whose mounts give the prefix's template."""
    app_root_path: str
    """``scope["app_root_path"]``: the deployment's own prefix, not part of any route."""


def mounted_at(scope: MutableMapping[str, Any]) -> Mounted:
    """What ``resolve_route`` needs to know about a request that entered under a ``root_path``."""
    return Mounted(scope.get("route"), scope.get("router"), scope.get("app_root_path", ""))


def resolve_route(
    scope: MutableMapping[str, Any],
    entry_root_path: str,
    status: int | None,
    mounted: Mounted | None = None,
    own_routes: Sequence[Any] | None = None,
) -> str:
    """Return the route template of a finished request: a template or ``UNMATCHED_ROUTE``.

    Never raw path text: a prefix whose mounts cannot be told is not guessed at.

    Args:
        scope: The request's scope after the app ran (routers have written into it).
        entry_root_path: ``scope["root_path"]`` as it was when the request entered the middleware.
        status: The response status, used to tell a mount's own 404 from a matched mount.
        mounted: ``mounted_at(scope)`` at entry, when the request entered under a root path.
        own_routes: The routes of the app the middleware wraps, when it is a Starlette-shaped
            router (``app.routes``): the mounts below the middleware are walked in them.
    """
    route = scope.get("route")
    outer = "" if mounted is None else _outer_prefix(mounted, entry_root_path)
    if route is None or (mounted is not None and route is mounted.route):
        # Nothing below this middleware wrote a route.
        template = scope.get("path_template")
        if isinstance(template, str):
            return template
        if route is not None and own_routes is None and status != 404 and _is_mount(route):
            # A plain ASGI app under a mount (StaticFiles): the mount's template covers it.
            return (outer or str(getattr(route, "path", ""))) + "/{path}"
        return UNMATCHED_ROUTE
    inner = _inner_route(scope, route, entry_root_path, status, mounted, own_routes)
    return inner if inner == UNMATCHED_ROUTE else outer + inner


def _inner_route(
    scope: MutableMapping[str, Any],
    route: Any,
    entry_root_path: str,
    status: int | None,
    mounted: Mounted | None,
    own_routes: Sequence[Any] | None,
) -> str:
    root_path = scope.get("root_path", "")
    if root_path == entry_root_path:
        cached = _route_cache.get(id(route))
        if cached is not None:
            return cached
        if not _is_mount(route):
            path = getattr(route, "path_format", None) or getattr(route, "path", None)
            if isinstance(path, str):
                kind = type(route)
                if (kind.__module__, kind.__qualname__) in _PLAIN_ROUTE_CLASSES:
                    PLAIN_ROUTE_TYPES.add(kind)
                elif len(_route_cache) < _ROUTE_CACHE_LIMIT:
                    _cached_routes.append(route)
                    _route_cache[id(route)] = path
                return path
    prefix = ""
    if root_path != entry_root_path:
        if not root_path.startswith(entry_root_path):
            return UNMATCHED_ROUTE
        # The mounts below this middleware: in the wrapped app's routes, else (add_middleware,
        # where the router writes itself into the scope) in the scope's router. Under a mount the
        # scope's router is the outer one, which says nothing about the mounts below.
        routes = own_routes
        if routes is None and mounted is None:
            routes = getattr(scope.get("router"), "routes", None)
        found = _mount_prefix(routes, root_path[len(entry_root_path) :])
        if found is None:
            return UNMATCHED_ROUTE
        prefix = found
    if _is_mount(route):
        # A Mount is the innermost match: its app routed nothing itself (a 404 of a sub-router,
        # or a plain ASGI app such as StaticFiles under the mount).
        if status == 404 and route.routes:
            return UNMATCHED_ROUTE
        return (prefix or getattr(route, "path", "")) + "/{path}"
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED_ROUTE
    return prefix + path


def _outer_prefix(mounted: Mounted, entry_root_path: str) -> str:
    """The template of the mounts above the middleware (``/t/{tenant}``), or "" if unknown."""
    raw = entry_root_path
    if mounted.app_root_path and raw.startswith(mounted.app_root_path):
        raw = raw[len(mounted.app_root_path) :]
    if mounted.router is None or not raw:
        return ""
    return _mount_prefix(getattr(mounted.router, "routes", None), raw) or ""


def _mount_prefix(routes: Any, raw: str) -> str | None:
    """The joined templates of the mounts that consumed ``raw``; None when they cannot be told."""
    if routes is None:
        return None
    cache_key = (id(routes), raw)
    if cache_key in _mount_cache:
        return _mount_cache[cache_key]
    template = _walk_mounts(routes, raw)
    if len(_mount_cache) < _MOUNT_CACHE_LIMIT:
        _mount_cache[cache_key] = template
    return template


def _is_mount(route: Any) -> bool:
    # Starlette's Mount (and FastAPI's, the same class) has sub-routes and no endpoint.
    return hasattr(route, "routes") and not hasattr(route, "endpoint")


def own_routes_of(app: Any) -> Sequence[Any] | None:
    """The routes of a Starlette-shaped app, looking through a few wrapping middlewares.

    ``instrument(app)`` sees the application; ``add_middleware`` sees the middleware stack
    Starlette builds, whose innermost app is the router. Anything else: None.
    """
    for _ in range(16):
        routes = getattr(app, "routes", None)
        if isinstance(routes, list):
            return routes
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


def _walk_mounts(routes: Any, raw: str) -> str | None:
    """Follow the mounts that consumed ``raw`` and join their path templates."""
    template = ""
    remaining = raw
    depth = 0
    while remaining and routes is not None and depth < 16:
        depth += 1
        for candidate in routes:
            regex = getattr(candidate, "path_regex", None)
            if regex is None or not _is_mount(candidate):
                continue
            match = regex.match(remaining + "/")
            if match is None:
                continue
            rest = match.groupdict().get("path", "")
            template += getattr(candidate, "path", "")
            remaining = "/" + rest.rstrip("/") if rest.strip("/") else ""
            routes = getattr(candidate, "routes", None)
            break
        else:
            return None
    return template if not remaining else None
