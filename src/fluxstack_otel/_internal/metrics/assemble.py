"""Collections assembled: the one place a ``MetricsData`` is put together from its parts.

What enters: a resource and scopes of metrics, or a collection and a function over its scopes.
What leaves: ``MetricsData``, the shape every sink reads. The stream, the views, the deltas, the
multiprocess merge and the user-reader wrapper all build their collections here.

- ``one_resource``: a collection of one resource holding the given scopes.
- ``scope_of``: one scope's metrics.
- ``map_scopes``: a collection with every scope rebuilt by a function, resources kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from opentelemetry.sdk.metrics.export import Metric, MetricsData, ResourceMetrics, ScopeMetrics
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

__all__ = ["map_scopes", "one_resource", "scope_of"]


def one_resource(
    resource: Resource, scopes: Iterable[ScopeMetrics], schema_url: str = ""
) -> MetricsData:
    """A collection of ``resource`` alone, holding ``scopes`` in order."""
    return MetricsData(
        resource_metrics=[
            ResourceMetrics(resource=resource, scope_metrics=list(scopes), schema_url=schema_url)
        ]
    )


def scope_of(scope: InstrumentationScope, metrics: Iterable[Metric]) -> ScopeMetrics:
    """The metrics of ``scope``, in order."""
    return ScopeMetrics(scope=scope, metrics=list(metrics), schema_url="")


def map_scopes(data: MetricsData, rebuild: Callable[[ScopeMetrics], ScopeMetrics]) -> MetricsData:
    """``data`` with each scope replaced by ``rebuild(scope)``; resources and order kept."""
    return MetricsData(
        resource_metrics=[
            ResourceMetrics(
                resource=rm.resource,
                scope_metrics=[rebuild(sm) for sm in rm.scope_metrics],
                schema_url=rm.schema_url,
            )
            for rm in data.resource_metrics
        ]
    )
