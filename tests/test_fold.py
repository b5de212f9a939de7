"""The recorder's two folds agree: grouped by series (the default path) and record by record.

The grouped fold takes two paths itself, by how many records a series has in the batch (C-level
passes from ``GROUP_MIN`` records, else a loop): the batches below mix both."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from fluxstack_otel._internal.http.exponential_series import ExponentialSeries
from fluxstack_otel._internal.http.fold import (
    BUCKETS,
    DUR_SUM,
    GROUP_MIN,
    Pending,
    Totals,
    fold_each,
    fold_grouped,
    fold_totals,
    new_totals,
)
from fluxstack_otel._internal.http.projection import SeriesKey

_DUR = (0.001, 0.01, 0.1, 1.0)
_SIZE = (10, 100, 1000)
_REQ_AT = BUCKETS + len(_DUR) + 1
_RESP_AT = _REQ_AT + len(_SIZE) + 1
_KEYS: list[SeriesKey] = [
    ("GET", "/a", 200, None),
    ("POST", "/b", 500, "500"),
    ("GET", "/a", None, "RuntimeError"),  # no response: no response size
    *[("GET", f"/r{i}", 200, None) for i in range(12)],  # a few records each: the loop
]
_WIDTH = _RESP_AT + len(_SIZE) + 1

_records = st.lists(
    st.tuples(
        st.sampled_from(_KEYS),
        # bounds themselves included: a value on a bound belongs to that bound's bucket
        st.one_of(st.sampled_from(_DUR), st.floats(0.0, 5.0, allow_nan=False)),
        st.one_of(st.sampled_from((0, *_SIZE)), st.integers(0, 5000)),
        st.one_of(st.sampled_from((0, *_SIZE)), st.integers(0, 5000)),
        st.floats(0.0, 100.0, allow_nan=False),
    ),
    max_size=300,
)


def _fold(
    records: list[Pending], grouped: bool, chunk: int = 0
) -> tuple[dict[SeriesKey, list[float]], Totals]:
    series: dict[SeriesKey, list[float]] = {}
    starts: dict[SeriesKey, float] = {}
    totals = new_totals(_WIDTH)

    def create(key: SeriesKey, started: float) -> list[float]:
        starts[key] = started
        acc: list[float] = [0.0, 0.0, 0, 0] + [0] * (_WIDTH - BUCKETS)
        series[key] = acc
        return acc

    args = (iter(records), series.get, create, _DUR, _SIZE, _REQ_AT, _RESP_AT)
    if grouped:
        held: defaultdict[SeriesKey, list[Pending]] = defaultdict(list)
        # In chunks as the queue fills (series held between them), then flushed as a reader does.
        for at in range(0, len(records), chunk or 1) if chunk else ():
            fold_grouped(iter(records[at : at + chunk]), held, *args[1:], totals, flush=False)
        fold_grouped(iter(() if chunk else records), held, *args[1:], totals)
        assert not held  # flushed: nothing left held
    else:
        fold_each(*args, ExponentialSeries({}), lambda key: key)
        fold_totals(records, totals, _DUR, _SIZE, _REQ_AT, _RESP_AT)
    return {key: [*acc, starts[key]] for key, acc in series.items()}, totals


def _rounded(totals: Totals) -> Totals:
    """The totals' sums rounded (the paths add the same values in different orders), without
    the slot of the last update, which nothing reads from the totals."""
    return {cls: [round(v, 6) for v in acc[DUR_SUM:]] for cls, acc in totals.items()}


@settings(max_examples=200, deadline=None)
@given(_records, st.sampled_from([0, 1, 7, 64]))
def test_grouped_fold_matches_the_record_by_record_loop(records: list[Pending], chunk: int) -> None:
    """Every bucket, sum (bit for bit), last update and start time is what one-by-one folding
    gives, and so are the totals of every class, whether the batch is folded at once or in
    chunks with series held between them."""
    grouped, grouped_totals = _fold(records, grouped=True, chunk=chunk)
    each, each_totals = _fold(records, grouped=False)
    assert grouped == each
    assert _rounded(grouped_totals) == _rounded(each_totals)


def test_a_batch_takes_both_paths() -> None:
    """The batches above reach both: a series with many records and one with few."""
    many = [(_KEYS[0], 0.5, 10, 10, 1.0)] * GROUP_MIN
    few = [(_KEYS[3], 0.002, 0, 2000, 2.0)] * (GROUP_MIN - 1)
    series, totals = _fold(many + few, grouped=True)
    assert series == _fold(many + few, grouped=False)[0]
    assert sum(totals[(False, True)][BUCKETS:_REQ_AT]) == 2 * GROUP_MIN - 1
