"""Alert rates divide by the interval between the readings they use, not around the collection."""

from __future__ import annotations

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Metric,
    MetricsData,
    NumberDataPoint,
    Sum,
)

from fluxstack_otel._internal.config.model import load_config
from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.sinks.alerts.evaluate import values_of
from fluxstack_otel._internal.sinks.alerts.snapshot import take_sample
from fluxstack_otel.alerts import compile_rules
from support.metricdata import collection

CPU = cat.PROCESS_CPU_USER.name
NO_THRESHOLDS = {"response_time": None, "error_rate": None, "memory_usage": None}


def _cpu_collection(seconds: float, read_at: float) -> MetricsData:
    """A collection whose CPU counter says it was read at ``read_at`` (Unix seconds), on 1 CPU."""
    point = NumberDataPoint(
        attributes={}, start_time_unix_nano=1, time_unix_nano=int(read_at * 1e9), value=seconds
    )
    cores = Metric(
        name=cat.SYSTEM_CPU_CORES.name,
        description="",
        unit="{cpu}",
        data=Gauge(
            data_points=[
                NumberDataPoint(
                    attributes={}, start_time_unix_nano=0, time_unix_nano=point.time_unix_nano,
                    value=1.0,
                )
            ]
        ),
    )  # fmt: skip
    metric = Metric(
        name=CPU,
        description="",
        unit="s",
        data=Sum(
            data_points=[point],
            aggregation_temporality=AggregationTemporality.CUMULATIVE,
            is_monotonic=True,
        ),
    )
    return collection({cat.SYSTEM_SCOPE: [metric, cores]})


def test_the_cpu_rate_uses_the_counter_readings_own_times() -> None:
    """Clock 1000 s then 1010 s, CPU read 0.5 s and 4.5 s after each: 14 s of CPU is 100 % of 1 CPU."""
    config = load_config(
        {"thresholds": {**NO_THRESHOLDS, "cpu_usage": 0.5}, "alert_evaluation_interval": 5}
    )
    (cpu_rule,) = [r for r in compile_rules(config) if r.name == "HighCpuUsage"]
    names = {m.name for m in cpu_rule.metrics}
    first = take_sample(1000.0, _cpu_collection(100.0, read_at=1000.5), names)
    # A slow collection: the counter was read 4.5 s after the clock reading of the sample.
    second = take_sample(1010.0, _cpu_collection(114.0, read_at=1014.5), names)
    (value,) = values_of(cpu_rule, [first, second]).values()
    assert value == 1.0  # 14 CPU seconds over the 14 s between the readings, not over 10 s
