"""``in_progress: true``: the requests being served now, by method and route.

A request's route is known only once the router has matched it, and routers write it into the
scope (``scope["route"]``) before calling the endpoint. So the registry keeps the scope of every
request in flight and reads each one's route when a collection asks: a request counts under its
route while its endpoint runs, and under ``<unmatched>`` before the router has matched it (or when
nothing matches). The request path pays one dict insert and one delete, and only when configured.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

from fluxstack_otel._internal.http.routes import (
    KNOWN_METHODS,
    OTHER_METHOD,
    Mounted,
    cached_route,
    resolve_route,
)
from fluxstack_otel._internal.metrics.catalog import OVERFLOW

__all__ = ["InFlight"]

# (scope, root_path at entry, where it was mounted, the wrapped app's routes)
_Entry = tuple[MutableMapping[str, Any], str, Mounted | None, Sequence[Any] | None]


class InFlight:
    """The scopes of the requests in flight, counted per (method, route) on demand.

    Args:
        max_series: The cardinality cap: (method, route) pairs beyond it count as overflow.
        keep: Which routes are counted (route exclusions, ``record_unmatched``).
    """

    def __init__(self, max_series: int, keep: Callable[[str], bool]) -> None:
        self._requests: dict[int, _Entry] = {}
        self._max = max_series
        self._keep = keep

    def enter(
        self,
        scope: MutableMapping[str, Any],
        root_path: str,
        mounted: Mounted | None,
        own_routes: Sequence[Any] | None,
    ) -> None:
        """Count the request of ``scope`` from now on."""
        self._requests[id(scope)] = (scope, root_path, mounted, own_routes)

    def exit(self, scope: MutableMapping[str, Any]) -> None:
        """Stop counting the request of ``scope``."""
        self._requests.pop(id(scope), None)

    def counts(self) -> dict[tuple[str, str], int]:
        """Requests in flight per (method, route), read from their scopes now."""
        # list() of a dict's values is one C call, atomic against the loop thread's inserts.
        entries = list(self._requests.values())
        out: dict[tuple[str, str], int] = {}
        for scope, root_path, mounted, own_routes in entries:
            method = scope.get("method", "GET")
            if method not in KNOWN_METHODS:
                method = OTHER_METHOD
            route = cached_route(scope, root_path) or resolve_route(
                scope, root_path, None, mounted, own_routes
            )
            if not self._keep(route):
                continue
            key = (method, route)
            if key not in out and len(out) >= self._max - 1:
                key = (OVERFLOW, OVERFLOW)
            out[key] = out.get(key, 0) + 1
        return out
