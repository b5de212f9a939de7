"""The built-in metrics shaped by OpenTelemetry ``View`` objects: the naming profiles and yours.

A naming profile is a list of real ``opentelemetry.sdk.metrics.view.View`` objects (``SEMCONV``
renames each built-in; ``FLUXSTACK`` needs none) plus an attribute dialect, the one thing a View
cannot express (it selects attribute keys but cannot rename them). The views a user passes to
``configure_monitoring(views=[...])`` come after the profile's:

1. The profile's views name each built-in (``http_request_duration_seconds``, or
   ``http.server.request.duration`` under ``semconv``): the name it is exported under.
2. A user view selects a built-in by that exported name (wildcards as in the SDK), by its unit,
   instrument type (counters are ``Counter``, histograms ``Histogram``, the system gauges
   ``ObservableGauge``, CPU time ``ObservableCounter``) or meter name (``fluxstack_otel.http``,
   ``fluxstack_otel.system``), and may rename it, change its description, keep only some
   ``attribute_keys`` (points that then share their attributes are merged), set
   ``ExplicitBucketHistogramAggregation`` boundaries, choose a base-2 exponential histogram
   (``ExponentialBucketHistogramAggregation``: the recorder keeps one beside the classic
   buckets, and the stream goes out as an ``ExponentialHistogram``), or drop it
   (``DropAggregation``).
3. As in the SDK, each matching view makes a stream of its own, and a built-in no user view
   matches keeps its profile stream. Two streams of one name would be two families of one name,
   so they are refused when the pipeline is built.

The same View objects go to the SDK's MeterProvider, which applies them to custom and third-party
instruments. Inside the package (alerts, the dashboard, the multiprocess merge) every built-in
keeps its FluxStack identity; ``Presentation.present`` applies the views once per collection, on
the way out, never per request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from opentelemetry.sdk.metrics.export import (
    ExponentialHistogram,
    Gauge,
    Histogram,
    Metric,
    MetricsData,
    NumberDataPoint,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.metrics.view import (
    DropAggregation,
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)

from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.metrics import sdk_hooks
from fluxstack_otel._internal.metrics.assemble import map_scopes
from fluxstack_otel._internal.metrics.dual import (
    ClassicExponentialPoint,
    DualHistogramDataPoint,
    classic_only,
    to_exponential,
)
from fluxstack_otel._internal.metrics.reshape import (
    Attributes,
    histogram_point,
    latest,
    merge,
    merge_histograms,
    merge_sums,
    rebucket,
)
from fluxstack_otel._internal.metrics.selection import (
    ALLOWED_AGGREGATIONS,
    BUILTIN_SCOPES,
    DEFAULT_BOUNDS,
    HTTP_SCOPE_NAME,
    OWN_METRICS,
    Candidate,
    check_boundaries,
    instrument_class,
    matches,
    profile_views,
    scope_of,
)
from fluxstack_otel.errors import ConfigError

__all__ = ["BUILTIN_SCOPES", "HTTP_SCOPE_NAME", "Presentation", "Stream", "profile_views"]


class Stream(NamedTuple):
    """One exported stream of a built-in metric.

    Attributes:
        name: The OpenTelemetry name it is exported under.
        description: Its description.
        unit: Its UCUM unit.
        attribute_keys: The attribute keys kept (None: all).
        boundaries: A histogram's bucket bounds when a view set them (None: as recorded).
        constants: Constant attributes every point carries (the profile's dialect).
        exponential: (max_size, max_scale) when the stream is a base-2 exponential histogram.
    """

    name: str
    description: str
    unit: str
    attribute_keys: frozenset[str] | None = None
    boundaries: tuple[float, ...] | None = None
    constants: tuple[tuple[str, str], ...] = ()
    exponential: tuple[int, int] | None = None


class Presentation:
    """How every built-in leaves the package: its streams after the profile's and the user's views.

    Args:
        profile: The naming profile.
        views: The user's views, in order.
        default_bounds: The histograms' bucket bounds where no view sets them.
        exponential: ``histograms: exponential``: (max_size, max_scale) of the HTTP histograms
            no view gives an aggregation of their own.

    Raises:
        ConfigError: A view is not a ``View``, sets an aggregation the built-in it selects cannot
            take, names a built-in scope or a near-miss of a built-in name but selects nothing,
            or two streams would share one name.
    """

    def __init__(
        self,
        profile: cat.Profile,
        views: Sequence[object] = (),
        *,
        default_bounds: Mapping[str, Sequence[float]] | None = None,
        exponential: tuple[int, int] | None = None,
    ) -> None:
        self._profile = profile
        user: list[View] = []
        for index, view in enumerate(views):
            if not isinstance(view, View):
                raise ConfigError(
                    f"expected an opentelemetry.sdk.metrics.view.View, got {type(view).__name__}",
                    path=f"views[{index}]",
                )
            user.append(view)
        self.user_views: tuple[View, ...] = tuple(user)
        """The user's views (the SDK applies them to custom and third-party instruments)."""
        self.views: tuple[View, ...] = (*profile_views(profile), *user)
        """The profile's views, then the user's."""
        self._labels = dict(profile.labels)
        self._integer_status = profile.integer_status
        candidates = [
            Candidate(
                spec,
                profile.naming(spec).name,
                profile.naming(spec).unit,
                scope_of(spec),
                instrument_class(spec),
            )
            for spec in OWN_METRICS
        ]
        streams: dict[str, tuple[Stream, ...]] = {}
        matched = [False] * len(user)
        for c in candidates:
            naming = profile.naming(c.spec)
            base = Stream(c.name, c.spec.help, c.unit, constants=naming.attributes)
            if c.spec.name in DEFAULT_BOUNDS:  # an HTTP histogram
                base = base._replace(exponential=exponential)
            out: list[Stream] = []
            hits = [(i, v) for i, v in enumerate(user) if matches(sdk_hooks.selection(v), c)]
            for index, view in hits:
                matched[index] = True
                stream = self._customise(base, c.spec, view, f"views[{index}]")
                if stream is not None:
                    out.append(stream)
            streams[c.spec.name] = tuple(out) if hits else (base,)
        self._streams = streams
        self._recorded = self._record(dict(default_bounds or DEFAULT_BOUNDS))
        self._check_unmatched(user, matched, candidates)
        self._check_names()
        self.identity = (
            all(
                s == (Stream(m, cat.METRICS_BY_NAME[m].help, cat.METRICS_BY_NAME[m].unit),)
                for m, s in streams.items()
            )
            and not self._renames_attributes()
        )

    # --- building --------------------------------------------------------------------------

    def _customise(
        self, base: Stream, spec: cat.MetricSpec, view: View, path: str
    ) -> Stream | None:
        name, description, keys, aggregation = sdk_hooks.settings(view)
        if not isinstance(aggregation, ALLOWED_AGGREGATIONS[spec.kind]):
            allowed = ", ".join(a.__name__ for a in ALLOWED_AGGREGATIONS[spec.kind])
            raise ConfigError(
                f"{type(aggregation).__name__} cannot aggregate the {spec.kind} {base.name!r}; "
                f"allowed: {allowed}",
                path=f"{path}.aggregation",
            )
        if isinstance(aggregation, DropAggregation):
            return None
        boundaries = None
        exponential = base.exponential
        if isinstance(aggregation, ExplicitBucketHistogramAggregation):
            boundaries = check_boundaries(
                sdk_hooks.bucket_boundaries(aggregation), f"{path}.aggregation"
            )
            exponential = None
        elif isinstance(aggregation, ExponentialBucketHistogramAggregation):
            exponential = sdk_hooks.exponential_settings(aggregation)
        return base._replace(
            name=name if name is not None else base.name,
            description=description if description is not None else base.description,
            attribute_keys=keys,
            boundaries=boundaries,
            exponential=exponential,
        )

    def _record(self, defaults: dict[str, Sequence[float]]) -> dict[str, tuple[float, ...]]:
        # The two size histograms share the recorder's one set of size buckets.
        groups = [
            (cat.HTTP_REQUEST_DURATION.name,),
            (cat.HTTP_REQUEST_SIZE.name, cat.HTTP_RESPONSE_SIZE.name),
        ]
        recorded: dict[str, tuple[float, ...]] = {}
        for group in groups:
            bounds: set[float] = set()
            for metric in group:
                default = tuple(float(b) for b in defaults[metric])
                for stream in self._streams[metric]:
                    bounds.update(stream.boundaries if stream.boundaries is not None else default)
                if not self._streams[metric]:
                    bounds.update(default)
            union = tuple(sorted(bounds))
            for metric in group:
                recorded[metric] = union
                default = tuple(float(b) for b in defaults[metric])
                if union != default:  # the union is recorded: each stream gets its own back
                    self._streams[metric] = tuple(
                        s if s.boundaries is not None else s._replace(boundaries=default)
                        for s in self._streams[metric]
                    )
        return recorded

    def _check_unmatched(
        self, user: list[View], matched: list[bool], candidates: list[Candidate]
    ) -> None:
        names = [c.name for c in candidates]
        for index, view in enumerate(user):
            if matched[index]:
                continue
            select = sdk_hooks.selection(view)
            if select.meter_name in BUILTIN_SCOPES:
                raise ConfigError(
                    f"the view selects no built-in metric of meter {select.meter_name!r}; "
                    f"the built-ins are exported as {', '.join(names)}",
                    path=f"views[{index}]",
                )
            wanted = select.instrument_name
            if wanted and not any(ch in wanted for ch in "*?["):
                import difflib  # only for a view that matched no built-in: off the default path

                close = difflib.get_close_matches(wanted.lower(), names, n=1, cutoff=0.85)
                if close:
                    raise ConfigError(
                        f"the view selects instrument {wanted!r}, which is not a built-in "
                        f"metric as exported here; did you mean {close[0]!r}?",
                        path=f"views[{index}].instrument_name",
                    )

    def _check_names(self) -> None:
        seen: dict[str, str] = {}
        for metric, streams in self._streams.items():
            for stream in streams:
                other = seen.setdefault(stream.name, metric)
                if other != metric or sum(s.name == stream.name for s in streams) > 1:
                    raise ConfigError(
                        f"two streams would be exported as {stream.name!r} (from {other!r} and "
                        f"{metric!r}): a name must be unique; rename one with View(name=...)",
                        path="views",
                    )

    def _renames_attributes(self) -> bool:
        return self._integer_status or any(k != v for k, v in self._labels.items())

    # --- reading ---------------------------------------------------------------------------

    def streams(self, metric: str) -> tuple[Stream, ...]:
        """The exported streams of built-in ``metric`` (empty: dropped)."""
        return self._streams[metric]

    def exported_names(self) -> dict[str, str]:
        """Exported OpenTelemetry name -> the built-in it presents."""
        return {s.name: m for m, streams in self._streams.items() for s in streams}

    def recorded_bounds(self, metric: str) -> tuple[float, ...]:
        """The bucket bounds the recorder keeps ``metric`` in (every stream's bounds, merged)."""
        return self._recorded[metric]

    def exponential(self) -> dict[str, tuple[int, int]]:
        """The HTTP histograms the recorder also keeps exponentially: name -> (max_size, max_scale).

        Where two streams of one metric ask for different settings, the finer (the larger
        max_size, the larger max_scale) is kept; each stream gets its own on the way out.
        """
        out: dict[str, tuple[int, int]] = {}
        for metric in DEFAULT_BOUNDS:
            wanted = [s.exponential for s in self._streams[metric] if s.exponential is not None]
            if wanted:
                out[metric] = (max(w[0] for w in wanted), max(w[1] for w in wanted))
        return out

    def present(self, data: MetricsData) -> MetricsData:
        """One collection with the built-ins as their streams say; other scopes pass as they are."""
        if self.identity:
            return data
        return map_scopes(data, self._present_scope)

    def _present_scope(self, sm: ScopeMetrics) -> ScopeMetrics:
        if sm.scope.name not in BUILTIN_SCOPES:
            return sm
        return ScopeMetrics(
            scope=sm.scope,
            metrics=[s for m in sm.metrics for s in self._present_metric(m)],
            schema_url=sm.schema_url,
        )

    def _present_metric(self, metric: Metric) -> list[Metric]:
        streams = self._streams.get(metric.name)
        if streams is None:
            return [metric]
        return [self._shape(metric, s) for s in streams]

    def _shape(self, metric: Metric, stream: Stream) -> Metric:
        data: Any = metric.data
        rename = Attributes(self._labels, stream.constants, self._integer_status)
        keys = stream.attribute_keys
        if isinstance(data, Histogram):
            points = [
                histogram_point(p, rename(p.attributes), p.exemplars) for p in data.data_points
            ]
            if stream.boundaries is not None:
                points = [rebucket(p, stream.boundaries) for p in points]
            if keys is not None:
                points = merge(points, keys, merge_histograms)
            duals = [p for p in points if isinstance(p, DualHistogramDataPoint)]
            if stream.exponential is not None and len(duals) == len(points):
                epoints: list[ClassicExponentialPoint] = [
                    to_exponential(p, stream.exponential) for p in duals
                ]
                data = ExponentialHistogram(
                    data_points=epoints, aggregation_temporality=data.aggregation_temporality
                )
            else:
                data = Histogram(
                    data_points=[classic_only(p) for p in points],
                    aggregation_temporality=data.aggregation_temporality,
                )
        elif isinstance(data, Sum | Gauge):
            npoints = [
                NumberDataPoint(
                    attributes=rename(p.attributes),
                    start_time_unix_nano=p.start_time_unix_nano,
                    time_unix_nano=p.time_unix_nano,
                    value=p.value,
                    exemplars=p.exemplars,
                )
                for p in data.data_points
            ]
            if isinstance(data, Sum):
                if keys is not None:
                    npoints = merge(npoints, keys, merge_sums)
                data = Sum(
                    data_points=npoints,
                    aggregation_temporality=data.aggregation_temporality,
                    is_monotonic=data.is_monotonic,
                )
            else:
                if keys is not None:
                    npoints = merge(npoints, keys, latest)
                data = Gauge(data_points=npoints)
        return Metric(name=stream.name, description=stream.description, unit=stream.unit, data=data)
