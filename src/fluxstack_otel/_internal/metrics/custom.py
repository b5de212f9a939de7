"""Custom metrics: typed helpers over the monitoring's OpenTelemetry ``Meter``, with name checks.

``monitoring.meter`` is a standard ``Meter``; the helpers (``monitoring.counter(...)``,
``.histogram(..., buckets=...)``, the observable variants...) create instruments on it after
checking the name once, at creation:

- it is a valid OpenTelemetry instrument name (a letter, then up to 254 of ``A-Za-z0-9_.-/``);
- neither it nor its Prometheus name (``_naming.exposition_name``: ``orders.latency`` with unit
  ``s`` is ``orders_latency_seconds``) collides with a built-in metric, in either naming profile,
  so switching profiles never breaks a custom metric;
- it does not take the Prometheus name of another custom metric, and a name is not reused with
  another kind or unit;
- a metric that is not a counter does not end in ``_total`` once exposed.

A bad name is a ``ConfigError`` raised by the helper: instruments are created at start-up, where a
clear error beats a metric that silently never appears. Instruments created on ``monitoring.meter``
directly are not checked. With ``custom_metrics: false`` the helpers still check names and return
no-op instruments. Observable callbacks run inside a guard: one that raises is logged
(rate-limited) and counted, and that collection simply has no point for it.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TypeAlias, TypeVar

from opentelemetry.metrics import (
    CallbackOptions,
    Counter,
    Histogram,
    Meter,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    Observation,
    UpDownCounter,
)
from opentelemetry.metrics import _Gauge as Gauge
from opentelemetry.sdk import metrics as sdk

from fluxstack_otel._internal.config.checks import show
from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel._internal.metrics.naming import exposition_names, prometheus_base
from fluxstack_otel._internal.runtime.failures import report_failure
from fluxstack_otel.errors import ConfigError

__all__ = ["Callback", "CustomMetrics", "cardinality_limits", "check_buckets"]

Callback: TypeAlias = Callable[[CallbackOptions], Iterable[Observation]]
_I = TypeVar("_I")
"""An observable instrument's callback: returns the observations of one collection."""

_NAME = re.compile(r"[a-zA-Z][-_./a-zA-Z0-9]{0,254}")


def _reserved() -> tuple[frozenset[str], dict[str, str]]:
    """Built-in OpenTelemetry names (lower case) and Prometheus names, in every profile."""
    otel: set[str] = set()
    prometheus: dict[str, str] = {}
    for profile in cat.PROFILES.values():
        for spec in cat.BUILTIN_METRICS:
            naming = profile.naming(spec)
            otel.add(naming.name.lower())
            base = prometheus_base(
                naming.name, naming.unit, spec.kind, gauge=spec.kind is cat.Kind.GAUGE
            )
            for exposed in exposition_names(base, spec.kind):
                prometheus[exposed] = naming.name
    return frozenset(otel), prometheus


_RESERVED_OTEL, _RESERVED_PROMETHEUS = _reserved()


class _Names:
    """The custom metric names one Monitoring has handed out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._instruments: dict[str, tuple[str, str]] = {}  # lower-case name -> (kind, unit)
        self._exposed: dict[str, str] = {}  # Prometheus name -> lower-case OTel name

    def claim(self, name: object, unit: object, description: object, what: str,
              kind: cat.Kind, *, gauge: bool = False) -> None:  # fmt: skip
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError(
                f"custom metric name {show(name)} is not a valid OpenTelemetry instrument name:"
                " a letter, then up to 254 letters, digits and '_', '.', '-', '/'"
            )
        if not isinstance(unit, str) or len(unit) > 63 or not unit.isascii():
            raise ConfigError(
                f"custom metric {name!r}: unit {show(unit)} is not a string of at most 63 ASCII"
                " characters (UCUM, such as 's', 'By', '{request}')"
            )
        if not isinstance(description, str):
            raise ConfigError(
                f"custom metric {name!r}: description {show(description)} is not a string"
            )
        key = name.lower()
        if key in _RESERVED_OTEL:
            raise ConfigError(f"custom metric {name!r} has the name of a built-in metric")
        base = prometheus_base(name, unit, kind, gauge=gauge)
        exposed = exposition_names(base, kind)
        for taken in sorted(exposed):
            builtin = _RESERVED_PROMETHEUS.get(taken)
            if builtin is not None:
                raise ConfigError(
                    f"custom metric {name!r} would be exposed to Prometheus as {base!r}, which"
                    f" collides with the built-in metric {builtin!r}; choose another name"
                )
        if kind is not cat.Kind.COUNTER and base.endswith("_total"):
            raise ConfigError(
                f"custom metric {name!r} would be exposed to Prometheus as {base!r}: the '_total'"
                " suffix is reserved for counters; choose another name"
            )
        with self._lock:
            seen = self._instruments.get(key)
            if seen is not None:
                if seen == (what, unit):
                    return  # the same instrument again: the SDK hands back the first one
                raise ConfigError(
                    f"custom metric {name!r} was already created as {seen[0]} with unit"
                    f" {seen[1]!r}; a name has one kind and one unit"
                )
            for taken in sorted(exposed):
                other = self._exposed.get(taken)
                if other is not None:
                    raise ConfigError(
                        f"custom metric {name!r} would be exposed to Prometheus as {base!r},"
                        f" which the custom metric {other!r} already uses; choose another name"
                    )
            self._instruments[key] = (what, unit)
            self._exposed.update(dict.fromkeys(exposed, name))


def check_buckets(name: str, buckets: object) -> list[float]:
    """A histogram's bucket bounds: finite numbers, strictly increasing.

    Raises:
        ConfigError: Naming the metric and the first bad bound.
    """
    if isinstance(buckets, str | bytes) or not isinstance(buckets, Sequence):
        raise ConfigError(f"custom histogram {name!r}: buckets {show(buckets)} is not a sequence")
    out: list[float] = []
    for i, bound in enumerate(buckets):
        ok = isinstance(bound, int | float) and not isinstance(bound, bool)
        if not ok or not math.isfinite(float(bound)) or (out and float(bound) <= out[-1]):
            raise ConfigError(
                f"custom histogram {name!r}: buckets[{i}] = {show(bound)}; bounds are finite numbers"
                " in strictly increasing order"
            )
        out.append(float(bound))
    return out


def _guarded(name: str, callbacks: Sequence[Callback]) -> list[Callback]:
    if isinstance(callbacks, str | bytes) or not isinstance(callbacks, Sequence):
        raise ConfigError(f"custom metric {name!r}: callbacks must be a sequence of functions")
    out: list[Callback] = []
    for i, fn in enumerate(callbacks):
        if not callable(fn):
            raise ConfigError(
                f"custom metric {name!r}: callbacks[{i}] = {show(fn)} is not callable"
            )
        out.append(_guard(name, fn))
    return out


def _guard(name: str, fn: Callback) -> Callback:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        try:
            return list(fn(options))
        except Exception:
            report_failure(f"the callback of the custom metric {name!r}")
            return ()

    return observe


_names_lock = threading.Lock()


class CustomMetrics:
    """The custom-metric helpers of ``Monitoring`` (see docs/custom-metrics.md).

    Every helper returns a standard OpenTelemetry instrument. Attributes passed when recording
    become labels; keep their values bounded (no user ids, no raw paths).
    """

    _custom_names: _Names | None = None

    @property
    def meter(self) -> Meter:
        """The OpenTelemetry ``Meter`` the helpers create instruments on."""
        raise NotImplementedError

    def _names(self) -> _Names:
        names = self._custom_names
        if names is None:
            with _names_lock:
                if self._custom_names is None:
                    self._custom_names = _Names()
                names = self._custom_names
        return names

    def counter(self, name: str, *, unit: str = "", description: str = "") -> Counter:
        """A monotonic counter: ``add(amount, attributes)`` with ``amount >= 0``.

        Args:
            name: The OpenTelemetry name (``orders.placed``); Prometheus shows
                ``orders_placed_total``.
            unit: UCUM unit (``1``, ``By``, ``{order}``); it becomes a Prometheus name suffix.
            description: The HELP text.

        Returns:
            The instrument (a no-op one with ``custom_metrics: false``).

        Raises:
            ConfigError: The name is invalid or collides (see the module docstring).
        """
        self._names().claim(name, unit, description, "a counter", cat.Kind.COUNTER)
        return self.meter.create_counter(name, unit, description)

    def up_down_counter(self, name: str, *, unit: str = "", description: str = "") -> UpDownCounter:
        """A counter that may go down (queue depth, open connections): ``add(±amount, ...)``.

        Exposed to Prometheus as a gauge. Args, Returns and Raises as for ``counter``.
        """
        self._names().claim(name, unit, description, "an up-down counter", cat.Kind.GAUGE)
        return self.meter.create_up_down_counter(name, unit, description)

    def gauge(self, name: str, *, unit: str = "", description: str = "") -> Gauge:
        """A synchronous gauge: ``set(value, attributes)``; the last value set is reported.

        Args, Returns and Raises as for ``counter``.
        """
        self._names().claim(name, unit, description, "a gauge", cat.Kind.GAUGE, gauge=True)
        return self.meter.create_gauge(name, unit, description)

    def histogram(
        self,
        name: str,
        *,
        unit: str = "",
        description: str = "",
        buckets: Sequence[float] | None = None,
    ) -> Histogram:
        """A histogram: ``record(value, attributes)``.

        Args:
            name: The OpenTelemetry name; Prometheus adds the unit (``orders.latency`` in ``s``
                is ``orders_latency_seconds``).
            unit: UCUM unit.
            description: The HELP text.
            buckets: Upper bounds of the buckets, strictly increasing; ``None`` keeps the SDK's
                default (0, 5, 10, 25, ..., 10000), which suits milliseconds better than seconds.

        Returns:
            The instrument (a no-op one with ``custom_metrics: false``).

        Raises:
            ConfigError: The name is invalid or collides, or the buckets are not increasing
                finite numbers.
        """
        bounds = None if buckets is None else check_buckets(name, buckets)
        self._names().claim(name, unit, description, "a histogram", cat.Kind.HISTOGRAM)
        return self.meter.create_histogram(
            name, unit, description, explicit_bucket_boundaries_advisory=bounds
        )

    def observable_counter(
        self,
        name: str,
        callbacks: Sequence[Callback],
        *,
        unit: str = "",
        description: str = "",
    ) -> ObservableCounter:
        """A monotonic counter read at collection time: each callback returns the totals.

        Args:
            name: As for ``counter``.
            callbacks: Functions ``(CallbackOptions) -> Iterable[Observation]``; one that
                raises is logged and counted, never propagated.
            unit: As for ``counter``.
            description: As for ``counter``.

        Returns and Raises as for ``counter``.
        """
        return self._observable(
            self.meter.create_observable_counter, name, callbacks, unit, description,
            "an observable counter", cat.Kind.COUNTER,
        )  # fmt: skip

    def observable_up_down_counter(
        self,
        name: str,
        callbacks: Sequence[Callback],
        *,
        unit: str = "",
        description: str = "",
    ) -> ObservableUpDownCounter:
        """A sum that may go down, read at collection time. As for ``observable_counter``."""
        return self._observable(
            self.meter.create_observable_up_down_counter, name, callbacks, unit, description,
            "an observable up-down counter", cat.Kind.GAUGE,
        )  # fmt: skip

    def observable_gauge(
        self,
        name: str,
        callbacks: Sequence[Callback],
        *,
        unit: str = "",
        description: str = "",
    ) -> ObservableGauge:
        """A gauge read at collection time. As for ``observable_counter``."""
        return self._observable(
            self.meter.create_observable_gauge, name, callbacks, unit, description,
            "an observable gauge", cat.Kind.GAUGE, gauge=True,
        )  # fmt: skip

    def _observable(self, create: Callable[[str, list[Callback], str, str], _I], name: str,
                    callbacks: Sequence[Callback], unit: str, description: str, what: str,
                    kind: cat.Kind, *, gauge: bool = False) -> _I:  # fmt: skip
        # The callbacks are checked before the name is claimed: a bad call claims nothing.
        guarded = _guarded(name, callbacks)
        self._names().claim(name, unit, description, what, kind, gauge=gauge)
        return create(name, guarded, unit, description)


def cardinality_limits(cap: int) -> dict[type, int]:
    """Limits for the SDK reader: every SDK metric keeps within ``cap`` series, overflow included.

    The SDK folds label sets beyond its limit into one extra point labelled
    ``otel.metric.overflow="true"``; a limit of ``cap - 1`` makes that point the ``cap``-th.
    """
    limit = max(1, cap - 1)
    kinds = (
        sdk.Counter,
        sdk.UpDownCounter,
        sdk.Histogram,
        sdk._Gauge,
        sdk.ObservableCounter,
        sdk.ObservableUpDownCounter,
        sdk.ObservableGauge,
    )
    return dict.fromkeys(kinds, limit)
