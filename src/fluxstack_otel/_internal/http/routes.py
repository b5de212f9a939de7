"""Route templates for the ``route`` label: ``/items/{item_id}``, never ``/items/42``.

Starlette (and so FastAPI) routers write the matched route into the ASGI scope
(``scope["route"]``) and mutate the scope in place, so after the app has run the middleware reads
the innermost matched route without matching anything again. Mounts add their raw prefix to
``scope["root_path"]``; the prefix is turned back into the mount's template by walking the top
router's mounts once per distinct prefix (cached, bounded).

Frameworks that do not write ``scope["route"]`` get the one fixed value ``UNMATCHED_ROUTE`` unless
they write ``scope["path_template"]`` (a string), which is used as is.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from fluxstack_otel._internal.metrics.catalog import UNMATCHED_ROUTE

__all__ = ["KNOWN_METHODS", "OTHER_METHOD", "cached_route", "resolve_route"]

# Methods outside this set are recorded as OTHER_METHOD (as OpenTelemetry's HTTP semantic
# conventions do) so random methods cannot create series; the middleware applies it inline.
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
OTHER_METHOD = "_OTHER"

_MOUNT_CACHE_LIMIT = 1024
_mount_cache: dict[tuple[int, str], str] = {}
_ROUTE_CACHE_LIMIT = 4096
_route_cache: dict[int, tuple[object, str]] = {}


def cached_route(scope: MutableMapping[str, Any], entry_root_path: str) -> str | None:
    """The template of an unmounted route seen before, else None (then ``resolve_route``).

    The common case, and the request path's: one lookup. The cache is keyed by id() because
    Starlette routes define __eq__ and so are unhashable; the entry keeps the route alive, so
    its id cannot be reused while cached.
    """
    route = scope.get("route")
    if route is None or scope.get("root_path", "") != entry_root_path:
        return None
    cached = _route_cache.get(id(route))
    return cached[1] if cached is not None and cached[0] is route else None


def resolve_route(scope: MutableMapping[str, Any], entry_root_path: str, status: int | None) -> str:
    """Return the route template of a finished request.

    Args:
        scope: The request's scope after the app ran (routers have written into it).
        entry_root_path: ``scope["root_path"]`` as it was when the request entered the middleware.
        status: The response status, used to tell a mount's own 404 from a matched mount.
    """
    route = scope.get("route")
    if route is None:
        template = scope.get("path_template")
        return template if isinstance(template, str) else UNMATCHED_ROUTE
    root_path = scope.get("root_path", "")
    if root_path == entry_root_path:
        cached = cached_route(scope, entry_root_path)
        if cached is not None:
            return cached
        if not _is_mount(route):
            path = getattr(route, "path_format", None) or getattr(route, "path", None)
            if isinstance(path, str):
                if len(_route_cache) < _ROUTE_CACHE_LIMIT:
                    _route_cache[id(route)] = (route, path)
                return path
    prefix = ""
    if root_path != entry_root_path and root_path.startswith(entry_root_path):
        prefix = _mount_prefix(scope, root_path[len(entry_root_path) :])
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


def _mount_prefix(scope: MutableMapping[str, Any], raw: str) -> str:
    router = scope.get("router")
    cache_key = (id(router), raw)
    cached = _mount_cache.get(cache_key)
    if cached is not None:
        return cached
    template = _walk_mounts(getattr(router, "routes", None), raw)
    if template is None:
        # Not a Starlette-shaped router: keep the raw prefix (mount paths rarely hold parameters;
        # the cardinality cap bounds the rest).
        template = raw
    if len(_mount_cache) < _MOUNT_CACHE_LIMIT:
        _mount_cache[cache_key] = template
    return template


def _is_mount(route: Any) -> bool:
    # Starlette's Mount (and FastAPI's, the same class) has sub-routes and no endpoint.
    return hasattr(route, "routes") and not hasattr(route, "endpoint")


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
