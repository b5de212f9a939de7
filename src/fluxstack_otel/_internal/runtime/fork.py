"""After ``fork()``: the SDK's aggregations start empty in the child.

A pre-fork server (gunicorn) builds the pipeline in the master, sometimes imports the app there
too (``preload_app``), and forks the workers. The OpenTelemetry SDK re-creates its provider's
locks in a forked child and refreshes the process part of the resource, but keeps every
aggregation: a counter the master incremented before the fork would start at the master's value
in every worker, and each worker would export it as its own. Cumulative temporality makes that
a permanent over-count.

``call_in_child`` is how a part of the pipeline learns it is in a forked child (its threads are
gone, its locks may be held): the one registration of its ``_after_fork_in_child`` method.

``reset_meter_provider`` empties the aggregations of a ``MeterProvider``'s storage in the child,
so a worker's SDK series start at its fork, with start times of their own. Instruments stay
valid (app code keeps the counters it created before the fork) and the next measurement creates
a fresh aggregation. The locks on the way are re-created too: one held by another thread at fork
time would otherwise stay held forever in the child.

This reaches into SDK internals (``_measurement_consumer._reader_storages`` ->
``_instrument_view_instrument_matches`` -> ``_attributes_aggregation``), the same objects in
every SDK release since 1.12; when they are not found it reports the failure (a worker would
then carry the master's counts) instead of raising, and ``tests/test_workers_fork.py`` fails.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider

from fluxstack_otel._internal.runtime.failures import report_failure

__all__ = ["call_in_child", "reset_meter_provider"]

_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


def call_in_child(method: Callable[[], None]) -> None:
    """Call the bound ``method`` in every forked child, for as long as its object lives.

    The registration holds only a weak reference: it keeps nothing alive, and after the object is
    collected a fork calls nothing.
    """
    ref = weakref.WeakMethod(method)

    def after_in_child() -> None:
        bound = ref()
        if bound is not None:
            bound()

    os.register_at_fork(after_in_child=after_in_child)


def _fresh_locks(obj: object) -> None:
    """Replace every lock attribute of ``obj`` with a new, released one of the same kind."""
    for name, value in list(getattr(obj, "__dict__", {}).items()):
        if isinstance(value, _LOCK_TYPES):
            reentrant = isinstance(value, type(threading.RLock()))
            setattr(obj, name, threading.RLock() if reentrant else threading.Lock())


def reset_meter_provider(provider: MeterProvider) -> bool:
    """In a forked child: forget every value the SDK aggregated before the fork.

    Args:
        provider: The provider whose storage is reset.

    Returns:
        True when the storage was found and reset; False (reported, not raised) otherwise.
    """
    try:
        consumer: Any = provider._measurement_consumer
        _fresh_locks(consumer)
        for storage in consumer._reader_storages.values():
            _fresh_locks(storage)
            for matches in storage._instrument_view_instrument_matches.values():
                for match in matches:
                    _fresh_locks(match)
                    match._attributes_aggregation = {}
                    match._previous_collection_start_nanos = None
        for meter in provider._meters.values():
            _fresh_locks(meter)
        for reader in provider._metric_readers:
            _fresh_locks(reader)
    except (AttributeError, TypeError):
        report_failure("resetting the SDK's metric state after fork (an unknown SDK version)")
        return False
    return True
