"""The recorder's series added up by projected key for an encoder that writes the text itself.

A fresh scrape of many series spent half its time before the first line of text: a
``SeriesSnapshot`` per series (three bucket tuples and the tuple itself), then a ``HistAcc`` and
two ``[count, start]`` lists per series in ``projection.accumulate``, most of them garbage a
moment later, and enough containers to set off the collector's full passes over every live
series. The text needs none of the start times or exemplars: here each series' copy, one tuple
taken under the recorder's lock, is read through the recorder's layout once into counts, sums
and bucket counts by projected key (the keys ``accumulate`` makes, in the same order).

In: the copies ``(key, accumulators)``, the layout, the labelling. Out: ``Tally``, inside
``HttpSeries``, what ``sinks/prometheus/http_text.py`` writes from.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import add
from typing import Any, NamedTuple, cast

from fluxstack_otel._internal.http.fold import DUR_SUM, REQ_SUM, RESP_SUM
from fluxstack_otel._internal.http.projection import GROUPED, Labelling, SeriesKey, key_labels
from fluxstack_otel._internal.runtime.gil import YIELD_MASK, yield_now

__all__ = ["Hist", "HttpSeries", "Tally", "tally"]

Key = tuple[object, ...]
Hist = tuple[int, float, tuple[int, ...]]
"""``(count, sum, bucket counts)``."""


class Tally(NamedTuple):
    """The series added up by projected key (``projection.Projected``'s keys): counters map a key
    to its count, histograms to a ``Hist``."""

    requests: dict[Key, int]
    responses: dict[Key, int]
    errors: dict[Key, int]
    durations: dict[Key, Hist]
    req_sizes: dict[Key, Hist]
    resp_sizes: dict[Key, Hist]
    exemplars: bool
    """Whether any series holds an exemplar (the OpenMetrics text then comes from the points)."""


class HttpSeries(NamedTuple):
    """The recorder's series added up by projected key, with what labels and bounds them: what
    an encoder that writes the HTTP scope itself reads (``sinks/prometheus/http_text.py``)."""

    tally: Tally
    labelling: Labelling
    duration_bounds: tuple[float, ...]
    size_bounds: tuple[float, ...]


def tally(
    copies: list[Any],
    layout: tuple[int, int, int, int],
    labelling: Labelling,
    exemplars: bool,
) -> Tally:
    """Add up the copies ``(key, accumulators)`` by projected key.

    Args:
        copies: Each series' key and a copy of its accumulators, taken under the lock; each
            is replaced by its key as it is read.
        layout: Where the duration, request size and response size buckets start, and where
            the last ends (``fold.py``'s layout for the recorder's bounds).
        labelling: How the series are labelled (grouped status codes, zero error series).
        exemplars: Whether any series holds an exemplar.
    """
    d0, r0, p0, end = layout
    grouped = GROUPED if labelling.group_status else None
    requests: dict[Key, int] = {}
    responses: dict[Key, int] = {}
    errors: dict[Key, int] = {}
    durations: dict[Key, Hist] = {}
    req_sizes: dict[Key, Hist] = {}
    resp_sizes: dict[Key, Hist] = {}
    for i in range(len(copies)):
        if not i & YIELD_MASK:
            yield_now()  # a background thread's long loop: the app's threads get their turn
        key, acc = copies[i]
        copies[i] = key  # the copy dropped once read: the tally's peak is its sums, not both
        method, route, code, status, error_type, extra = key_labels(key, grouped)
        # Bucket slots only ever hold ints (fold.py).
        dur = cast("tuple[int, ...]", acc[d0:r0])
        n = sum(dur)
        mr = (method, route, extra)
        requests[mr] = requests.get(mr, 0) + n
        _add(req_sizes, mr, n, float(int(acc[REQ_SUM])), acc[r0:p0])
        mrs = (method, route, status, extra)
        _add(durations, mrs, n, acc[DUR_SUM], dur)
        if code is not None:
            responses[mrs] = responses.get(mrs, 0) + n
            _add(resp_sizes, mrs, n, float(int(acc[RESP_SUM])), acc[p0:end])
        if error_type is not None:
            e = (method, route, status, error_type, extra)
            errors[e] = errors.get(e, 0) + n
    if labelling.zero_errors:
        _zero_errors(copies, errors)
    return Tally(requests, responses, errors, durations, req_sizes, resp_sizes, exemplars)


def _add(
    into: dict[Key, Hist], key: Key, count: int, total: float, buckets: tuple[int, ...]
) -> None:
    h = into.get(key)
    if h is None:
        into[key] = (count, float(total), buckets)
    else:  # another series of the same projected key: a new tuple, as the first one
        into[key] = (h[0] + count, h[1] + total, tuple(map(add, h[2], buckets)))


def _zero_errors(keys: Sequence[SeriesKey], errors: dict[Key, int]) -> None:
    """A 0 per (method, route, labels) without an error series (``projection._zero_errors``)."""
    with_errors = {(k[0], k[1], k[4]) for k in errors}
    for key in keys:
        group = (key[0], key[1], key[4] if len(key) > 4 else ())
        if group not in with_errors:
            errors.setdefault((group[0], group[1], None, None, group[2]), 0)
