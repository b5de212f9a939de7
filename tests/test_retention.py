"""Retention covers custom and third-party series too: idle ones leave, and return as new."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from fluxstack_otel._internal.metrics.stream import MetricStream
from support.clocks import FakeWallClock
from support.metricdata import collected_points

_S = 10**9


class Retained(NamedTuple):
    provider: MeterProvider
    wall: FakeWallClock
    stream: MetricStream


@pytest.fixture
def retained() -> Iterator[Retained]:
    """An SDK provider read by a stream that retains idle series 60 s, on a clock the test moves."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    wall = FakeWallClock(1_700_000_000 * _S)
    stream = MetricStream([reader], None, Resource({}), retention=60.0, wall_clock_ns=wall)
    yield Retained(provider, wall, stream)
    provider.shutdown()


def test_an_idle_custom_counter_leaves_and_returns_with_only_its_new_counts(
    retained: Retained,
) -> None:
    """Unchanged for the period: gone; then +2: back with value 2 and a start at its return."""
    provider, wall, stream = retained
    orders = provider.get_meter("app").create_counter("orders")
    busy = provider.get_meter("app").create_counter("busy")
    orders.add(5, {"shop": "a"})
    busy.add(1)
    assert [p.value for p in collected_points(stream.collect(), "orders")] == [5]  # type: ignore[attr-defined]
    wall.ns += 61 * _S
    busy.add(1)  # another series keeps changing: it stays
    data = stream.collect()
    assert collected_points(data, "orders") == []
    assert [p.value for p in collected_points(data, "busy")] == [2]  # type: ignore[attr-defined]
    wall.ns += 5 * _S
    returned_at = wall.ns
    orders.add(2, {"shop": "a"})
    (back,) = collected_points(stream.collect(), "orders")
    assert back.value == 2  # type: ignore[attr-defined]
    assert back.start_time_unix_nano == returned_at  # type: ignore[attr-defined]
    wall.ns += 10 * _S
    orders.add(1, {"shop": "a"})
    (later,) = collected_points(stream.collect(), "orders")
    assert later.value == 3  # type: ignore[attr-defined]
    assert later.start_time_unix_nano == returned_at  # type: ignore[attr-defined]
    wall.ns += 61 * _S  # idle again: leaves again
    assert collected_points(stream.collect(), "orders") == []


def test_an_idle_gauge_leaves_and_returns_as_it_is(retained: Retained) -> None:
    """A gauge unchanged for the period leaves; set again, it is back with its value."""
    provider, wall, stream = retained
    queue = provider.get_meter("app").create_gauge("queue.depth")
    queue.set(7)
    assert [p.value for p in collected_points(stream.collect(), "queue.depth")] == [7]  # type: ignore[attr-defined]
    wall.ns += 61 * _S
    assert collected_points(stream.collect(), "queue.depth") == []
    queue.set(3)
    assert [p.value for p in collected_points(stream.collect(), "queue.depth")] == [3]  # type: ignore[attr-defined]
