"""The push exporters' side of the one periodic scheduler (``runtime/scheduler.py``).

A push exporter (console, file, JSON push, OTLP) is a ``PeriodicSink``: its only background work
is one ``PeriodicWorker`` on the process's scheduler. Each run collects fresh data, so nothing
queues up while a backend is down; an export that hangs delays only its own exporter.

Sinks that fall due together read one collection: each reads ``source.collect_in(tick.round)``,
which the first of them makes and the others share (``Round``); each derives its own
temporality (``DeltaView.peek(round)``) and encoding from it.

A run receives a ``Tick``: its deadline (the next interval, or the shutdown bound for the last run)
and an interruptible ``wait`` for retry backoff, so retries never overlap the next run and a stop
cuts them short. ``stop`` runs the task one last time (the flush) and returns within its timeout
whatever the task does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fluxstack_otel._internal.runtime.scheduler import PeriodicWorker, Round, Tick

if TYPE_CHECKING:
    from fluxstack_otel._internal.sinks.base import Endpoint

__all__ = ["PeriodicSink", "PeriodicWorker", "Round", "Tick"]


class PeriodicSink:
    """The sink contract for a push exporter whose only background work is one PeriodicWorker.

    Subclasses set ``_worker`` in ``__init__``; they serve no endpoint.
    """

    _worker: PeriodicWorker

    def endpoints(self) -> dict[str, Endpoint]:
        return {}

    def start(self) -> None:
        self._worker.start()

    def shutdown(self, timeout: float) -> None:
        self._worker.stop(timeout)
