"""Exponential against classic histograms: the recorder's cost per request and memory per series.

    .venv/bin/python benchmarks/exponential.py [--rounds N] [--requests N] [--json PATH]

Both recorders run side by side in one process, in an order rotated per round: each round
records ``requests`` exchanges (log-normal durations around 0.5 ms, as a fast route's) and takes a
snapshot, so the time covers ``record()`` on the request thread and the batched fold, which is
where the exponential buckets are updated. Memory: the bytes ``tracemalloc`` sees retained after
5,000 series of 64 requests each (the classic series' accumulators, plus the exponential
buckets). The report gives the medians and the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src")]

from fluxstack_otel._internal.http.recorder import HttpRecorder  # noqa: E402
from fluxstack_otel._internal.metrics import catalog as cat  # noqa: E402

DURATION = cat.HTTP_REQUEST_DURATION.name
MODES = {"classic": None, "exponential": {DURATION: (160, 20)}}


def _durations(n: int) -> list[float]:
    rng = random.Random(1)
    return [rng.lognormvariate(-7.6, 0.8) for _ in range(n)]


def _per_request(mode: str, durations: list[float], requests: int) -> float:
    recorder = HttpRecorder(max_series=100_000, exponential=MODES[mode])
    now = time.perf_counter()
    mask = len(durations) - 1
    started = time.perf_counter()
    for i in range(requests):
        recorder.record("GET", "/fast", 200, None, durations[i & mask], 0, 10, now)
    recorder.snapshot()
    return (time.perf_counter() - started) / requests


def _bytes_per_series(mode: str, durations: list[float]) -> float:
    tracemalloc.start()
    recorder = HttpRecorder(max_series=100_000, exponential=MODES[mode])
    base = tracemalloc.get_traced_memory()[0]
    now = time.perf_counter()
    for i in range(5000):
        for d in durations[:64]:
            recorder.record("GET", f"/s{i}", 200, None, d, 0, 10, now)
    recorder.snapshot()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return used / 5000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    durations = _durations(4096)
    times: dict[str, list[float]] = {m: [] for m in MODES}
    order = list(MODES)
    for r in range(args.rounds):
        for mode in order[r % 2 :] + order[: r % 2]:
            times[mode].append(_per_request(mode, durations, args.requests))
    ratios = [e / c for c, e in zip(times["classic"], times["exponential"], strict=True)]
    result = {
        "python": sys.version.split()[0],
        "rounds": args.rounds,
        "requests": args.requests,
        "ns_per_request": {m: statistics.median(t) * 1e9 for m, t in times.items()},
        "ratio_exponential_to_classic": statistics.median(ratios),
        "bytes_per_series": {m: _bytes_per_series(m, durations) for m in MODES},
    }
    for mode in MODES:
        print(
            f"{mode:12} {result['ns_per_request'][mode]:7.0f} ns/request"
            f"  {result['bytes_per_series'][mode]:7.0f} B/series"
        )
    print(f"exponential / classic, median of per-round ratios: {statistics.median(ratios):.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
