"""``configure_monitoring`` and the ``Monitoring`` handle: build the pipeline, own its lifecycle.

``pipeline.build`` assembles the parts (resource, views, recorder, MeterProviders, stream,
sinks, the middleware's wiring); a ``Monitoring`` starts them, hands them to the middleware, and
stops them once, within a bound. Tests and apps may build as many independent instances as they like; each has its own private
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
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from opentelemetry.metrics import Meter, NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader, MetricsData
from opentelemetry.sdk.metrics.view import View
from opentelemetry.trace import TracerProvider

from fluxstack_otel._internal.asgi_types import ASGIApp
from fluxstack_otel._internal.config.model import MonitoringConfig
from fluxstack_otel._internal.config.sources import resolve
from fluxstack_otel._internal.http.middleware import MonitoringMiddleware
from fluxstack_otel._internal.http.recorder import HttpRecorder
from fluxstack_otel._internal.metrics import global_provider as _global
from fluxstack_otel._internal.metrics.custom import CustomMetrics
from fluxstack_otel._internal.pipeline import Pipeline, Wiring, build, make_resource
from fluxstack_otel._internal.runtime.failures import report_failure
from fluxstack_otel._internal.runtime.fork import call_in_child, reset_meter_provider
from fluxstack_otel._internal.runtime.system import SystemSource
from fluxstack_otel._internal.sinks.alerts import Alert, AlertCallback
from fluxstack_otel._internal.sinks.base import Sink
from fluxstack_otel._internal.sinks.prometheus.reuse import Exposition
from fluxstack_otel._internal.sinks.prometheus.sink import (
    PrometheusSink,
    RenderOptions,
    prometheus_options,
)

if TYPE_CHECKING:
    import asyncio

    from fluxstack_otel._internal.runtime.multiprocess.host import HostStream
    from fluxstack_otel._internal.sinks.endpoint_server import EndpointServer

__all__ = ["ConfigSource", "Monitoring", "configure_monitoring"]

_log = logging.getLogger("fluxstack_otel")

ConfigSource: TypeAlias = MonitoringConfig | Mapping[str, Any] | str | os.PathLike[str] | None


class Monitoring(CustomMetrics):
    """A configured monitoring pipeline. Create it with ``configure_monitoring``.

    The custom-metric helpers (``counter``, ``histogram``, ...) come from ``CustomMetrics``.

    Attributes:
        config: The validated configuration in force.
    """

    def __init__(
        self,
        config: MonitoringConfig,
        *,
        views: Sequence[View] = (),
        metric_readers: Sequence[MetricReader] = (),
        metric_exporters: Sequence[MetricExporter] = (),
        system_source: SystemSource | None = None,
    ) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._closed = False
        self._p: Pipeline = build(
            config,
            views=views,
            metric_readers=metric_readers,
            metric_exporters=metric_exporters,
            system_source=system_source,
        )
        if not config.enabled:
            return
        try:
            if config.set_global and config.custom_metrics and self._p.provider is not None:
                _global.claim(self, self._p.provider, name=repr(self))
            for sink in self._p.sinks:
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
        provider = self._p.provider
        if provider is None or not self.config.custom_metrics:
            return NoOpMeterProvider().get_meter("fluxstack_otel.custom")
        return provider.get_meter("fluxstack_otel.custom")

    @property
    def views(self) -> tuple[View, ...]:
        """The views that shape what leaves: the naming profile's, then the ones given."""
        return self._p.presentation.views

    @property
    def prometheus_servers(self) -> tuple[EndpointServer, ...]:
        """The standalone Prometheus servers started for exporters with a ``port``."""
        return tuple(
            s.server
            for s in self._p.sinks
            if isinstance(s, PrometheusSink) and s.server is not None
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
        """Collect every metric now, as cumulative OpenTelemetry data shaped by the views."""
        return self._p.exported.collect()

    def on_alert(self, fn: AlertCallback, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Call ``fn(alert)`` when an alert fires (and repeats) and when it resolves.

        Args:
            fn: A function or coroutine function taking an ``Alert``; it runs in the alert
                thread, and what it raises is logged and counted, never propagated.
            loop: Where an async ``fn`` is scheduled; without one it runs with ``asyncio.run``.
        """
        if self._p.alerts is not None:
            self._p.alerts.on_alert(fn, loop=loop)

    def alerts(self) -> list[Alert]:
        """The pending and firing alerts as of the last evaluation (see docs/alerts.md)."""
        return [] if self._p.alerts is None else self._p.alerts.alerts()

    def render_prometheus(self, *, openmetrics: bool = False) -> bytes:
        """The exposition ``/metrics`` would serve now (text 0.0.4, or OpenMetrics)."""
        p = self._p
        series = p.recorder.series if p.recorder is not None and p.presentation.identity else None
        return Exposition(p.exported.collect, None, self._render_options(), series).fresh(
            openmetrics
        )

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop background work and release resources. Idempotent; bounded by ``timeout``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._p.probe is not None:
            self._p.probe.stop()
        # Sinks stop side by side: a hanging backend must not eat the others' flush time, and the
        # whole shutdown stays within ``timeout`` however many exporters there are.
        threads = [
            threading.Thread(target=_shutdown_sink, args=(sink, timeout), daemon=True)
            for sink in self._p.sinks
        ]
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        _global.release(self)
        for provider in self._p.providers:
            try:
                provider.shutdown(timeout_millis=max(0.05, deadline - time.monotonic()) * 1000)
            except Exception:
                report_failure("shutting down a MeterProvider")

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("enabled" if self.config.enabled else "disabled")
        return f"<Monitoring service={self.config.service_name!r} {state}>"

    # --- parts the middleware and the tests read ------------------------------------------

    def _wiring(self) -> Wiring:
        return self._p.wiring

    @property
    def _sinks(self) -> list[Sink]:
        return self._p.sinks

    @property
    def _recorder(self) -> HttpRecorder | None:
        return self._p.recorder

    @property
    def _host(self) -> HostStream | None:
        return self._p.host

    @property
    def _provider(self) -> MeterProvider | None:
        return self._p.provider

    def _render_options(self) -> RenderOptions:
        return prometheus_options(self.config)

    def _after_fork_in_child(self) -> None:
        # The child must not report the parent's counts or identity, nor rely on its threads.
        if self._closed:
            return
        p = self._p
        resource = make_resource(self.config)
        if p.recorder is not None:
            p.recorder.reset()
        if p.probe is not None:
            p.probe.reset_after_fork()
        for provider in p.providers:
            reset_meter_provider(provider)  # custom metrics counted before the fork
        p.stream.set_resource(resource)
        if p.host is not None:
            p.host.after_fork()


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


def configure_monitoring(
    config: ConfigSource = None,
    *,
    views: Sequence[View] = (),
    metric_readers: Sequence[MetricReader] = (),
    metric_exporters: Sequence[MetricExporter] = (),
) -> Monitoring:
    """Validate the configuration and build a monitoring pipeline.

    The configuration is resolved from every source, per top-level key: this argument >
    the environment (``FLUXSTACK_MONITORING_*``, the FluxStack and ``OTEL_*`` variables) > the
    config file (``FLUXSTACK_CONFIG``, or ``pyproject.toml``) > the defaults
    (docs/configuration.md). A ``MonitoringConfig`` argument is complete: nothing else is read.

    Args:
        config: A mapping (native snake_case in seconds, or the FluxStack plugin's camelCase in
            milliseconds), a ``MonitoringConfig``, a path to a ``.toml``/``.json`` file, or None
            for the defaults (HTTP and system metrics, Prometheus at ``/metrics``).
        views: OpenTelemetry ``View`` objects, applied after the naming profile's: to the
            built-ins, selected by the name they are exported under, and by the SDK to custom
            and third-party instruments (docs/views.md).
        metric_readers: OpenTelemetry ``MetricReader`` objects; each sees the whole stream,
            the built-ins included, as ``/metrics`` does.
        metric_exporters: OpenTelemetry ``MetricExporter`` objects; each receives the whole
            stream every collect interval, in the temporality it prefers.

    Returns:
        The ``Monitoring`` handle: ``instrument(app)``, ``shutdown()``, ``collect()``...

    Raises:
        ConfigError: The configuration is invalid; the message names the key path, the value
            and what is allowed.
    """
    return Monitoring(
        resolve(config).config,
        views=views,
        metric_readers=metric_readers,
        metric_exporters=metric_exporters,
    )
