"""Which monitoring endpoint a request asks for, and which requests are not recorded.

The one place that matches request paths, for the middleware and the endpoint server alike.
Paths are compared *below* the app's ``root_path``: under ``uvicorn --root-path /api``, or when
the app is mounted (Starlette's ``Mount``), ASGI servers and routers put the prefix in both
``scope["root_path"]`` and ``scope["path"]``, so ``/api/metrics`` is the app's ``/metrics``. A
server that leaves the prefix out of ``path`` (the older reading of the ASGI spec) is matched on
``path`` as it is.

``excluded_paths`` entries come in four kinds (docs/configuration.md):

- ``/health``: that path exactly;
- ``/static/*``: every path starting with ``/static/``;
- ``re:^/internal/.*\\.json$``: a regular expression that must match the whole path;
- ``/users/{id}``: a route template (it holds ``{``), matched against the ``route`` label once
  the router has run, so it excludes every user; the other three are decided before the app runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableMapping
from typing import Any, NamedTuple

__all__ = ["REGEX_PREFIX", "Exclusions", "local_path", "match_endpoint"]

REGEX_PREFIX = "re:"


def local_path(path: str, root_path: str) -> str:
    """``path`` below ``root_path``: ``("/api/metrics", "/api")`` gives ``/metrics``.

    Args:
        path: ``scope["path"]``.
        root_path: ``scope["root_path"]`` (non-empty: the caller skips the empty case).

    Returns:
        The path the app's own routes see; ``path`` unchanged when it does not start with the
        prefix at a segment boundary.
    """
    if not isinstance(path, str) or not isinstance(root_path, str):
        return path  # a malformed scope: the app's own router will refuse it
    if path.startswith(root_path):
        rest = path[len(root_path) :]
        if not rest:
            return "/"
        if rest[0] == "/":
            return rest
    return path


def match_endpoint(
    endpoints: MutableMapping[str, Any] | Any, scope: MutableMapping[str, Any]
) -> Any | None:
    """The endpoint ``scope`` asks for, or None.

    Args:
        endpoints: Path -> endpoint.
        scope: An HTTP scope.

    Returns:
        The endpoint served at the request's path below its ``root_path``.
    """
    path = scope["path"]
    root_path = scope.get("root_path")
    if root_path:
        path = local_path(path, root_path)
    return endpoints.get(path)


class Exclusions(NamedTuple):
    """``excluded_paths``, compiled: what the middleware consults on each request."""

    path: Callable[[str], bool] | None
    """True for a local path excluded before the app runs; None when no entry is a path."""
    routes: frozenset[str]
    """Route templates whose requests are not recorded."""

    @classmethod
    def compile(cls, entries: tuple[str, ...]) -> Exclusions:
        """Sort ``entries`` by kind and build the matchers.

        Args:
            entries: ``excluded_paths``, already validated (regular expressions compile).

        Returns:
            The matchers.
        """
        exact = frozenset(e for e in entries if _kind(e) == "exact")
        prefixes = tuple(e[:-1] for e in entries if _kind(e) == "prefix")
        patterns = [e[len(REGEX_PREFIX) :] for e in entries if _kind(e) == "regex"]
        routes = frozenset(e for e in entries if _kind(e) == "route")
        regex = re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None
        if not (exact or prefixes or regex):
            return cls(None, routes)

        def excluded(path: str) -> bool:
            return (
                path in exact
                or (bool(prefixes) and path.startswith(prefixes))
                or (regex is not None and regex.fullmatch(path) is not None)
            )

        return cls(excluded, routes)


def _kind(entry: str) -> str:
    if entry.startswith(REGEX_PREFIX):
        return "regex"
    if entry.endswith("*"):
        return "prefix"
    if "{" in entry:
        return "route"
    return "exact"
