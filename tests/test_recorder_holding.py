"""The grouped fold holds a series' records until it has enough to fold (``fold.HOLD_ROWS``).

Held records are invisible to nobody: every reader (points, the text's series, the totals, the
version, the length) folds them first, an eviction never drops a series whose records are held,
an exemplar finds its series, and what is held stays bounded (``fold.HOLD_MAX``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fluxstack_otel._internal.http.fold import HOLD_MAX, HOLD_ROWS
from fluxstack_otel._internal.http.recorder import DRAIN_AT, HttpRecorder
from support.clocks import FakeClock
from support.metricdata import by_name, points


def _queue(recorder: HttpRecorder, routes: int, each: int, now: float) -> None:
    """``each`` requests on each of ``routes`` routes, queued as the middleware queues them
    (``drain_ready`` whenever the queue is full, never a full fold)."""
    queue = recorder.queue
    for i in range(routes * each):
        key = ("GET", f"/r{i % routes}", 200, None)
        queue.append((key, 0.002, 0, 10, now))
        if len(queue) >= DRAIN_AT:
            recorder.drain_ready()
    recorder.drain_ready()


def _requests(recorder: HttpRecorder) -> dict[frozenset[tuple[str, str]], int]:
    metric = by_name(recorder.to_metrics(["http_requests_total"]))["http_requests_total"]
    return {labels: int(p.value) for labels, p in points(metric).items()}


def _total_requests(recorder: HttpRecorder) -> int:
    (total,) = recorder.totals(["http_requests_total"])
    return sum(int(p.value) for p in total.data.data_points)


def _text_requests(recorder: HttpRecorder) -> int:
    series = recorder.series()
    assert series is not None
    return sum(series.tally.requests.values())


_HELD = 100 * (HOLD_ROWS // 2)  # 100 sparse series, fewer records than HOLD_ROWS each


@pytest.mark.parametrize(
    "read",
    [
        lambda r: sum(_requests(r).values()),
        lambda r: sum(s.requests for s in r.snapshot()),
        _total_requests,
        _text_requests,
        lambda r: len(r) * (HOLD_ROWS // 2),
    ],
    ids=["to_metrics", "snapshot", "totals", "series", "len"],
)
def test_every_reader_sees_the_held_records(read: Callable[[HttpRecorder], int]) -> None:
    """Sparse series are held; whichever reader comes first counts every one of their records."""
    recorder = HttpRecorder(clock=FakeClock(1.0))
    _queue(recorder, routes=100, each=HOLD_ROWS // 2, now=1.0)
    assert recorder._held.count == _HELD  # the premise: everything is held
    assert read(recorder) == _HELD
    assert recorder._held.count == 0


def test_the_version_moves_for_held_records() -> None:
    recorder = HttpRecorder(clock=FakeClock(1.0))
    before = recorder.version()
    _queue(recorder, routes=100, each=HOLD_ROWS // 2, now=1.0)
    assert recorder._held.count == _HELD
    assert recorder.version() != before
    assert recorder._held.count == 0


def test_a_busy_series_folds_without_waiting_for_a_reader() -> None:
    """A series that reaches HOLD_ROWS within the drains is folded then: nothing of it held."""
    recorder = HttpRecorder(clock=FakeClock(1.0))
    _queue(recorder, routes=1, each=DRAIN_AT * 4, now=1.0)
    assert recorder._held.count == 0
    assert _requests(recorder) == {frozenset({("method", "GET"), ("route", "/r0")}): DRAIN_AT * 4}


def test_what_is_held_stays_bounded() -> None:
    """Thousands of sparse series fed through drain_ready alone: never more than HOLD_MAX held."""
    recorder = HttpRecorder(max_series=50_000, clock=FakeClock(1.0))
    seen = 0
    queue = recorder.queue
    for i in range(HOLD_MAX * 3):
        queue.append((("GET", f"/r{i % 5000}", 200, None), 0.001, 0, 1, 1.0))
        if len(queue) >= DRAIN_AT:
            recorder.drain_ready()
            seen = max(seen, recorder._held.count)
    assert 0 < seen <= HOLD_MAX
    assert sum(_requests(recorder).values()) == HOLD_MAX * 3


def test_an_eviction_keeps_a_series_whose_records_are_held() -> None:
    """Idle past the retention, then requested again with its records held: it stays, with
    every request, and the idle one leaves."""
    clock = FakeClock(100.0)
    recorder = HttpRecorder(retention_period=10.0, clock=clock)
    recorder.record("GET", "/idle", 200, None, 0.01, 0, 5, clock())
    recorder.record("GET", "/back", 200, None, 0.01, 0, 5, clock())
    recorder.drain()
    clock.advance(11.0)
    _queue(recorder, routes=1, each=3, now=clock())  # /r0, held
    recorder.record("GET", "/back", 200, None, 0.01, 0, 5, clock())
    recorder.drain_ready()
    assert recorder._held.count > 0
    routes = {dict(labels)["route"]: n for labels, n in _requests(recorder).items()}
    assert routes == {"/back": 2, "/r0": 3}


def test_an_exemplar_finds_its_series_while_the_records_are_held() -> None:
    recorder = HttpRecorder(duration_buckets=(0.1, 1.0), clock=FakeClock(1.0))
    recorder.record("GET", "/new", 200, None, 0.02, 0, 5, 1.0)
    recorder.exemplar("GET", "/new", 200, None, 0.02, 0xABC, 0xDEF)
    recorder.drain_ready()
    assert recorder._held.count == 1
    (snapshot,) = recorder.snapshot()
    assert snapshot.requests == 1
    assert snapshot.exemplars is not None
    exemplar = snapshot.exemplars[0]
    assert exemplar is not None
    assert exemplar[2] == 0xABC


def test_a_reset_forgets_what_is_held() -> None:
    recorder = HttpRecorder(clock=FakeClock(1.0))
    _queue(recorder, routes=10, each=2, now=1.0)
    recorder.reset()
    assert recorder._held.count == 0
    assert len(recorder) == 0
