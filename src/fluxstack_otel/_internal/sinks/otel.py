"""Any OpenTelemetry ``MetricReader`` or ``MetricExporter`` a user brings sees the whole stream.

``configure_monitoring(metric_readers=[...], metric_exporters=[...])``: each reader (an
``InMemoryMetricReader``, a ``PeriodicExportingMetricReader``, the ``PrometheusMetricReader`` of
``opentelemetry-exporter-prometheus``...) and each exporter (the SDK's ``ConsoleMetricExporter``,
a vendor's), wrapped in a ``PeriodicExportingMetricReader`` at the collect interval, joins the
user-facing MeterProvider. There it reads custom and third-party metrics as the SDK makes them
for it (its temporality, its aggregation, the user's views). Its every collection also carries
the built-ins (the six HTTP metrics and the six system metrics): the same presented data
``/metrics`` serves, turned into deltas where the reader prefers delta temporality for that
instrument kind. The built-in histograms keep the aggregation their views (or ``histograms``)
chose, whatever aggregation a reader prefers.

A user exporter never breaks the app nor the other sinks: what it raises is reported
(rate-limited log line, counted) and the export counts as failed; one that hangs holds only its
own reader's thread, and shutdown waits for it no longer than its bound.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ExponentialHistogram,
    Histogram,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)

from fluxstack_otel._internal.config.checks import join
from fluxstack_otel._internal.config.model import MonitoringConfig, OtelExporterConfig
from fluxstack_otel._internal.metrics import sdk_hooks
from fluxstack_otel._internal.metrics.assemble import one_resource
from fluxstack_otel._internal.metrics.stream import DeltaFor, DeltaView, MetricSource
from fluxstack_otel._internal.metrics.views import HTTP_SCOPE_NAME
from fluxstack_otel._internal.runtime.failures import report_failure
from fluxstack_otel.errors import ConfigError

__all__ = ["ENTRY_POINT_GROUP", "attach_readers", "load_exporter", "user_readers"]

ENTRY_POINT_GROUP = "opentelemetry_metrics_exporter"
"""Where installed packages declare their metric exporters (``OTEL_METRICS_EXPORTER`` names)."""


def user_readers(
    config: MonitoringConfig,
    metric_readers: Sequence[object],
    metric_exporters: Sequence[object],
) -> list[MetricReader]:
    """The readers to attach: the user's, one periodic reader per user exporter, then the
    ``otel`` exporter entries of the configuration.

    Raises:
        ConfigError: An entry is not a ``MetricReader`` (or not a ``MetricExporter``), or an
            ``otel`` entry names nothing installed (``load_exporter``).
    """
    readers: list[MetricReader] = _each_a(
        MetricReader,
        metric_readers,
        "metric_readers",
        "InMemoryMetricReader or PrometheusMetricReader",
    )
    exporters: list[MetricExporter] = _each_a(
        MetricExporter,
        metric_exporters,
        "metric_exporters",
        "ConsoleMetricExporter or OTLPMetricExporter",
    )
    # Every entry is checked before any periodic reader (and its thread) is made.
    readers.extend(_periodic(exporter, config.collect_interval) for exporter in exporters)
    for index, entry in enumerate(config.exporters):
        if isinstance(entry, OtelExporterConfig) and entry.enabled:
            path = f"exporters[{index}]"
            made = load_exporter(entry.exporter, dict(entry.options), path)
            if isinstance(made, MetricReader):
                readers.append(made)
            else:
                readers.append(_periodic(made, entry.interval or config.collect_interval))
    return readers


# type[object], not a TypeVar: mypy refuses an abstract class (both are) for a type[T].
def _each_a(kind: type[object], items: Sequence[object], path: str, examples: str) -> list[Any]:
    """``items``, each checked to be a ``kind`` (``examples`` names two, for the message)."""
    out: list[Any] = []
    for index, item in enumerate(items):
        if not isinstance(item, kind):
            raise ConfigError(
                f"expected an opentelemetry.sdk.metrics.export.{kind.__name__} (such as "
                f"{examples}), got {type(item).__name__}",
                path=f"{path}[{index}]",
            )
        out.append(item)
    return out


def _periodic(exporter: MetricExporter, interval: float) -> PeriodicExportingMetricReader:
    return PeriodicExportingMetricReader(Failsafe(exporter), export_interval_millis=interval * 1000)


def load_exporter(
    name: str, options: Mapping[str, Any], path: str
) -> MetricReader | MetricExporter:
    """The reader or exporter ``name`` names, built with ``options``.

    Args:
        name: An ``opentelemetry_metrics_exporter`` entry-point name (``console``,
            ``otlp_proto_http``, ``prometheus``...), or ``module:attribute``.
        options: Keyword arguments for its constructor.
        path: The configuration key, for errors.

    Raises:
        ConfigError: Nothing of that name is installed, or it is not a reader or exporter, or
            it refused the options.
    """
    # Imported here: importlib.metadata costs the default pipeline's start-up email and more.
    import importlib
    from importlib.metadata import entry_points

    if ":" in name:
        module, _, attribute = name.partition(":")
        try:
            factory: Any = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ConfigError(
                f"cannot load {name!r} ({type(exc).__name__}: {exc}); expected 'module:attribute'"
                " of an installed MetricExporter or MetricReader class",
                path=join(path, "exporter"),
            ) from None
    else:
        found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        if name not in found:
            installed = ", ".join(sorted(found)) or "none"
            raise ConfigError(
                f"no metric exporter named {name!r} is installed; installed: {installed}"
                " (or give 'module:attribute')",
                path=join(path, "exporter"),
            )
        try:
            factory = found[name].load()
        except Exception as exc:
            raise ConfigError(
                f"the installed exporter {name!r} failed to load: {type(exc).__name__}: {exc}",
                path=join(path, "exporter"),
            ) from None
    if not (isinstance(factory, type) and issubclass(factory, MetricReader | MetricExporter)):
        raise ConfigError(
            f"{name!r} is {factory!r}, not a MetricExporter or MetricReader class",
            path=join(path, "exporter"),
        )
    try:
        made: MetricReader | MetricExporter = factory(**options)
    except Exception as exc:
        raise ConfigError(
            f"{factory.__name__} refused the options {sorted(options)}: {type(exc).__name__}",
            path=join(path, "options"),
        ) from None
    return made


def attach_readers(readers: Sequence[MetricReader], builtins: MetricSource) -> None:
    """Make every collection of each registered reader carry the built-ins of ``builtins``."""
    for reader in readers:
        delta_for = _delta_for(sdk_hooks.reader_temporality(reader))
        collect = builtins.collect if delta_for is None else DeltaView(builtins, delta_for).collect
        sdk_hooks.wrap_collect(reader, _with_builtins(collect, type(reader).__name__))


def _delta_for(temporality: Any) -> DeltaFor | None:
    delta = AggregationTemporality.DELTA
    counter = temporality.get(sdk_hooks.COUNTER) == delta
    histogram = temporality.get(sdk_hooks.HISTOGRAM) == delta
    observed = temporality.get(sdk_hooks.OBSERVABLE_COUNTER) == delta
    if not (counter or histogram or observed):
        return None

    def delta_for(scope: str, metric: Metric) -> bool:
        if scope == HTTP_SCOPE_NAME:
            return bool(
                histogram if isinstance(metric.data, Histogram | ExponentialHistogram) else counter
            )
        return bool(observed)

    return delta_for


def _with_builtins(
    builtins: Callable[[], MetricsData], reader: str
) -> Callable[[sdk_hooks.Collect], sdk_hooks.Collect]:
    def wrap(original: sdk_hooks.Collect) -> sdk_hooks.Collect:
        def collect(*args: Any, **kwargs: Any) -> MetricsData | None:
            data = original(*args, **kwargs)
            try:
                ours = builtins()
            except Exception:
                report_failure(f"collecting the built-in metrics for a {reader}")
                return data
            return _merged(ours, data)

        return collect

    return wrap


def _merged(ours: MetricsData, sdk: MetricsData | None) -> MetricsData:
    scopes = [sm for rm in ours.resource_metrics for sm in rm.scope_metrics]
    resource = ours.resource_metrics[0].resource if ours.resource_metrics else None
    schema = ""
    if sdk is not None:
        for rm in sdk.resource_metrics:
            scopes.extend(rm.scope_metrics)
            resource = resource or rm.resource
            schema = schema or rm.schema_url
    if resource is None:
        return MetricsData(resource_metrics=[])
    return one_resource(resource, scopes, schema)


class Failsafe(MetricExporter):
    """A user's exporter whose failures are reported and counted, never raised.

    Args:
        inner: The exporter; its preferred temporality and aggregation are this one's.
    """

    def __init__(self, inner: MetricExporter) -> None:
        temporality, aggregation = sdk_hooks.exporter_preferences(inner)
        super().__init__(preferred_temporality=temporality, preferred_aggregation=aggregation)
        self._inner = inner
        self._name = type(inner).__name__

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        """Export through the inner exporter; a raise is a reported failure."""
        try:
            return self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception:
            report_failure(f"exporting metrics with the {self._name}")
            return MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Flush the inner exporter; a raise is a reported failure."""
        try:
            return self._inner.force_flush(timeout_millis=timeout_millis)
        except Exception:
            report_failure(f"flushing the {self._name}")
            return False

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Shut the inner exporter down; a raise is a reported failure."""
        try:
            self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)
        except Exception:
            report_failure(f"shutting down the {self._name}")
