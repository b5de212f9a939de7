"""The hot-path HTTP recorder: per-series accumulators, no OpenTelemetry call per request.

One request is one ``record()`` call, which appends one tuple to a queue; the queue is folded into
the per-series accumulators in batches (``fold.py``: grouped by series, then C-level sums and
sorted bucket counts per series), under one lock, by the request that fills it or by the next
collection. A series with few records in a batch is held, grouped, until it has enough to fold
(``fold.Held``) or a reader asks: every reader folds
first. Its cost does not depend on how many exporters read the data, nor much on how many series
share a batch. At collection time ``snapshot()`` copies the accumulators and ``to_metrics()``
projects them onto the six catalogue metrics as standard OpenTelemetry points (``Sum`` and
``Histogram``, cumulative, built by ``_projection``), so every OTel exporter can consume them.

A series key is ``(method, route, status_code | None, error_type | None)``. The six metrics are
projections of those keys: ``http_requests_total`` sums over status and error, and so on.

Bounds (the cardinality cap, the overflow series, eviction by ``(method, route)`` group) are the
table's (``series.py``).

Exponential histograms: for each histogram named in ``exponential`` (a View chose
``ExponentialBucketHistogramAggregation``, or ``histograms: exponential``), a series also keeps
an ``ExponentialAccumulator`` beside its classic buckets, updated by the same fold; the points
then carry both (``metrics.dual``).

Exemplars (``tracing: true``): ``exemplar()`` notes the trace of a request; the latest one per
duration bucket per series is kept and attached to the duration histogram's points.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from itertools import repeat, starmap

from opentelemetry.sdk.metrics.export import (
    Metric,
)

from fluxstack_otel._internal.http.exemplar_slots import ExemplarSlots
from fluxstack_otel._internal.http.exponential_series import ExponentialSeries
from fluxstack_otel._internal.http.fold import (
    BUCKETS,
    Held,
    Pending,
    fold_each,
    fold_totals,
    snapshots,
)
from fluxstack_otel._internal.http.projection import (
    DEFAULT_LABELLING,
    Labelling,
    SeriesKey,
    SeriesSnapshot,
    project,
)
from fluxstack_otel._internal.http.series import OVERFLOW, SeriesTable, overflow_key
from fluxstack_otel._internal.http.tally import HttpSeries, tally
from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.metrics.selection import HTTP_NAMES

__all__ = ["DRAIN_AT", "OVERFLOW", "HttpRecorder", "Pending", "SeriesKey", "SeriesSnapshot"]

# Records queued before the queue is folded (by the request that queues the last of them).
DRAIN_AT = 256


class HttpRecorder:
    """Accumulates HTTP exchanges per series and exposes them as OTel metrics.

    Args:
        duration_buckets: Upper bounds (seconds) of the duration histogram buckets.
        size_buckets: Upper bounds (bytes) of the two size histograms.
        max_series: The cardinality cap; label sets beyond it fold into one overflow series.
        retention_period: Seconds after which a series that saw no request is evicted.
        exponential: The histograms also kept as exponential histograms: metric name ->
            (max_size, max_scale) of ``ExponentialBucketHistogramAggregation``.
        clock: Monotonic clock in seconds (``time.perf_counter``); injectable for tests.
        wall_clock_ns: Wall clock in nanoseconds for OTel start times; injectable for tests.
    """

    def __init__(
        self,
        *,
        duration_buckets: Sequence[float] = cat.DEFAULT_DURATION_BUCKETS,
        size_buckets: Sequence[float] = cat.DEFAULT_SIZE_BUCKETS,
        max_series: int = 2000,
        retention_period: float = 300.0,
        exponential: Mapping[str, tuple[int, int]] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        wall_clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._dur_bounds = tuple(float(b) for b in duration_buckets)
        self._size_bounds = tuple(float(b) for b in size_buckets)
        # The bounds the fold bisects body sizes (ints) with: ints when every bound is a whole
        # number, since comparing an int with a float takes CPython's slow path (about a tenth
        # of the fold's cost with floats).
        self._size_cuts: tuple[float, ...] = (
            tuple(int(b) for b in self._size_bounds)
            if all(b.is_integer() for b in self._size_bounds)
            else self._size_bounds
        )
        self._n_dur = len(self._dur_bounds) + 1
        self._n_size = len(self._size_bounds) + 1
        self._clock = clock
        self._wall_ns = wall_clock_ns
        self._req_at = BUCKETS + self._n_dur
        self._resp_at = self._req_at + self._n_size
        self._table = SeriesTable(
            self._resp_at + self._n_size, max_series, retention_period, clock, wall_clock_ns
        )
        self._series = self._table.series  # the same dict for the table's whole life
        self._lock = threading.Lock()
        self._exemplars = ExemplarSlots(self._dur_bounds)
        # Records wait here until the next drain: appending to a deque is atomic and costs a
        # fraction of updating accumulators under a lock, and draining in batches is cheaper per
        # record. Bounded: the request that fills it drains it.
        self._pending: deque[Pending] = deque()
        self._held = Held()  # the grouped fold's records, by series, that may wait
        self._presentation = DEFAULT_LABELLING
        self._in_progress: Callable[[], Mapping[tuple[str, str], int]] | None = None
        self._created_ns = wall_clock_ns()
        self._exp = ExponentialSeries(exponential or {})
        self._version = 0  # moves with every drain that folds, eviction and reset (version())
        # The grouped fold needs every empty body in the first size bucket (bounds above zero,
        # as the configuration requires) and no exponential histogram to feed one by one.
        self._grouped = not self._exp.on and (not self._size_cuts or self._size_cuts[0] > 0)

    @property
    def exponential(self) -> dict[str, int]:
        """The histograms kept as exponential histograms too: metric name -> max_size."""
        return self._exp.max_sizes

    @property
    def duration_bounds(self) -> tuple[float, ...]:
        """The duration histogram's bucket upper bounds."""
        return self._dur_bounds

    @property
    def size_bounds(self) -> tuple[float, ...]:
        """The size histograms' bucket upper bounds."""
        return self._size_bounds

    def record(
        self,
        method: str,
        route: str,
        status: int | None,
        error_type: str | None,
        duration: float,
        request_bytes: int,
        response_bytes: int,
        now: float,
    ) -> None:
        """Count one finished HTTP exchange.

        The middleware queues the same tuple itself (``queue``); mypy holds both to ``Pending``.

        Args:
            method: The normalised request method.
            route: The route template (never the raw path).
            status: The response status, or None when no response started.
            error_type: Set when the exchange counts as an error.
            duration: Seconds from request start to the last body byte sent.
            request_bytes: Body bytes received.
            response_bytes: Body bytes sent.
            now: The recorder clock's reading at the end of the exchange.
        """
        pending = self._pending
        pending.append(
            ((method, route, status, error_type), duration, request_bytes, response_bytes, now)
        )
        if len(pending) >= DRAIN_AT:
            self._drain(flush=False)

    @property
    def queue(self) -> deque[Pending]:
        """Where ``record()`` appends (never replaced): the middleware appends itself, saving a
        call per request, and calls ``drain_ready()`` on the append that brings it to
        ``DRAIN_AT``."""
        return self._pending

    def drain(self) -> None:
        """Fold every queued and held record into the accumulators now."""
        self._drain()

    def drain_ready(self) -> None:
        """Take the queued records in: fold the series that have enough of them to fold (what
        the request that fills the queue calls); the others' records wait (``fold.Held``)."""
        self._drain(flush=False)

    def record_labeled(
        self,
        method: str,
        route: str,
        status: int | None,
        error_type: str | None,
        labels: tuple[str, ...],
        duration: float,
        request_bytes: int,
        response_bytes: int,
        now: float,
    ) -> None:
        """``record()`` with the values of the ``labels`` option, in their configured order.

        ``labels`` holds the per-request label values, each already within its value cap; the
        other arguments are those of ``record()``.
        """
        pending = self._pending
        key = (method, route, status, error_type, labels)
        pending.append((key, duration, request_bytes, response_bytes, now))
        if len(pending) >= DRAIN_AT:
            self._drain(flush=False)

    def present_with(
        self,
        labelling: Labelling,
        in_progress: Callable[[], Mapping[tuple[str, str], int]] | None = None,
    ) -> None:
        """Set how ``to_metrics`` labels the series, and where in-flight counts come from.

        Args:
            labelling: The labelling options (``constant_labels``, ``group_status_codes``...).
            in_progress: ``in_progress: true``: the requests in flight per (method, route).
        """
        self._presentation = labelling
        self._in_progress = in_progress
        self._version += 1

    def _drain(self, *, flush: bool = True) -> None:
        """Fold the pending records into the accumulators (``fold.py``, one lock for all);
        without ``flush``, the series with few records are held (``fold.Held``)."""
        with self._lock:
            pending = self._pending
            count = len(pending)
            if pending or self._exemplars.pending or (flush and self._held.count):
                self._version += 1
            # Only the records present now: appends racing with this fold wait for the next one.
            records = starmap(pending.popleft, repeat((), len(pending)))
            args = (
                records,
                self._series.get,
                self._table.create,
                self._dur_bounds,
                self._size_cuts,
                self._req_at,
                self._resp_at,
            )
            if self._grouped:
                self._held.fold(records, count, flush, *args[1:], self._table.totals)
            else:
                batch = list(records)  # read twice: by the fold, then into the totals
                fold_each(batch, *args[1:], self._exp, self._table.owner)
                fold_totals(batch, self._table.totals, *args[3:])
            if self._exemplars.pending:
                self._exemplars.fold(self._series, overflow_key)

    def exemplar(
        self,
        method: str,
        route: str,
        status: int | None,
        error_type: str | None,
        duration: float,
        trace_id: int,
        span_id: int,
        labels: tuple[str, ...] = (),
    ) -> None:
        """Note the trace of an exchange just passed to ``record()`` (``tracing: true`` only).

        ``trace_id`` and ``span_id`` are the request span's; ``labels`` the per-request label
        values given to ``record_labeled()``, if any; the other arguments are as given to
        ``record()``.
        """
        key: SeriesKey = (
            (method, route, status, error_type, labels)
            if labels
            else (method, route, status, error_type)
        )
        self._exemplars.note(key, duration, trace_id, span_id, self._wall_ns())

    def reset(self) -> None:
        """Forget every series (a forked child starts from zero, not from its parent's counts)."""
        with self._lock:
            self._pending.clear()
            self._held.clear()
            self._table.clear()
            self._exemplars.clear()
            self._exp.clear()
            self._version += 1

    def __len__(self) -> int:
        self._drain()
        return len(self._series)

    def version(self) -> int | None:
        """A number that moves whenever what ``to_metrics`` builds may have changed.

        Drains and evicts first, so a request recorded before the call always moves it. None
        when the projection also reads what no record tells (``in_progress``: live requests).
        """
        if self._in_progress is not None:
            return None
        self._drain()
        with self._lock:
            self._evict()
            return self._version

    def snapshot(self) -> list[SeriesSnapshot]:
        """Evict expired (method, route) groups, then copy every live series consistently."""
        self._drain()
        with self._lock:
            self._evict()
            series = self._series
            exemplars, exp, start_ns = self._exemplars, self._exp, self._table.start_ns
            copies = [
                (k, start_ns[k], list(acc), exemplars.copy(k), exp.snapshot(k))
                for k, acc in series.items()
            ]
        return snapshots(copies, self._req_at, self._resp_at, self._n_size)

    def _evict(self) -> None:
        # Under the lock: the (method, route) groups idle for the retention period leave.
        expired = self._table.evict()
        for k in expired:
            self._exemplars.pop(k)
            self._exp.pop(k)
        if expired:
            self._version += 1

    def totals(self, names: Collection[str]) -> list[Metric]:
        """The named metrics summed over every request ever recorded, however many series.

        What a rule over all series reads (the request rate, the error rate, the merged latency
        histogram) without a snapshot of every series: a few points, kept up by the fold
        (``fold.py``), never evicted, started again by ``reset``. Their labels say nothing (one
        point per kind of record). The histograms kept as exponential ones are left out (a
        rule reads their exponential buckets from the series).
        """
        wanted = [n for n in names if n in HTTP_NAMES and n not in self._exp.max_sizes]
        if not wanted:
            return []
        self._drain()
        with self._lock:
            copies = self._table.total_copies()
        made = snapshots(copies, self._req_at, self._resp_at, self._n_size)
        return project(
            [s for s in made if s.requests],
            duration_bounds=self._dur_bounds,
            size_bounds=self._size_bounds,
            now_ns=self._wall_ns(),
            names=wanted,
        )

    def series(self) -> HttpSeries | None:
        """Every live series added up by projected key (``tally.py``), for an
        encoder that writes the HTTP scope itself; None where only ``to_metrics`` says it all
        (in-progress counts, exponential histograms)."""
        if self._in_progress is not None or self._exp.on:
            return None
        self._drain()
        with self._lock:
            self._evict()
            series = self._series
            # One tuple per series, copied in C: everything the text reads (``tally.py``).
            copies = list(zip(series, map(tuple, series.values()), strict=True))
            marked = bool(self._exemplars)
        layout = (BUCKETS, self._req_at, self._resp_at, self._resp_at + self._n_size)
        added = tally(copies, layout, self._presentation, marked)
        return HttpSeries(added, self._presentation, self._dur_bounds, self._size_bounds)

    def to_metrics(
        self,
        names: Collection[str] | None = None,
        snapshot: list[SeriesSnapshot] | None = None,
    ) -> list[Metric]:
        """Project the accumulators onto the catalogue metrics (cumulative OTel points).

        Args:
            names: Only these metrics (the alert processor reads a few); None: all six.
            snapshot: The series to project; None takes one now.
        """
        if names is not None and HTTP_NAMES.isdisjoint(names):
            return []  # none wanted (a render that reuses the HTTP scope's text): no snapshot
        in_progress = self._in_progress
        return project(
            self.snapshot() if snapshot is None else snapshot,
            duration_bounds=self._dur_bounds,
            size_bounds=self._size_bounds,
            now_ns=self._wall_ns(),
            names=names,
            labelling=self._presentation,
            in_progress=None if in_progress is None else in_progress(),
            in_progress_start_ns=self._created_ns,
            max_sizes=self.exponential,
        )
