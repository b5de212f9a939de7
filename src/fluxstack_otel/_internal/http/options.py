"""What the middleware does per request only when configured.

Labels from requests (``labels``), exclusions by route template, ``record_unmatched: false``,
``in_progress``, tracing exemplars and the slow-request log all need work after the app has run;
they hang off one ``RequestOptions`` object, built once, so the default configuration pays a
single ``is None`` check for all of them.

Also here: the check, when the middleware is built, that the app has no route of its own on a
path a monitoring endpoint takes (the endpoint answers first, so that route would never run).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from fluxstack_otel._internal.http.routes import Mounted
from fluxstack_otel._internal.http.tracing import span_context
from fluxstack_otel._internal.metrics.catalog import UNMATCHED_ROUTE

if TYPE_CHECKING:
    from fluxstack_otel._internal.http.inflight import InFlight
    from fluxstack_otel._internal.http.labels import LabelReader
    from fluxstack_otel._internal.http.paths import Exclusions
    from fluxstack_otel._internal.http.recorder import HttpRecorder

__all__ = ["OptionWiring", "RequestOptions", "warn_shadowed"]

_log = logging.getLogger("fluxstack_otel")


class _Measured(Protocol):
    start: float
    received: int
    sent: int


class OptionWiring(Protocol):
    """The part of the monitoring's wiring these options read."""

    @property
    def exclusions(self) -> Exclusions: ...
    @property
    def record_unmatched(self) -> bool: ...
    @property
    def labels(self) -> LabelReader | None: ...
    @property
    def in_flight(self) -> InFlight | None: ...
    @property
    def tracing(self) -> bool: ...
    @property
    def slow_request_threshold(self) -> float | None: ...


class RequestOptions:
    """The optional per-request work of one middleware; ``from_wiring`` gives None without any."""

    def __init__(self, wiring: OptionWiring, own_routes: Sequence[Any] | None) -> None:
        self._excluded_routes = wiring.exclusions.routes
        self._unmatched = wiring.record_unmatched
        self._labels = wiring.labels
        self._in_flight = wiring.in_flight
        self._traced = wiring.tracing
        self._slow = wiring.slow_request_threshold
        self._routes = own_routes

    @classmethod
    def from_wiring(
        cls, wiring: OptionWiring, own_routes: Sequence[Any] | None
    ) -> RequestOptions | None:
        """The options of ``wiring``, or None when none is configured."""
        if (
            not wiring.exclusions.routes
            and wiring.record_unmatched
            and wiring.labels is None
            and wiring.in_flight is None
            and not wiring.tracing
            and wiring.slow_request_threshold is None
        ):
            return None
        return cls(wiring, own_routes)

    def keeps(self, route: str) -> bool:
        """False for a route whose requests are not recorded (exclusions, ``record_unmatched``)."""
        if route == UNMATCHED_ROUTE:
            return self._unmatched
        return route not in self._excluded_routes

    def enter(
        self, scope: MutableMapping[str, Any], root_path: str, mounted: Mounted | None
    ) -> None:
        """Called as a request enters, before the app runs."""
        if self._in_flight is not None:
            self._in_flight.enter(scope, root_path, mounted, self._routes)

    def abandon(self, scope: MutableMapping[str, Any]) -> None:
        """Forget a request whose recording failed, so it does not stay in flight forever."""
        if self._in_flight is not None:
            self._in_flight.exit(scope)

    def finish(
        self,
        recorder: HttpRecorder,
        scope: MutableMapping[str, Any],
        method: str,
        route: str,
        status: int | None,
        error_type: str | None,
        exchange: _Measured,
        now: float,
    ) -> None:
        """Record a finished request with the configured options."""
        if self._in_flight is not None:
            self._in_flight.exit(scope)
        if not self.keeps(route):
            return
        duration = now - exchange.start
        labels: tuple[str, ...] = ()
        if self._labels is None:
            recorder.record(
                method, route, status, error_type, duration, exchange.received, exchange.sent, now
            )
        else:
            labels = self._labels.read(scope)
            recorder.record_labeled(
                method,
                route,
                status,
                error_type,
                labels,
                duration,
                exchange.received,
                exchange.sent,
                now,
            )
        # The sampled server span the tracing hook noted, as the duration's exemplar.
        if self._traced and (context := span_context(scope)) is not None:
            recorder.exemplar(
                method, route, status, error_type, duration, context.trace_id, context.span_id,
                labels,
            )  # fmt: skip
        if self._slow is not None and duration > self._slow:
            _log_slow_request(method, route, status, duration, self._slow)


def warn_shadowed(routes: Sequence[Any] | None, endpoints: Mapping[str, str]) -> None:
    """Warn about each app route on a path a monitoring endpoint takes.

    The endpoint answers first, so the app's route would never run. A warning, not an error:
    the app may mean it (an old ``/metrics`` handler left in place), and refusing would stop
    it from starting over a route it cannot reach anyway.

    Args:
        routes: The wrapped app's routes (``own_routes_of``), or None when not inspectable.
        endpoints: Endpoint path -> the configuration key that put it there.
    """
    if not routes or not endpoints:
        return
    for route in routes:
        path = getattr(route, "path", None)
        if isinstance(path, str) and path in endpoints and hasattr(route, "endpoint"):
            _log.warning(
                "the app's route %r is shadowed by the monitoring endpoint of %s: requests to"
                " %r reach the endpoint, never the route; move one of them",
                path,
                endpoints[path],
                path,
            )


def _log_slow_request(
    method: str, route: str, status: int | None, duration: float, threshold: float
) -> None:
    _log.warning(
        "slow request: %s %s took %.0f ms (threshold %.0f ms)",
        method,
        route,
        duration * 1000,
        threshold * 1000,
        extra={
            "method": method,
            "route": route,
            "status_code": status,
            "duration_ms": duration * 1000,
            "threshold_ms": threshold * 1000,
        },
    )
