"""The process-wide OpenTelemetry MeterProvider (``set_global``): global state, and only here.

OpenTelemetry lets a process set its global ``MeterProvider`` once; a second
``metrics.set_meter_provider`` is refused with a warning. A Monitoring does not live as long as
the process (tests build many; an app may reconfigure), so the provider installed is this
module's ``GlobalMeterProvider``, once, on the first ``configure_monitoring`` that asks for it. It
delegates to the provider of whichever live Monitoring owns it:

- one owner at a time: a second Monitoring asking for the global while the owner is alive is a
  ``ConfigError`` (call the owner's ``shutdown()`` first, or pass ``set_global: false``);
- the owner's ``shutdown()`` releases it: its instruments then record nothing until the next owner
  takes over, and they all follow the new owner (an instrumentation that created its instruments
  once, at import, keeps reporting to whichever Monitoring is current);
- an owner that was garbage-collected without ``shutdown()`` no longer holds it.

Instruments handed out are small proxies over a real SDK instrument, re-created on the owner's
provider at each hand-over. A recording costs one extra Python call over the SDK's.
"""

from __future__ import annotations

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

_lock = threading.Lock()
_installed: GlobalMeterProvider | None = None
_owner: weakref.ref[object] | None = None
_owner_name = ""


def owner() -> object | None:
    """The live object that owns the global provider, if any."""
    return _owner() if _owner is not None else None


def claim(who: object, provider: MeterProvider, *, name: str) -> None:
    """Make ``provider`` the target of the process-wide MeterProvider, on behalf of ``who``.

    Args:
        who: The owner (a ``Monitoring``); held weakly.
        provider: Where global instruments record from now on.
        name: How error messages name the owner.

    Raises:
        ConfigError: Another live owner holds it, or code other than this package set the
            global MeterProvider already.
    """
    global _installed, _owner, _owner_name
    with _lock:
        current = owner()
        if current is not None and current is not who:
            raise ConfigError(
                f"{_owner_name} already provides the process-wide OpenTelemetry MeterProvider;"
                " call its shutdown() first, or pass set_global false to this one",
                path="set_global",
            )
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
        _installed.switch(provider)
        _owner = weakref.ref(who)
        _owner_name = name


def release(who: object) -> None:
    """Give up the global provider if ``who`` owns it; its instruments then record nothing."""
    global _owner
    with _lock:
        if _installed is not None and owner() is who:
            _installed.switch(NoOpMeterProvider())
            _owner = None


class GlobalMeterProvider(MeterProvider):
    """A MeterProvider that delegates to a replaceable target and moves its instruments along."""

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
