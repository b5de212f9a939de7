"""The composition root: ``build`` turns a validated configuration into a running pipeline's parts.

Read top to bottom, it is the data flow: the resource; the views (the naming profile's, then
the user's); the HTTP recorder, recording the bucket bounds the views ask for; the system
metrics on a MeterProvider of their own (no user view can rename what the alerts read); custom
and third-party metrics on the MeterProvider the user's views, readers and exporters attach to;
the canonical stream; the sources the sinks read (presented through the views, host-wide under
multiprocess); the sinks; and the wiring the middleware reads on every request. ``Monitoring``
owns the result's lifecycle.
"""

from __future__ import annotations

# Before any MeterProvider: the SDK's (1.45+) re-detects resources in a forked child with a
# thread pool, from its at-fork hook; concurrent.futures.thread's own hook, which releases the
# pool's global lock in the child, must be registered first, or the worker hangs at fork.
import concurrent.futures.thread  # noqa: F401
import os
import uuid
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from opentelemetry.sdk.environment_variables import OTEL_EXPERIMENTAL_RESOURCE_DETECTORS
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.resources import (
    TELEMETRY_SDK_LANGUAGE,
    TELEMETRY_SDK_NAME,
    TELEMETRY_SDK_VERSION,
    OTELResourceDetector,
    Resource,
)
from opentelemetry.sdk.version import __version__ as sdk_version

from fluxstack_otel._internal.config.endpoints import endpoint_paths
from fluxstack_otel._internal.config.model import MonitoringConfig, OtelExporterConfig
from fluxstack_otel._internal.http.paths import Exclusions
from fluxstack_otel._internal.http.projection import Labelling
from fluxstack_otel._internal.http.recorder import HttpRecorder
from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.metrics import sdk_hooks
from fluxstack_otel._internal.metrics.custom import cardinality_limits
from fluxstack_otel._internal.metrics.exemplars import sdk_exemplar_filter
from fluxstack_otel._internal.metrics.exponential import DEFAULT_MAX_SIZE, MAX_SCALE
from fluxstack_otel._internal.metrics.stream import MetricSource, MetricStream, PresentedStream
from fluxstack_otel._internal.metrics.views import Presentation
from fluxstack_otel._internal.runtime.looplag import LoopLagProbe
from fluxstack_otel._internal.runtime.system import (
    PsutilSource,
    SystemSource,
    register_system_metrics,
)
from fluxstack_otel._internal.sinks.alerts import AlertProcessor, build_processor
from fluxstack_otel._internal.sinks.base import Endpoint, Sink, SinkContext
from fluxstack_otel._internal.sinks.otel import attach_readers, user_readers
from fluxstack_otel._internal.sinks.registry import SINK_TYPES, sink_factory
from fluxstack_otel.errors import ConfigError

# ``histograms: exponential``: the SDK's ExponentialBucketHistogramAggregation defaults.
_EXPONENTIAL = (DEFAULT_MAX_SIZE, MAX_SCALE)

if TYPE_CHECKING:
    from fluxstack_otel._internal.http.inflight import InFlight
    from fluxstack_otel._internal.http.labels import LabelReader
    from fluxstack_otel._internal.runtime.multiprocess.host import HostStream

__all__ = ["Pipeline", "Wiring", "build", "make_resource"]


class Wiring(NamedTuple):
    """What the middleware needs, precomputed once so the request path only reads attributes."""

    endpoints: Mapping[str, Endpoint] = MappingProxyType({})
    endpoint_keys: Mapping[str, str] = MappingProxyType({})
    """Path -> the configuration key of the endpoint served there, on the app."""
    recorder: HttpRecorder | None = None
    exclusions: Exclusions = Exclusions(None, frozenset())
    record_unmatched: bool = True
    labels: LabelReader | None = None
    in_flight: InFlight | None = None
    error_status: int = 500
    loop_probe: LoopLagProbe | None = None
    slow_request_threshold: float | None = None
    tracing: bool = False


class Pipeline(NamedTuple):
    """The parts of one monitoring pipeline, built and not yet started.

    Attributes:
        resource: The resource every collection carries.
        presentation: The built-ins' streams after the profile's and the user's views.
        recorder: The HTTP recorder (None: HTTP metrics off).
        probe: The event-loop lag probe (None: system metrics off).
        providers: The MeterProviders: the system metrics' own, then the user-facing one.
        provider: The user-facing MeterProvider (custom metrics, the global provider).
        stream: The canonical stream (FluxStack identities: alerts, multiprocess).
        exported: What ``collect()`` returns: this process's stream, presented.
        host: The multiprocess host view (None: one process).
        alerts: The alert processor.
        sinks: Every sink, in start order.
        wiring: What the middleware reads.
    """

    resource: Resource
    presentation: Presentation
    recorder: HttpRecorder | None
    probe: LoopLagProbe | None
    providers: tuple[MeterProvider, ...]
    provider: MeterProvider | None
    stream: MetricStream
    exported: MetricSource
    host: HostStream | None
    alerts: AlertProcessor | None
    sinks: list[Sink]
    wiring: Wiring


def build(
    config: MonitoringConfig,
    *,
    views: Sequence[object] = (),
    metric_readers: Sequence[object] = (),
    metric_exporters: Sequence[object] = (),
    system_source: SystemSource | None = None,
) -> Pipeline:
    """Build every part ``config`` asks for; nothing is started.

    Raises:
        ConfigError: The configuration, a view, a reader or an exporter is invalid.
    """
    resource = make_resource(config)
    presentation = Presentation(
        cat.PROFILES[config.naming],
        views,
        default_bounds={
            cat.HTTP_REQUEST_DURATION.name: config.duration_buckets,
            cat.HTTP_REQUEST_SIZE.name: config.size_buckets,
            cat.HTTP_RESPONSE_SIZE.name: config.size_buckets,
        },
        exponential=_EXPONENTIAL if config.histograms == "exponential" else None,
    )
    if not config.enabled:
        stream = MetricStream((), None, resource)
        return Pipeline(resource, presentation, None, None, (), None, stream,
                        PresentedStream(stream, presentation.present), None, None, [],
                        Wiring())  # fmt: skip
    if config.tracing:
        from fluxstack_otel._internal.http.tracing import require_instrumentation

        require_instrumentation()
    readers = user_readers(config, metric_readers, metric_exporters)

    recorder = None
    if config.http_metrics:
        recorder = HttpRecorder(
            duration_buckets=presentation.recorded_bounds(cat.HTTP_REQUEST_DURATION.name),
            size_buckets=presentation.recorded_bounds(cat.HTTP_REQUEST_SIZE.name),
            max_series=config.max_series_per_metric,
            retention_period=config.retention_period,
            exponential=presentation.exponential(),
        )
    http_metrics = recorder.to_metrics if recorder is not None else None
    limits = cardinality_limits(config.max_series_per_metric)
    in_memory: list[InMemoryMetricReader] = []
    providers: list[MeterProvider] = []
    probe = None
    if config.system_metrics:
        system_reader = sdk_hooks.in_memory_reader(limits)
        system = MeterProvider(
            metric_readers=[system_reader], resource=resource, exemplar_filter=sdk_exemplar_filter()
        )
        probe = LoopLagProbe(window=config.collect_interval)
        register_system_metrics(
            system.get_meter(cat.SYSTEM_SCOPE), system_source or PsutilSource(), probe.value
        )
        in_memory.append(system_reader)
        providers.append(system)
    # Custom and third-party metrics get the same cap as the HTTP metrics.
    sdk_reader = sdk_hooks.in_memory_reader(limits, exponential=config.histograms == "exponential")
    provider = _provider([sdk_reader, *readers], resource, presentation)
    providers.append(provider)
    # The user's readers see the built-ins, presented, beside the SDK's own data.
    attach_readers(
        readers,
        PresentedStream(MetricStream(in_memory, http_metrics, resource), presentation.present),
    )
    stream = MetricStream(
        [*in_memory, sdk_reader],
        http_metrics,
        resource,
        retention=config.retention_period,
        version=None if recorder is None else recorder.version,
    )
    alerts = build_processor(
        config,
        stream.collect,
        collect_in=stream.collect_in,
        totals=None if recorder is None else recorder.totals,
    )
    context = SinkContext(
        config=config,
        stream=stream,
        extras=alerts.document_section,
        asynchronous=lambda: sdk_hooks.asynchronous_instruments(provider),
    )
    # Several workers on one host: the pull exporters serve the host's totals (multiprocess).
    host = None
    host_source: MetricSource = stream
    host_wide: frozenset[str] = frozenset()
    if config.multiprocess.enabled:
        from fluxstack_otel._internal.runtime.multiprocess.host import HOST_WIDE_SINKS, HostStream

        host_wide = HOST_WIDE_SINKS
        host = HostStream(stream, config.multiprocess.directory, config.collect_interval)
        host_source = host
    # The views apply on the way out: exporters see them, alerts read the built-in names.
    exported = context._replace(
        stream=PresentedStream(stream, presentation.present),
        http_version=None if recorder is None else recorder.version,
        http_series=None if recorder is None or not presentation.identity else recorder.series,
    )
    host_exported = (
        exported
        if host is None
        else context._replace(stream=PresentedStream(host_source, presentation.present))
    )
    sinks: list[Sink] = []
    for index, exporter in enumerate(config.exporters):
        if not exporter.enabled or isinstance(exporter, OtelExporterConfig):
            continue  # an otel entry is a reader of the user-facing provider (sinks/otel.py)
        factory = sink_factory(exporter.type)
        if factory is None:
            raise ConfigError(
                f"exporter type {exporter.type!r} is not available in this version; "
                f"available: {', '.join(SINK_TYPES)}",
                path=f"exporters[{index}].type",
            )
        shared = exporter.type in host_wide
        sinks.append(factory(exporter, host_exported if shared else exported))
    if host is not None:
        sinks.append(host)
    sinks.append(alerts)
    if config.dashboard.enabled:  # after the exporters: it reads a json endpoint if one is set
        from fluxstack_otel._internal.sinks.dashboard.sink import DashboardSink

        sinks.append(DashboardSink(config.dashboard, context._replace(stream=host_source)))
    wiring = _wiring(config, sinks, recorder, probe)
    return Pipeline(resource, presentation, recorder, probe, tuple(providers), provider, stream,
                    exported.stream, host, alerts, sinks, wiring)  # fmt: skip


def _provider(
    readers: Sequence[MetricReader], resource: Resource, presentation: Presentation
) -> MeterProvider:
    # The profile's views name built-ins only, which never live on this provider: the SDK gets
    # the user's views, which apply to custom and third-party instruments as the SDK defines.
    exemplar_filter = sdk_exemplar_filter()  # its ConfigError names the variable
    try:
        return MeterProvider(
            metric_readers=readers,
            resource=resource,
            views=presentation.user_views,
            exemplar_filter=exemplar_filter,
        )
    except Exception as exc:  # the SDK's own refusal: a reader registered elsewhere already
        raise ConfigError(
            f"the MeterProvider refused a reader: {exc}", path="metric_readers"
        ) from None


def _wiring(
    config: MonitoringConfig,
    sinks: list[Sink],
    recorder: HttpRecorder | None,
    probe: LoopLagProbe | None,
) -> Wiring:
    endpoint_keys = endpoint_paths(config)  # two endpoints on one path: ConfigError
    endpoints: dict[str, Endpoint] = {}
    for sink in sinks:
        endpoints.update(sink.endpoints())
    # Only endpoint paths meet the guard: requests to the app never pay for it.
    guard = None
    if config.auth.restricts:  # auth is imported only by apps that use it
        from fluxstack_otel._internal.sinks.auth import Guard, protect

        guard = Guard.from_config(config.auth)
        endpoints = protect(endpoints, guard)
    if config.endpoint_server.port is not None:  # served apart: the app keeps every path
        from fluxstack_otel._internal.sinks.endpoint_server import EndpointServer

        server = EndpointServer(endpoints, host=config.endpoint_server.host,
                                port=config.endpoint_server.port, guard=guard)  # fmt: skip
        sinks.append(server)  # started and stopped with the other sinks
        endpoints, endpoint_keys = {}, {}
    exclusions = Exclusions.compile(config.excluded_paths)
    in_flight = labels = None
    if recorder is not None:
        if config.labels:
            from fluxstack_otel._internal.http.labels import LabelReader

            labels = LabelReader(config.labels)
        if config.in_progress:
            from fluxstack_otel._internal.http.inflight import InFlight

            def keep(route: str) -> bool:
                if route == cat.UNMATCHED_ROUTE:
                    return config.record_unmatched
                return route not in exclusions.routes

            in_flight = InFlight(config.max_series_per_metric, keep)
        recorder.present_with(
            Labelling(
                label_names=labels.names if labels is not None else (),
                constant=config.constant_labels,
                group_status=config.group_status_codes,
                zero_errors=config.zero_error_series,
            ),
            in_flight.counts if in_flight is not None else None,
        )
    return Wiring(
        endpoints=endpoints,
        endpoint_keys=MappingProxyType(endpoint_keys),
        recorder=recorder,
        exclusions=exclusions,
        record_unmatched=config.record_unmatched,
        labels=labels,
        in_flight=in_flight,
        error_status=config.error_status_threshold,
        loop_probe=probe,
        slow_request_threshold=(
            config.thresholds.response_time if config.thresholds.slow_request_log else None
        ),
        tracing=config.tracing,
    )


_DEFAULT_SERVICE_NAME = MonitoringConfig().service_name


def make_resource(config: MonitoringConfig) -> Resource:
    """The resource of a pipeline: the SDK's, the environment's, a new instance id, the service."""
    instance = {"service.instance.id": str(uuid.uuid4())}
    if os.environ.get(OTEL_EXPERIMENTAL_RESOURCE_DETECTORS, "").strip():
        resource = Resource.create(instance)  # detectors to load: the SDK's own path
    else:
        # What Resource.create does when no detector is configured (the SDK's attributes, then
        # OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME), without the thread pool it starts to
        # run two in-memory detectors: 3-4 ms of start-up. A test pins the two as equal.
        sdk = {
            TELEMETRY_SDK_LANGUAGE: "python",
            TELEMETRY_SDK_NAME: "opentelemetry",
            TELEMETRY_SDK_VERSION: sdk_version,
        }
        resource = Resource(sdk).merge(OTELResourceDetector().detect()).merge(Resource(instance))
    # OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) names the service unless
    # the config says otherwise; the SDK's fallback is "unknown_service...".
    name = str(resource.attributes.get("service.name", ""))
    if (
        name
        and not name.startswith("unknown_service")
        and config.service_name == _DEFAULT_SERVICE_NAME
    ):
        return resource
    return resource.merge(Resource({"service.name": config.service_name}))
