"""``configure_monitoring`` and the ``Monitoring`` handle: build the pipeline, own its lifecycle.

One ``Monitoring`` owns: the resource, an SDK ``MeterProvider`` (system and custom metrics) with
one cumulative reader, the HTTP recorder, the metric stream, the sinks, and the event-loop probe.
Tests and apps may build as many independent instances as they like; each has its own private
Prometheus exposition. The one shared thing is opt-out: with ``set_global`` (the default) a live
Monitoring also provides the process-wide OpenTelemetry MeterProvider, one at a time (``_global``).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
import uuid
import weakref
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

from opentelemetry.metrics import Meter, NoOpMeterProvider
from opentelemetry.sdk.environment_variables import OTEL_EXPERIMENTAL_RESOURCE_DETECTORS
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.resources import (
    TELEMETRY_SDK_LANGUAGE,
    TELEMETRY_SDK_NAME,
    TELEMETRY_SDK_VERSION,
    OTELResourceDetector,
    Resource,
)
from opentelemetry.sdk.version import __version__ as sdk_version
from opentelemetry.trace import TracerProvider

from fluxstack_otel._internal.config.model import MonitoringConfig, PrometheusExporterConfig
from fluxstack_otel._internal.config.sources import resolve
from fluxstack_otel._internal.http.middleware import ASGIApp, MonitoringMiddleware
from fluxstack_otel._internal.http.recorder import HttpRecorder
from fluxstack_otel._internal.metrics import global_provider as _global
from fluxstack_otel._internal.metrics.catalog import PROFILES, SYSTEM_SCOPE
from fluxstack_otel._internal.metrics.custom import CustomMetrics, cardinality_limits
from fluxstack_otel._internal.metrics.exemplars import sdk_exemplar_filter
from fluxstack_otel._internal.metrics.naming import PresentedStream, present
from fluxstack_otel._internal.metrics.stream import MetricStream
from fluxstack_otel._internal.runtime.failures import report_failure
from fluxstack_otel._internal.runtime.fork import call_in_child, reset_meter_provider
from fluxstack_otel._internal.runtime.looplag import LoopLagProbe
from fluxstack_otel._internal.runtime.system import (
    PsutilSource,
    SystemSource,
    register_system_metrics,
)
from fluxstack_otel._internal.sinks.alerts import (
    Alert,
    AlertCallback,
    AlertProcessor,
    build_processor,
)
from fluxstack_otel._internal.sinks.base import Endpoint, Sink, SinkContext
from fluxstack_otel._internal.sinks.prometheus.sink import PrometheusSink, RenderOptions, render
from fluxstack_otel._internal.sinks.registry import SINK_TYPES, sink_factory
from fluxstack_otel.errors import ConfigError

if TYPE_CHECKING:
    import asyncio

    from fluxstack_otel._internal.runtime.multiprocess.host import HostStream
    from fluxstack_otel._internal.sinks.prometheus.server import PrometheusServer

__all__ = ["ConfigSource", "Monitoring", "configure_monitoring"]

_log = logging.getLogger("fluxstack_otel")

ConfigSource: TypeAlias = MonitoringConfig | Mapping[str, Any] | str | os.PathLike[str] | None


class _Wiring(NamedTuple):
    """What the middleware needs, precomputed once so the request path only reads attributes."""

    endpoints: Mapping[str, Endpoint] = MappingProxyType({})
    recorder: HttpRecorder | None = None
    excluded_exact: frozenset[str] = frozenset()
    excluded_prefixes: tuple[str, ...] = ()
    error_status: int = 500
    loop_probe: LoopLagProbe | None = None
    slow_request_threshold: float | None = None
    tracing: bool = False


class Monitoring(CustomMetrics):
    """A configured monitoring pipeline. Create it with ``configure_monitoring``.

    The custom-metric helpers (``counter``, ``histogram``, ...) come from ``CustomMetrics``.

    Attributes:
        config: The validated configuration in force.
    """

    def __init__(
        self, config: MonitoringConfig, *, system_source: SystemSource | None = None
    ) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._closed = False
        self._sinks: list[Sink] = []
        self._wiring_cache = _Wiring()
        self._provider: MeterProvider | None = None
        self._recorder: HttpRecorder | None = None
        self._probe: LoopLagProbe | None = None
        self._host: HostStream | None = None
        self._alerts: AlertProcessor | None = None
        self._resource = _make_resource(config)
        self._profile = PROFILES[config.naming]
        if not config.enabled:
            self._stream = MetricStream(None, None, self._resource)
            return
        if config.tracing:
            from fluxstack_otel._internal.http.tracing import require_instrumentation

            require_instrumentation()

        if config.http_metrics:
            self._recorder = HttpRecorder(
                duration_buckets=config.duration_buckets,
                size_buckets=config.size_buckets,
                max_series=config.max_series_per_metric,
                retention_period=config.retention_period,
            )
        # Custom and third-party metrics get the same cap as the HTTP metrics.
        reader = InMemoryMetricReader(
            cardinality_limits=cardinality_limits(config.max_series_per_metric)
        )
        self._provider = MeterProvider(
            metric_readers=[reader], resource=self._resource, exemplar_filter=sdk_exemplar_filter()
        )
        if config.system_metrics:
            self._probe = LoopLagProbe(window=config.collect_interval)
            register_system_metrics(
                self._provider.get_meter(SYSTEM_SCOPE),
                system_source or PsutilSource(),
                self._probe.value,
            )
        self._stream = MetricStream(
            reader,
            self._recorder.to_metrics if self._recorder is not None else None,
            self._resource,
        )
        self._alerts = build_processor(config, self._stream.collect)
        context = SinkContext(
            config=config, stream=self._stream, extras=self._alerts.document_section
        )
        # Several workers on one host: the pull exporters serve the host's totals (_multiprocess).
        host_context = context
        host_wide: frozenset[str] = frozenset()
        if config.multiprocess.enabled:
            from fluxstack_otel._internal.runtime.multiprocess.host import (
                HOST_WIDE_SINKS,
                HostStream,
            )

            host_wide = HOST_WIDE_SINKS
            self._host = HostStream(
                self._stream, config.multiprocess.directory, config.collect_interval
            )
            host_context = SinkContext(config=config, stream=self._host, extras=context.extras)
        # The naming profile applies on the way out: exporters see it, alerts read the built-in
        # names (_naming.py).
        exported, host_exported = context, host_context
        if not self._profile.identity:
            exported = context._replace(stream=PresentedStream(context.stream, self._profile))
            host_exported = host_context._replace(
                stream=PresentedStream(host_context.stream, self._profile)
            )
        for index, exporter in enumerate(config.exporters):
            if not exporter.enabled:
                continue
            factory = sink_factory(exporter.type)
            if factory is None:
                raise ConfigError(
                    f"exporter type {exporter.type!r} is not available in this version; "
                    f"available: {', '.join(SINK_TYPES)}",
                    path=f"exporters[{index}].type",
                )
            shared = exporter.type in host_wide
            self._sinks.append(factory(exporter, host_exported if shared else exported))
        if self._host is not None:
            self._sinks.append(self._host)
        self._sinks.append(self._alerts)
        if config.dashboard.enabled:  # after the exporters: it reads a json endpoint if one is set
            from fluxstack_otel._internal.sinks.dashboard.sink import DashboardSink

            self._sinks.append(DashboardSink(config.dashboard, host_context))
        self._wiring_cache = self._build_wiring()
        try:
            if config.set_global and config.custom_metrics:
                _global.claim(self, self._provider, name=repr(self))
            for sink in self._sinks:
                sink.start()
        except BaseException:
            self.shutdown()
            raise
        call_in_child(self._after_fork_in_child)
        # The final flush of every exporter when the app does not call shutdown() itself
        # (idempotent, so both are fine): at interpreter exit, and on SIGTERM (docs/reliability.md).
        atexit.register(_shutdown_at_exit, weakref.ref(self))
        _flush_on_sigterm(self)

    # --- public API -------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """False when configured with ``enabled: false`` (everything is a no-op)."""
        return self.config.enabled

    @property
    def meter(self) -> Meter:
        """A standard OpenTelemetry ``Meter`` whose instruments reach every exporter."""
        if self._provider is None or not self.config.custom_metrics:
            return NoOpMeterProvider().get_meter("fluxstack_otel.custom")
        return self._provider.get_meter("fluxstack_otel.custom")

    @property
    def prometheus_servers(self) -> tuple[PrometheusServer, ...]:
        """The standalone Prometheus servers started for exporters with a ``port``."""
        return tuple(
            s.server for s in self._sinks if isinstance(s, PrometheusSink) and s.server is not None
        )

    def instrument(self, app: ASGIApp, *, tracer_provider: TracerProvider | None = None) -> ASGIApp:
        """Wrap an ASGI app: HTTP metrics plus the monitoring endpoints (``/metrics``).

        With ``enabled: false`` the app is returned unchanged.

        Args:
            app: The ASGI app.
            tracer_provider: With ``tracing: true``, where server spans go (default: the global
                ``TracerProvider``).
        """
        if not self.config.enabled:
            return app
        return MonitoringMiddleware(app, monitoring=self, tracer_provider=tracer_provider)

    def collect(self) -> MetricsData:
        """Collect every metric now, as cumulative OpenTelemetry data named by ``naming``."""
        return present(self._stream.collect(), self._profile)

    def on_alert(self, fn: AlertCallback, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Call ``fn(alert)`` when an alert fires (and repeats) and when it resolves.

        Args:
            fn: A function or coroutine function taking an ``Alert``; it runs in the alert
                thread, and what it raises is logged and counted, never propagated.
            loop: Where an async ``fn`` is scheduled; without one it runs with ``asyncio.run``.
        """
        if self._alerts is not None:
            self._alerts.on_alert(fn, loop=loop)

    def alerts(self) -> list[Alert]:
        """The pending and firing alerts as of the last evaluation (see docs/alerts.md)."""
        return [] if self._alerts is None else self._alerts.alerts()

    def render_prometheus(self, *, openmetrics: bool = False) -> bytes:
        """The exposition ``/metrics`` would serve now (text 0.0.4, or OpenMetrics)."""
        return render(self.collect(), openmetrics=openmetrics, options=self._render_options())

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop background work and release resources. Idempotent; bounded by ``timeout``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._probe is not None:
            self._probe.stop()
        # Sinks stop side by side: a hanging backend must not eat the others' flush time, and the
        # whole shutdown stays within ``timeout`` however many exporters there are.
        threads = [
            threading.Thread(target=_shutdown_sink, args=(sink, timeout), daemon=True)
            for sink in self._sinks
        ]
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        _global.release(self)
        if self._provider is not None:
            try:
                self._provider.shutdown(timeout_millis=timeout * 1000)
            except Exception:
                report_failure("shutting down the MeterProvider")

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("enabled" if self.config.enabled else "disabled")
        return f"<Monitoring service={self.config.service_name!r} {state}>"

    # --- wiring -----------------------------------------------------------------------------

    def _wiring(self) -> _Wiring:
        return self._wiring_cache

    def _prometheus_configs(self) -> list[PrometheusExporterConfig]:
        return [
            e
            for e in self.config.exporters
            if isinstance(e, PrometheusExporterConfig) and e.enabled
        ]

    def _render_options(self) -> RenderOptions:
        configs = self._prometheus_configs()
        first = configs[0] if configs else PrometheusExporterConfig()
        return RenderOptions(target_info=first.target_info, scope_labels=first.scope_labels)

    def _build_wiring(self) -> _Wiring:
        config = self.config
        endpoints: dict[str, Endpoint] = {}
        for sink in self._sinks:
            endpoints.update(sink.endpoints())
        # Only endpoint paths meet the guard: requests to the app never pay for it.
        guard = None
        if config.auth.restricts:  # _auth is imported only by apps that use it
            from fluxstack_otel._internal.sinks.auth import Guard, protect

            guard = Guard.from_config(config.auth)
            endpoints = protect(endpoints, guard)
        if config.endpoint_server.port is not None:  # served apart: the app keeps every path
            from fluxstack_otel._internal.sinks.endpoint_server import EndpointServer

            server = EndpointServer(endpoints, host=config.endpoint_server.host,
                                    port=config.endpoint_server.port, guard=guard)  # fmt: skip
            self._sinks.append(server)  # started and stopped with the other sinks
            endpoints = {}
        exact = frozenset(p for p in config.excluded_paths if not p.endswith("*"))
        prefixes = tuple(p[:-1] for p in config.excluded_paths if p.endswith("*"))
        return _Wiring(
            endpoints=endpoints,
            recorder=self._recorder,
            excluded_exact=exact,
            excluded_prefixes=prefixes,
            error_status=config.error_status_threshold,
            loop_probe=self._probe,
            slow_request_threshold=(
                config.thresholds.response_time if config.thresholds.slow_request_log else None
            ),
            tracing=config.tracing,
        )

    def _after_fork_in_child(self) -> None:
        # The child must not report the parent's counts or identity, nor rely on its threads.
        if self._closed:
            return
        self._resource = _make_resource(self.config)
        if self._recorder is not None:
            self._recorder.reset()
        if self._probe is not None:
            self._probe.reset_after_fork()
        if self._provider is not None:
            reset_meter_provider(self._provider)  # custom metrics counted before the fork
        self._stream.set_resource(self._resource)
        if self._host is not None:
            self._host.after_fork()


def _shutdown_at_exit(ref: weakref.ref[Monitoring]) -> None:
    instance = ref()
    if instance is not None:
        instance.shutdown()


_live: weakref.WeakSet[Monitoring] = weakref.WeakSet()
_sigterm_hooked = False
_SIGTERM_BOUND = 6.0  # shutdown()'s default 5 s bound, plus a margin


def _flush_on_sigterm(monitoring: Monitoring) -> None:
    """Flush ``monitoring`` on SIGTERM, then let the signal do what it would have done.

    Servers that stop gracefully on SIGTERM (uvicorn) restore the handler they found and raise
    the signal again once the app has stopped, so the process dies by the signal and atexit never
    runs: this handler is where the flush happens. It is installed only over the default action,
    from the main thread; a handler someone else installed is left alone.
    """
    global _sigterm_hooked
    _live.add(monitoring)
    if _sigterm_hooked or threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
            _sigterm_hooked = True
    except (AttributeError, OSError, ValueError):  # a platform without SIGTERM
        pass


def _on_sigterm(signum: int, frame: object) -> None:
    # In a thread: the main thread may have been interrupted holding a lock the flush needs, and
    # the join below bounds the wait instead of deadlocking.
    flushes = [
        threading.Thread(target=m.shutdown, name="fluxstack-otel-sigterm", daemon=True)
        for m in list(_live)
    ]
    deadline = time.monotonic() + _SIGTERM_BOUND
    for flush in flushes:
        flush.start()
    for flush in flushes:
        flush.join(max(0.0, deadline - time.monotonic()))
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.raise_signal(signal.SIGTERM)


def _shutdown_sink(sink: Sink, timeout: float) -> None:
    try:
        sink.shutdown(timeout)
    except Exception:
        report_failure(f"shutting down the {type(sink).__name__}")


_DEFAULT_SERVICE_NAME = MonitoringConfig().service_name


def _make_resource(config: MonitoringConfig) -> Resource:
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


def configure_monitoring(config: ConfigSource = None) -> Monitoring:
    """Validate the configuration and build a monitoring pipeline.

    The configuration is resolved from every source, per top-level key: this argument >
    the environment (``FLUXSTACK_MONITORING_*``, the FluxStack and ``OTEL_*`` variables) > the
    config file (``FLUXSTACK_CONFIG``, or ``pyproject.toml``) > the defaults
    (docs/configuration.md). A ``MonitoringConfig`` argument is complete: nothing else is read.

    Args:
        config: A mapping (native snake_case in seconds, or the FluxStack plugin's camelCase in
            milliseconds), a ``MonitoringConfig``, a path to a ``.toml``/``.json`` file, or None
            for the defaults (HTTP and system metrics, Prometheus at ``/metrics``).

    Returns:
        The ``Monitoring`` handle: ``instrument(app)``, ``shutdown()``, ``collect()``...

    Raises:
        ConfigError: The configuration is invalid; the message names the key path, the value
            and what is allowed.
    """
    return Monitoring(resolve(config).config)
