"""The recorder's two folds agree: grouped by series (the default path) and record by record."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fluxstack_otel._internal.http.exponential_series import ExponentialSeries
from fluxstack_otel._internal.http.fold import BUCKETS, Pending, fold_each, fold_grouped
from fluxstack_otel._internal.http.projection import SeriesKey

_DUR = (0.001, 0.01, 0.1, 1.0)
_SIZE = (10, 100, 1000)
_REQ_AT = BUCKETS + len(_DUR) + 1
_RESP_AT = _REQ_AT + len(_SIZE) + 1
_KEYS: list[SeriesKey] = [
    ("GET", "/a", 200, None),
    ("POST", "/b", 500, "500"),
    ("GET", "/a", None, "RuntimeError"),  # no response: no response size
]

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


def _fold(records: list[Pending], grouped: bool) -> dict[SeriesKey, list[float]]:
    series: dict[SeriesKey, list[float]] = {}
    starts: dict[SeriesKey, float] = {}

    def create(key: SeriesKey, started: float) -> list[float]:
        starts[key] = started
        acc: list[float] = [0.0, 0.0, 0, 0] + [0] * (_RESP_AT + len(_SIZE) + 1 - BUCKETS)
        series[key] = acc
        return acc

    args = (iter(records), series.get, create, _DUR, _SIZE, _REQ_AT, _RESP_AT)
    if grouped:
        fold_grouped(*args)
    else:
        fold_each(*args, ExponentialSeries({}), lambda key: key)
    return {key: [*acc, starts[key]] for key, acc in series.items()}


@settings(max_examples=200, deadline=None)
@given(_records)
def test_grouped_fold_matches_the_record_by_record_loop(records: list[Pending]) -> None:
    """Every bucket, sum (bit for bit), last update and start time is what one-by-one folding gives."""
    assert _fold(records, grouped=True) == _fold(records, grouped=False)
