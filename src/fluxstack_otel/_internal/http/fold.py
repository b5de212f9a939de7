"""Folding the recorder's pending records into its per-series accumulators.

Enters: a batch of records (series key, duration, request bytes, response bytes, end of the
exchange), taken from the recorder's queue under its lock. Leaves: the same counts in the flat
per-series lists the recorder keeps (layout below); nothing is returned. ``snapshots`` reads
those lists back as ``SeriesSnapshot``s, for the projection.

The interpreter's dispatch is most of a fold's cost, so the common case (``fold_grouped``) runs one
short Python step per record, grouping the batch by series, and then updates each series once per
batch with C-level passes: ``sum`` for the sums (from the accumulator's value, adding in queue
order, so the float sums are bit for bit those of a record-by-record loop) and ``sorted`` for the
buckets, which then take a bisection per bucket boundary the batch crosses instead of one per
record (``_count``). ``fold_each`` is the record-by-record loop, for the
cases the grouped fold does not cover: exponential histograms, whose accumulators take values one
at a time, and size bounds below zero, where an empty body does not bisect to the first bucket.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, cast

from fluxstack_otel._internal.http.exponential_series import ExponentialSeries
from fluxstack_otel._internal.http.projection import SeriesKey, SeriesSnapshot
from fluxstack_otel._internal.runtime.gil import YIELD_MASK, yield_now

__all__ = [
    "BUCKETS",
    "DUR_SUM",
    "GROUP_MIN",
    "HOLD_MAX",
    "HOLD_ROWS",
    "LAST",
    "REQ_SUM",
    "RESP_SUM",
    "Class",
    "Held",
    "Pending",
    "Totals",
    "fold_each",
    "fold_grouped",
    "fold_totals",
    "idle_groups",
    "new_accumulators",
    "new_totals",
    "snapshots",
    "total_copies",
]

# (series key, duration, request bytes, response bytes, end of the exchange)
Pending = tuple[SeriesKey, float, int, int, float]
# A series' accumulators live in one flat list (cheaper to update than attributes):
# [last update, duration sum, request bytes sum, response bytes sum,
#  duration buckets..., request size buckets..., response size buckets...]
# The request count is the sum of the duration buckets, so count and buckets always agree.
LAST, DUR_SUM, REQ_SUM, RESP_SUM, BUCKETS = 0, 1, 2, 3, 4

# The accumulators of a series: found, else made (the overflow series' past the cap). Takes the
# key and when the series' first request began.
_Lookup = Callable[[SeriesKey], "list[float] | None"]
_Create = Callable[[SeriesKey, float], "list[float]"]

# ``_add``'s passes cost about 2.4 µs per series however few its records, the loop about 0.3 µs
# a record: a series is held until it has HOLD_ROWS records (or a reader flushes), and one
# flushed with fewer than GROUP_MIN takes the loop.
HOLD_ROWS = 32
GROUP_MIN = 8
HOLD_MAX = 4096  # records held in all at most (about 1 MB); beyond, every series is folded

Class = tuple[bool, bool]
"""A record's class for the totals: (no response started, no error counted)."""
Totals = dict[Class, "list[float]"]
"""The running totals of every record ever folded, per class, in a series' layout."""


def fold_grouped(
    records: Iterable[Pending],
    held: defaultdict[SeriesKey, list[Pending]],
    get: _Lookup,
    create: _Create,
    dur_bounds: tuple[float, ...],
    size_cuts: tuple[float, ...],
    req_at: int,
    resp_at: int,
    totals: Totals | None = None,
    flush: bool = True,
) -> int:
    """Group ``records`` by series into ``held``, then fold series by series; the number folded.

    Requires size bounds above zero (an empty body then bisects to the first bucket, where the
    record-by-record loop puts it) and no exponential histogram. The C-level passes of a series
    cost about as much for one record as for dozens, so without ``flush`` a series' records are
    held until it has ``HOLD_ROWS`` of them, however many batches that takes; ``flush`` folds
    every series held. A series flushed with fewer than ``GROUP_MIN`` records takes a loop
    instead of the passes. A series' accumulators exist from its first record on (made then),
    so what refers to a series meanwhile (an exemplar, the cap) finds it. With ``totals``,
    every record is added to the totals of its class as well.
    """
    ready: list[SeriesKey] = []
    for record in records:
        key = record[0]
        rows = held[key]
        if not rows and get(key) is None:
            create(key, record[4] - record[1])  # the series starts with its first request
        rows.append(record)
        if len(rows) == HOLD_ROWS:
            ready.append(key)
    # The records folded one at a time, by class: added to the totals after, with passes.
    few: defaultdict[Class, list[Pending]] | None = None if totals is None else defaultdict(list)
    bisect = bisect_left
    folded = 0
    for key in list(held) if flush else ready:
        rows = held.pop(key)
        folded += len(rows)
        first = rows[0]
        acc = get(key) or create(key, first[4] - first[1])  # past the cap: the overflow's
        responded = key[2] is not None  # the key has a status: a response started
        cls = (not responded, key[3] is None)
        if len(rows) >= GROUP_MIN:
            total = None if totals is None else totals[cls]
            _add(acc, rows, responded, dur_bounds, size_cuts, req_at, resp_at, total)
            continue
        for _, duration, request_bytes, response_bytes, _ in rows:
            acc[DUR_SUM] += duration
            acc[BUCKETS + bisect(dur_bounds, duration)] += 1
            if request_bytes:
                acc[REQ_SUM] += request_bytes
                acc[req_at + bisect(size_cuts, request_bytes)] += 1
            else:
                acc[req_at] += 1
            if responded:
                acc[RESP_SUM] += response_bytes
                acc[resp_at + bisect(size_cuts, response_bytes)] += 1
        acc[LAST] = rows[-1][4]
        if few is not None:
            few[cls] += rows
    if few and totals is not None:
        for cls, rows in few.items():
            _add(totals[cls], rows, not cls[0], dur_bounds, size_cuts, req_at, resp_at)
    return folded


class Held:
    """The grouped fold's records by series between drains: a series' records wait until it
    has ``HOLD_ROWS`` (``fold_grouped``), and every series is folded once more than
    ``HOLD_MAX`` wait in all, or when a reader flushes. Under the recorder's lock."""

    __slots__ = ("count", "rows")

    def __init__(self) -> None:
        self.rows: defaultdict[SeriesKey, list[Pending]] = defaultdict(list)
        self.count = 0
        """Records waiting in ``rows``."""

    def fold(
        self,
        records: Iterable[Pending],
        count: int,
        flush: bool,
        get: _Lookup,
        create: _Create,
        dur_bounds: tuple[float, ...],
        size_cuts: tuple[float, ...],
        req_at: int,
        resp_at: int,
        totals: Totals,
    ) -> None:
        """``fold_grouped`` the ``count`` records of ``records``, holding what may wait."""
        flush = flush or self.count + count > HOLD_MAX
        folded = fold_grouped(
            records, self.rows, get, create, dur_bounds, size_cuts, req_at, resp_at, totals, flush
        )
        self.count = 0 if flush else self.count + count - folded

    def clear(self) -> None:
        self.rows.clear()
        self.count = 0


def fold_totals(
    records: Iterable[Pending],
    totals: Totals,
    dur_bounds: tuple[float, ...],
    size_cuts: tuple[float, ...],
    req_at: int,
    resp_at: int,
) -> None:
    """Add ``records`` to the running totals of their classes (whether a response started,
    whether an error was counted), each in a series' layout (``new_totals``).

    The totals only ever grow: they are what alert rules over all series read (the rate of
    every request, the merged latency histogram) without a snapshot of every series.
    """
    classes: defaultdict[Class, list[Pending]] = defaultdict(list)
    for record in records:
        key = record[0]
        classes[(key[2] is None, key[3] is None)].append(record)
    for cls, rows in classes.items():
        _add(totals[cls], rows, not cls[0], dur_bounds, size_cuts, req_at, resp_at)


def new_totals(width: int) -> Totals:
    """Zero totals for every class, each a series' accumulators of ``width`` slots."""
    return {(a, b): new_accumulators(width) for a in (False, True) for b in (False, True)}


def new_accumulators(width: int) -> list[float]:
    """A new series' accumulators: ``width`` slots, all zero (sums as floats, counts as ints)."""
    return [0.0, 0.0, 0, 0] + [0] * (width - BUCKETS)


def _add(
    acc: list[float],
    rows: list[Pending],
    responded: bool,
    dur_bounds: tuple[float, ...],
    size_cuts: tuple[float, ...],
    req_at: int,
    resp_at: int,
    total: list[float] | None = None,
) -> None:
    """Add ``rows`` (queue order) to one series' accumulators: C-level sums and sorted buckets;
    with ``total``, the same increase to those totals (their sums from the series' increase)."""
    _, durations, requests, responses, ends = zip(*rows, strict=True)
    acc[LAST] = ends[-1]
    dur_sum, req_sum, resp_sum = acc[DUR_SUM], acc[REQ_SUM], acc[RESP_SUM]
    acc[DUR_SUM] = sum(durations, dur_sum)
    _count(acc, BUCKETS, dur_bounds, durations, total)
    acc[REQ_SUM] = sum(requests, req_sum)
    _count(acc, req_at, size_cuts, requests, total)
    if responded:  # the key has a status: a response started
        acc[RESP_SUM] = sum(responses, resp_sum)
        _count(acc, resp_at, size_cuts, responses, total)
    if total is not None:
        total[DUR_SUM] += acc[DUR_SUM] - dur_sum
        total[REQ_SUM] += acc[REQ_SUM] - req_sum
        total[RESP_SUM] += acc[RESP_SUM] - resp_sum


def _count(
    acc: list[float],
    at: int,
    bounds: tuple[float, ...],
    values: tuple[float, ...],
    total: list[float] | None,
) -> None:
    """Add to ``acc[at + i]`` (and ``total[at + i]``) how many values bisect to bucket ``i``.

    Sorted first (C, cheap on floats or small ints alike), so a batch costs two bisections
    when all its values share a bucket, the usual case, and one per bound crossed otherwise,
    instead of one per value.
    """
    ordered = sorted(values)
    lo = bisect_left(bounds, ordered[0])
    hi = bisect_left(bounds, ordered[-1])
    done = 0
    for i in range(lo, hi):
        upto = bisect_right(ordered, bounds[i], done)  # the values <= bounds[i]: buckets <= i
        acc[at + i] += upto - done
        if total is not None:
            total[at + i] += upto - done
        done = upto
    acc[at + hi] += len(ordered) - done
    if total is not None:
        total[at + hi] += len(ordered) - done


def fold_each(
    records: Iterable[Pending],
    get: _Lookup,
    create: _Create,
    dur_bounds: tuple[float, ...],
    size_cuts: tuple[float, ...],
    req_at: int,
    resp_at: int,
    exp: ExponentialSeries,
    exp_key: Callable[[SeriesKey], SeriesKey],
) -> None:
    """Fold ``records`` one at a time, exponential histograms included.

    ``exp_key`` gives the key whose exponential slots a new series uses (its own, or the overflow
    key once the cap is reached).
    """
    exp_on, exp_get, bisect = exp.on, exp.get, bisect_left
    for key, duration, request_bytes, response_bytes, now in records:
        acc = get(key)
        if acc is None:
            acc = create(key, now - duration)
        if exp_on:
            slots = exp_get(key) or exp.create(exp_key(key))
            if slots[0] is not None:
                slots[0].record(duration)
            if slots[1] is not None:
                slots[1].record(request_bytes)
            if slots[2] is not None and key[2] is not None:
                slots[2].record(response_bytes)
        acc[LAST] = now
        acc[DUR_SUM] += duration
        acc[BUCKETS + bisect(dur_bounds, duration)] += 1
        if request_bytes:
            acc[REQ_SUM] += request_bytes
            acc[req_at + bisect(size_cuts, request_bytes)] += 1
        else:
            acc[req_at] += 1
        if key[2] is not None:  # the status: a response started
            acc[RESP_SUM] += response_bytes
            acc[resp_at + bisect(size_cuts, response_bytes)] += 1


def idle_groups(
    series: dict[SeriesKey, list[float]], horizon: float
) -> tuple[list[SeriesKey], float | None]:
    """The keys of the (method, route) groups whose last request came before ``horizon``, and
    the last request of the oldest group that stays (None: none stays)."""
    last: dict[tuple[str, str], float] = {}
    for k, acc in series.items():
        group = (k[0], k[1])
        if acc[LAST] > last.get(group, -math.inf):
            last[group] = acc[LAST]
    expired = [k for k in series if last[(k[0], k[1])] < horizon]
    return expired, min((t for t in last.values() if t >= horizon), default=None)


# The series key each class of totals is projected under (Class: no response, no error).
_TOTAL_KEYS: dict[Class, SeriesKey] = {
    (no_response, no_error): ("*", "*", None if no_response else 0, None if no_error else "*")
    for no_response in (False, True)
    for no_error in (False, True)
}


def total_copies(totals: Totals, start_ns: int) -> list[Any]:
    """The classes of ``totals``, copied as ``snapshots`` reads series (under the lock; the
    conversion, which yields the interpreter, comes after it)."""
    return [
        (_TOTAL_KEYS[cls], start_ns, list(acc), None, (None, None, None))
        for cls, acc in totals.items()
    ]


_snapshot = tuple.__new__


def snapshots(copies: list[Any], req_at: int, resp_at: int, n_size: int) -> list[SeriesSnapshot]:
    """The series' copies (key, start, accumulators, exemplar slots, exponential snapshots), read
    through the layout above as ``SeriesSnapshot``s; outside the recorder's lock."""
    d0, r0, p0, end = BUCKETS, req_at, resp_at, resp_at + n_size
    out = []
    for i, (k, start_ns, acc, exemplar_slots, (dur_exp, req_exp, resp_exp)) in enumerate(copies):
        if not i & YIELD_MASK:
            # Never under the recorder's lock: a fork in another thread meanwhile would leave
            # it held in the child (the locks a collection may run under, a round's, the alert
            # processor's, the multiprocess host's, are made anew there).
            yield_now()
        # Bucket slots only ever hold ints (_new_series, drain): no conversion needed.
        dur = cast("tuple[int, ...]", tuple(acc[d0:r0]))
        # tuple.__new__ with the fields in order: the NamedTuple's own __new__ is a Python
        # call with keyword handling, a third of this loop (same object, same fields).
        fields = (k, start_ns, sum(dur), dur, acc[DUR_SUM], tuple(acc[r0:p0]), int(acc[REQ_SUM]),
                  tuple(acc[p0:end]), int(acc[RESP_SUM]), exemplar_slots, dur_exp, req_exp,
                  resp_exp)  # fmt: skip
        out.append(_snapshot(SeriesSnapshot, fields))
    return out
