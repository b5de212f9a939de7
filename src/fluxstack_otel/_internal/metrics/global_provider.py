"""The process-wide OpenTelemetry MeterProvider (``set_global``): global state, and only here.

OpenTelemetry lets a process set its global ``MeterProvider`` once; a second
``metrics.set_meter_provider`` is refused with a warning. A Monitoring does not live as long as
the process (tests build many; an app may reconfigure), so the provider installed is this
module's ``GlobalMeterProvider``, once, on the first ``configure_monitoring`` that asks for it. It
delegates to the provider of whichever live Monitoring owns it:

- the newest owner wins: a second Monitoring asking for the global while another is alive takes
  it over (logged), and the first keeps its own pipeline (its HTTP metrics, system metrics and
  sinks) but no longer receives what is recorded through the global API;
- the owner's ``shutdown()`` releases it: the global goes back to the newest live previous
  owner, or, when there is none, its instruments record nothing until the next owner takes over.
  Instruments follow every hand-over (an instrumentation that created its instruments once, at
  import, keeps reporting to whichever Monitoring is current);
- an owner that was garbage-collected without ``shutdown()`` no longer holds it.

Instruments handed out are small proxies over a real SDK instrument, re-created on the owner's
provider at each hand-over. A recording costs one extra Python call over the SDK's.

FastAPI (0.16x) switches its own HTTP metrics on for every app in the process as soon as the
global MeterProvider is anything but the API's placeholder, and off for a ``NoOpMeterProvider``.
This package records the HTTP metrics of the apps it monitors itself, so ``GlobalMeterProvider``
is a ``NoOpMeterProvider`` subclass (while delegating like any provider): FastAPI's per-request
instruments stay off, a request is counted once in every naming profile, no second
``http_server_request_duration`` family appears, and an unmonitored FastAPI app in the same
process keeps its speed. Only FastAPI reads that type: the API and SDK never test for it.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import metrics
from opentelemetry.context import Context
from opentelemetry.metrics import (
    CallbackT,
    Counter,
    Histogram,
    Meter,
    MeterProvider,
    NoOpMeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.metrics import _Gauge as Gauge
from opentelemetry.util.types import Attributes

from fluxstack_otel.errors import ConfigError

__all__ = ["GlobalMeterProvider", "claim", "owner", "release"]

_log = logging.getLogger("fluxstack_otel")
_lock = threading.RLock()  # re-entered when an owner is collected while it is held
_installed: GlobalMeterProvider | None = None
# The owners in the order they claimed it, newest last: (owner, its provider, its name).
_owners: list[tuple[weakref.ref[object], MeterProvider, str]] = []


def _live() -> list[tuple[object, MeterProvider, str]]:
    """The owners still alive, oldest first; the dead are forgotten."""
    alive = [(ref(), provider, name) for ref, provider, name in _owners]
    _owners[:] = [
        entry for entry, (who, _, _) in zip(_owners, alive, strict=True) if who is not None
    ]
    return [(who, provider, name) for who, provider, name in alive if who is not None]


def owner() -> object | None:
    """The live object that owns the global provider, if any."""
    with _lock:
        live = _live()
    return live[-1][0] if live else None


def claim(who: object, provider: MeterProvider, *, name: str) -> None:
    """Make ``provider`` the target of the process-wide MeterProvider, on behalf of ``who``.

    A live previous owner keeps its pipeline and gets the global back when ``who`` releases it.

    Args:
        who: The owner (a ``Monitoring``); held weakly.
        provider: Where global instruments record from now on.
        name: How log lines and error messages name the owner.

    Raises:
        ConfigError: Code other than this package set the global MeterProvider already.
    """
    global _installed
    with _lock:
        if _installed is None:
            candidate = GlobalMeterProvider()
            metrics.set_meter_provider(candidate)
            found = metrics.get_meter_provider()
            if found is not candidate:
                raise ConfigError(
                    f"the process-wide OpenTelemetry MeterProvider was already set by other code"
                    f" ({type(found).__module__}.{type(found).__qualname__}); pass set_global"
                    " false and give that provider's readers what they need, or do not set it",
                    path="set_global",
                )
            _installed = candidate
        live = _live()
        previous = live[-1] if live else None
        _owners[:] = [entry for entry in _owners if entry[0]() is not who]
        _owners.append((weakref.ref(who, _collected), provider, name))
        _installed.switch(provider)
    if previous is not None and previous[0] is not who:
        _log.warning(
            "fluxstack-otel: %s now provides the process-wide OpenTelemetry MeterProvider;"
            " %s keeps its own pipeline and gets it back at the shutdown() of the new one",
            name,
            previous[2],
        )


def _collected(ref: weakref.ref[object]) -> None:
    """An owner was garbage-collected without shutdown(): the global moves on as at release."""
    with _lock:
        gone = [entry for entry in _owners if entry[0] is ref]
        _owners[:] = [entry for entry in _owners if entry[0] is not ref]
        if _installed is not None and gone and _installed.target is gone[0][1]:
            rest = _live()
            _installed.switch(rest[-1][1] if rest else NoOpMeterProvider())


def release(who: object) -> None:
    """Give up the global provider if ``who`` holds it; it goes back to the previous live owner.

    With no live owner left, global instruments record nothing until the next ``claim``.
    """
    with _lock:
        live = _live()
        if _installed is None or not any(entry[0] is who for entry in live):
            return
        was_current = live[-1][0] is who
        _owners[:] = [entry for entry in _owners if entry[0]() is not who]
        if not was_current:
            return
        rest = _live()
        _installed.switch(rest[-1][1] if rest else NoOpMeterProvider())


class GlobalMeterProvider(NoOpMeterProvider):
    """A MeterProvider that delegates to a replaceable target and moves its instruments along.

    A ``NoOpMeterProvider`` by type only, for FastAPI's sake (module docstring); every method
    is overridden and delegates.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._target: MeterProvider = NoOpMeterProvider()
        self._meters: dict[tuple[str, str | None, str | None], _GlobalMeter] = {}

    def get_meter(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> Meter:
        key = (name, version, schema_url)
        with self._lock:
            meter = self._meters.get(key)
            if meter is None:
                real = self._target.get_meter(name, version, schema_url, attributes)
                meter = _GlobalMeter(name, version, schema_url, attributes, real)
                self._meters[key] = meter
            return meter

    @property
    def target(self) -> MeterProvider:
        """Where global instruments record now."""
        return self._target

    def switch(self, target: MeterProvider) -> None:
        """Send every meter's instruments, present and future, to ``target``."""
        with self._lock:
            self._target = target
            for meter in self._meters.values():
                meter.rebind(target)


class _GlobalMeter(Meter):
    def __init__(
        self,
        name: str,
        version: str | None,
        schema_url: str | None,
        attributes: Attributes,
        real: Meter,
    ) -> None:
        super().__init__(name, version=version, schema_url=schema_url)
        self._attributes = attributes
        self._real = real
        self._lock = threading.Lock()
        self._instruments: list[_Proxy] = []

    def rebind(self, provider: MeterProvider) -> None:
        real = provider.get_meter(self._name, self._version, self._schema_url, self._attributes)
        with self._lock:
            self._real = real
            for instrument in self._instruments:
                instrument.rebind(real)

    def _add(self, make: Callable[[Meter], Any], proxy: type[_Proxy]) -> Any:
        with self._lock:
            instrument = proxy(make, self._real)
            self._instruments.append(instrument)
            return instrument

    def create_counter(self, name: str, unit: str = "", description: str = "") -> Counter:
        made: Counter = self._add(lambda m: m.create_counter(name, unit, description), _Counter)
        return made

    def create_up_down_counter(
        self, name: str, unit: str = "", description: str = ""
    ) -> UpDownCounter:
        made: UpDownCounter = self._add(
            lambda m: m.create_up_down_counter(name, unit, description), _UpDownCounter
        )
        return made

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float] | None = None,
    ) -> Histogram:
        made: Histogram = self._add(
            lambda m: m.create_histogram(
                name,
                unit,
                description,
                explicit_bucket_boundaries_advisory=explicit_bucket_boundaries_advisory,
            ),
            _Histogram,
        )
        return made

    def create_gauge(self, name: str, unit: str = "", description: str = "") -> Gauge:
        made: Gauge = self._add(lambda m: m.create_gauge(name, unit, description), _GaugeProxy)
        return made

    def create_observable_counter(
        self,
        name: str,
        callbacks: Sequence[CallbackT] | None = None,
        unit: str = "",
        description: str = "",
    ) -> ObservableCounter:
        made: ObservableCounter = self._add(
            lambda m: m.create_observable_counter(name, callbacks, unit, description),
            _ObservableCounter,
        )
        return made

    def create_observable_up_down_counter(
        self,
        name: str,
        callbacks: Sequence[CallbackT] | None = None,
        unit: str = "",
        description: str = "",
    ) -> ObservableUpDownCounter:
        made: ObservableUpDownCounter = self._add(
            lambda m: m.create_observable_up_down_counter(name, callbacks, unit, description),
            _ObservableUpDownCounter,
        )
        return made

    def create_observable_gauge(
        self,
        name: str,
        callbacks: Sequence[CallbackT] | None = None,
        unit: str = "",
        description: str = "",
    ) -> ObservableGauge:
        made: ObservableGauge = self._add(
            lambda m: m.create_observable_gauge(name, callbacks, unit, description),
            _ObservableGauge,
        )
        return made


class _Proxy:
    """An instrument re-created on each new target meter; recordings go to the current one."""

    def __init__(self, make: Callable[[Meter], Any], meter: Meter) -> None:
        self._make = make
        self._real: Any = make(meter)

    def rebind(self, meter: Meter) -> None:
        # One attribute assignment: a recording racing with it goes to the old or the new target.
        self._real = self._make(meter)


class _Counter(_Proxy, Counter):
    def add(
        self, amount: int | float, attributes: Attributes = None, context: Context | None = None
    ) -> None:
        self._real.add(amount, attributes, context)


class _UpDownCounter(_Proxy, UpDownCounter):
    def add(
        self, amount: int | float, attributes: Attributes = None, context: Context | None = None
    ) -> None:
        self._real.add(amount, attributes, context)


class _Histogram(_Proxy, Histogram):
    def record(
        self, amount: int | float, attributes: Attributes = None, context: Context | None = None
    ) -> None:
        self._real.record(amount, attributes, context)


class _GaugeProxy(_Proxy, Gauge):
    def set(
        self, amount: int | float, attributes: Attributes = None, context: Context | None = None
    ) -> None:
        self._real.set(amount, attributes, context)


class _ObservableCounter(_Proxy, ObservableCounter):
    pass


class _ObservableUpDownCounter(_Proxy, ObservableUpDownCounter):
    pass


class _ObservableGauge(_Proxy, ObservableGauge):
    pass
