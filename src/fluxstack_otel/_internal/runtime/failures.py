"""Run-time failures: logged with context, rate-limited, and counted; never raised into the app.

This module holds process-wide state: the failure counters and the time each kind of failure
was last logged. They are process-wide because a failure in a shared path (the middleware, a
callback) is not owned by any single exporter. (The other process-wide piece is the periodic
scheduler of ``scheduler.py``.)

Every record of the package's logger passes ``redact.LOG_FILTER``, so no log line of the package
shows a URL's userinfo (or any secret handed to ``mask_in_logs``), in its message or traceback.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable

from fluxstack_otel._internal.redact import LOG_FILTER

__all__ = ["FailureLog", "failure_counts", "report_failure"]

_log = logging.getLogger("fluxstack_otel")
_log.addFilter(LOG_FILTER)  # a set: adding it twice keeps one


class FailureLog:
    """Counts failures per kind and logs each kind at most once per ``interval`` seconds.

    Args:
        interval: Minimum seconds between two log lines of the same kind.
        clock: Monotonic clock, injectable for tests.
    """

    def __init__(
        self, *, interval: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._last_logged: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def report(self, what: str, *, exc_info: bool = True, level: int = logging.ERROR) -> None:
        """Count one failure of kind ``what`` and log it unless one was logged recently.

        Call from an ``except`` block to log the active exception's traceback.
        """
        now = self._clock()
        with self._lock:
            self._counts[what] = self._counts.get(what, 0) + 1
            last = self._last_logged.get(what)
            if last is not None and now - last < self._interval:
                self._suppressed[what] = self._suppressed.get(what, 0) + 1
                return
            suppressed = self._suppressed.pop(what, 0)
            self._last_logged[what] = now
        more = f" ({suppressed} more since the last report)" if suppressed else ""
        _log.log(
            level,
            "fluxstack-otel: %s failed%s; the app is unaffected",
            what,
            more,
            exc_info=exc_info and sys.exc_info()[0] is not None,
        )

    def counts(self) -> dict[str, int]:
        """Failures counted so far, per kind."""
        with self._lock:
            return dict(self._counts)


_default = FailureLog()


def report_failure(what: str, *, exc_info: bool = True, level: int = logging.ERROR) -> None:
    """Count and (rate-limited) log a failure in the process-wide failure log."""
    _default.report(what, exc_info=exc_info, level=level)


def failure_counts() -> dict[str, int]:
    """The process-wide failure counts, per kind."""
    return _default.counts()
