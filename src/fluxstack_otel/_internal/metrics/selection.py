"""Which built-in a View selects, and what it may set: the SDK's matching rules on the built-ins.

Enters: a built-in's catalogue spec and a user's ``View``. Leaves: whether the view selects it
(by exported name, unit, instrument type or meter, as ``View._match`` does), the aggregations a
built-in of each kind accepts, and the profile's own views. ``views.Presentation`` uses them.
"""

from __future__ import annotations

import itertools
from fnmatch import fnmatchcase
from typing import NamedTuple

from opentelemetry.sdk.metrics.view import (
    DefaultAggregation,
    DropAggregation,
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    LastValueAggregation,
    SumAggregation,
    View,
)

from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.metrics import sdk_hooks
from fluxstack_otel.errors import ConfigError

__all__ = [
    "ALLOWED_AGGREGATIONS",
    "BUILTIN_SCOPES",
    "DEFAULT_BOUNDS",
    "HTTP_NAMES",
    "HTTP_SCOPE_NAME",
    "OWN_METRICS",
    "Candidate",
    "check_boundaries",
    "instrument_class",
    "matches",
    "profile_views",
    "scope_of",
]

HTTP_SCOPE_NAME = "fluxstack_otel.http"
BUILTIN_SCOPES = frozenset({HTTP_SCOPE_NAME, cat.SYSTEM_SCOPE})

# Every metric the package records itself: the built-ins and the opt-in ones.
OWN_METRICS = cat.BUILTIN_METRICS + cat.OPTIONAL_METRICS
HTTP_NAMES = frozenset(m.name for m in (*cat.HTTP_METRICS, *cat.OPTIONAL_METRICS))
DEFAULT_BOUNDS = {
    cat.HTTP_REQUEST_DURATION.name: cat.DEFAULT_DURATION_BUCKETS,
    cat.HTTP_REQUEST_SIZE.name: cat.DEFAULT_SIZE_BUCKETS,
    cat.HTTP_RESPONSE_SIZE.name: cat.DEFAULT_SIZE_BUCKETS,
}


def instrument_class(spec: cat.MetricSpec) -> type:
    if spec.kind is cat.Kind.GAUGE and spec.name in HTTP_NAMES:  # requests in progress: up and down
        return sdk_hooks.UP_DOWN_COUNTER
    if spec.name in HTTP_NAMES:
        return sdk_hooks.HISTOGRAM if spec.kind is cat.Kind.HISTOGRAM else sdk_hooks.COUNTER
    return (
        sdk_hooks.OBSERVABLE_COUNTER
        if spec.kind is cat.Kind.COUNTER
        else sdk_hooks.OBSERVABLE_GAUGE
    )


def scope_of(spec: cat.MetricSpec) -> str:
    return HTTP_SCOPE_NAME if spec.name in HTTP_NAMES else cat.SYSTEM_SCOPE


def profile_views(profile: cat.Profile) -> list[View]:
    """The views that name the built-ins as ``profile`` says (none where a name stays)."""
    return [
        View(instrument_name=spec.name, meter_name=scope_of(spec), name=naming.name)
        for spec in OWN_METRICS
        if (naming := profile.naming(spec)).name != spec.name
    ]


class Candidate(NamedTuple):
    spec: cat.MetricSpec
    name: str
    unit: str
    scope: str
    cls: type


def matches(select: sdk_hooks.Selection, c: Candidate) -> bool:
    # The SDK's matching rules (View._match), on a built-in's exported identity.
    if select.instrument_type is not None and not issubclass(c.cls, select.instrument_type):
        return False
    if select.instrument_name is not None and not fnmatchcase(
        c.name, select.instrument_name.lower()
    ):
        return False
    if select.instrument_unit is not None and not fnmatchcase(c.unit, select.instrument_unit):
        return False
    if select.meter_name is not None and select.meter_name != c.scope:
        return False
    # The built-in scopes have no version and no schema URL.
    return select.meter_version is None and select.meter_schema_url is None


ALLOWED_AGGREGATIONS = {
    cat.Kind.COUNTER: (DefaultAggregation, SumAggregation, DropAggregation),
    cat.Kind.GAUGE: (DefaultAggregation, LastValueAggregation, DropAggregation),
    cat.Kind.HISTOGRAM: (
        DefaultAggregation,
        ExplicitBucketHistogramAggregation,
        ExponentialBucketHistogramAggregation,
        DropAggregation,
    ),
}


def check_boundaries(bounds: tuple[float, ...], path: str) -> tuple[float, ...]:
    if not bounds or any(b != b or b in (float("inf"), float("-inf")) for b in bounds):
        raise ConfigError(
            f"bucket boundaries {list(bounds)!r} must be finite numbers, at least one", path=path
        )
    if any(a >= b for a, b in itertools.pairwise(bounds)):
        raise ConfigError(f"bucket boundaries {list(bounds)!r} must increase strictly", path=path)
    return bounds
