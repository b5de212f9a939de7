"""histogram_quantile: PromQL's bucket interpolation, cross-checked against promtool's own engine."""

from __future__ import annotations

import math
import random
import subprocess
from pathlib import Path

import pytest

from fluxstack_otel._internal.metrics.quantile import histogram_quantile
from servers import promtool_path, requires_promtool

BOUNDS = (0.1, 0.5, 1.0)


def test_interpolates_linearly_within_the_bucket_holding_the_rank() -> None:
    """The median of 3/4/3 observations over (0.1, 0.5, 1.0, +Inf) lies 2/4 into (0.1, 0.5]."""
    assert histogram_quantile(0.5, BOUNDS, [3, 4, 3, 0]) == pytest.approx(0.3)


def test_first_bucket_starts_at_zero() -> None:
    """Below the first bound, interpolation starts at 0, as in Prometheus."""
    assert histogram_quantile(0.5, BOUNDS, [10, 0, 0, 0]) == pytest.approx(0.05)


def test_rank_in_the_inf_bucket_gives_the_highest_finite_bound() -> None:
    """A quantile that falls among the +Inf observations is the largest finite bound."""
    assert histogram_quantile(0.99, BOUNDS, [1, 0, 0, 9]) == 1.0


def test_no_observations_or_no_bounds_give_nan() -> None:
    """Nothing to estimate from: NaN, like PromQL."""
    assert math.isnan(histogram_quantile(0.5, BOUNDS, [0, 0, 0, 0]))
    assert math.isnan(histogram_quantile(0.5, (), [5]))


def test_out_of_range_quantiles_follow_promql() -> None:
    """q below 0 is -Inf and above 1 is +Inf, as PromQL defines them."""
    assert histogram_quantile(-0.1, BOUNDS, [1, 1, 1, 1]) == -math.inf
    assert histogram_quantile(1.1, BOUNDS, [1, 1, 1, 1]) == math.inf


def test_non_positive_first_bound_is_returned_as_is() -> None:
    """A first bucket ending at or below zero is not interpolated from zero."""
    assert histogram_quantile(0.1, (-1.0, 0.0, 1.0), [5, 0, 0, 0]) == -1.0


def test_mismatched_counts_are_refused_with_both_lengths() -> None:
    """A caller error names what was expected and what came."""
    with pytest.raises(ValueError, match="expected 4 bucket counts for 3 bounds, got 3"):
        histogram_quantile(0.5, BOUNDS, [1, 2, 3])


def _cases(n: int) -> list[tuple[float, tuple[float, ...], list[int]]]:
    rng = random.Random(20250101)
    cases = []
    for _ in range(n):
        k = rng.randint(1, 6)
        bounds = tuple(sorted(rng.sample([0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0], k)))
        counts = [rng.choice([0, 0, 1, 2, 5, 17, 100]) for _ in range(k + 1)]
        if not any(counts):
            counts[0] = 1
        q = rng.choice([0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0])
        cases.append((q, bounds, counts))
    return cases


@pytest.mark.slow
@requires_promtool
def test_matches_prometheus_on_random_histograms(tmp_path: Path) -> None:
    """For 60 random histograms, promtool evaluates histogram_quantile to our exact value."""
    tests = []
    for i, (q, bounds, counts) in enumerate(_cases(60)):
        expected = histogram_quantile(q, bounds, counts)
        running = 0
        series = []
        for le, n in zip([*(repr(b) for b in bounds), "+Inf"], counts, strict=True):
            running += n
            series.append(
                f"      - series: 'h{i}_bucket{{le=\"{le}\"}}'\n        values: '{running}'"
            )
        tests.append(
            "  - interval: 1m\n    input_series:\n"
            + "\n".join(series)
            + f"\n    promql_expr_test:\n      - expr: histogram_quantile({q!r}, h{i}_bucket)\n"
            f"        eval_time: 0\n        exp_samples:\n          - labels: '{{}}'\n"
            f"            value: {expected!r}\n"
        )
    spec = tmp_path / "quantiles.yml"
    spec.write_text("rule_files: []\nevaluation_interval: 1m\ntests:\n" + "".join(tests))
    result = subprocess.run(
        [str(promtool_path()), "test", "rules", str(spec)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
