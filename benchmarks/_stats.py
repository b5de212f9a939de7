"""Small statistics and formatting helpers shared by the sections."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    """(Q1, Q3) of the values; both equal the value when there are fewer than two."""
    if len(values) < 2:
        v = values[0] if values else float("nan")
        return v, v
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def sign_test(wins: int, n: int) -> float:
    """Two-sided sign-test p-value of ``wins`` out of ``n`` paired rounds (ties count as half)."""
    if n == 0:
        return 1.0
    k = min(wins, n - wins)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def rotated(items: Sequence[str], round_index: int) -> list[str]:
    """The items in an order rotated by the round number, so no variant always runs first."""
    if not items:
        return []
    k = round_index % len(items)
    return [*items[k:], *items[:k]]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table: first column left-aligned, the others right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        out = [cells[0].ljust(widths[0])]
        out += [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def fmt(value: float | None, spec: str = ".1f", *, sign: bool = False) -> str:
    if value is None or value != value:
        return "-"
    return format(value, ("+" if sign else "") + spec)
