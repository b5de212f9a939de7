"""The ``labels`` option: label values read from each request, each label with a value cap.

A label reads a request header or calls a function with the ASGI scope. Each label keeps at most
``max_values`` distinct values; every further value is recorded as ``<overflow>``, so a header a
client controls cannot create series without bound (the metric-wide cardinality cap still holds
on top). A callback that raises is reported (``report_failure``) and gives the label's default:
the request is recorded all the same.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from fluxstack_otel._internal.metrics.catalog import OVERFLOW
from fluxstack_otel._internal.runtime.failures import report_failure

if TYPE_CHECKING:
    from fluxstack_otel._internal.config.model import LabelConfig

__all__ = ["LabelReader"]


class LabelReader:
    """Reads the configured labels of one request.

    Args:
        labels: The ``labels`` entries, in the order their values are recorded.
    """

    def __init__(self, labels: tuple[LabelConfig, ...]) -> None:
        self.names = tuple(label.name for label in labels)
        self._labels = labels
        self._headers = {
            label.header.encode("latin-1"): i
            for i, label in enumerate(labels)
            if label.header is not None
        }
        self._callbacks: list[tuple[int, Callable[[Any], object]]] = [
            (i, label.callback) for i, label in enumerate(labels) if label.callback is not None
        ]
        self._defaults = tuple(label.default for label in labels)
        # Per label: the values seen so far (value -> itself), up to its cap.
        self._seen: list[dict[str, str]] = [{} for _ in labels]
        self._caps = tuple(label.max_values for label in labels)

    def read(self, scope: MutableMapping[str, Any]) -> tuple[str, ...]:
        """The label values of a request, each within its label's cap.

        Args:
            scope: The request's scope.

        Returns:
            One value per label, in configured order.
        """
        raw: list[str | None] = [None] * len(self._labels)
        wanted = self._headers
        if wanted:
            for key, value in scope.get("headers", ()):
                i = wanted.get(key.lower()) if isinstance(key, bytes) else None
                if i is not None and raw[i] is None and isinstance(value, bytes):
                    raw[i] = value.decode("latin-1")
        for i, callback in self._callbacks:
            try:
                got = callback(scope)
            except Exception:  # a user's function must not fail the request
                report_failure(f"the callback of label {self.names[i]!r}")
                got = None
            raw[i] = None if got is None else str(got)
        return tuple(self._bounded(i, value) for i, value in enumerate(raw))

    def _bounded(self, i: int, value: str | None) -> str:
        if value is None:
            return self._defaults[i]
        seen = self._seen[i]
        known = seen.get(value)
        if known is not None:
            return known
        if len(seen) >= self._caps[i]:
            return OVERFLOW
        seen[value] = value
        return value
