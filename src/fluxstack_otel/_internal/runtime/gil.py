"""A long loop on a background thread gives the app's threads their turn at the interpreter.

A scrape or an export of tens of thousands of series runs on a thread of its own, but it needs
the interpreter lock the app's event loop needs too: CPython hands the lock to a waiting thread
only every ``sys.getswitchinterval()`` (5 ms), so a request arriving during a large render
waits in steps of 5 ms, and the app's p99 rises with every scrape (measured under uvicorn with
10,000 label sets and a scrape every 2 s: p99 10 ms without scrapes, 32 ms with). The loops that
walk every series (the snapshot, the projection, the text) call ``yield_now`` every
``YIELD_EVERY`` series: a short sleep releases the lock, a waiting thread takes it, and the loop
goes on when it is handed back. Never under the recorder's lock (a fork meanwhile would leave it
held in the child); the other locks a collection runs under are made anew in a child.

In: nothing. Out: the call, and how often the loops make it (a mask on the series' index).
"""

from __future__ import annotations

import time

__all__ = ["YIELD_EVERY", "YIELD_MASK", "yield_now"]

YIELD_EVERY = 128
"""Series walked between two yields (about 0.2-0.5 ms of work)."""
YIELD_MASK = YIELD_EVERY - 1
PAUSE = 0.0001
"""Seconds a yield sleeps: long enough for a waiting thread to wake and take the lock (a
``sleep(0)`` hands it back before the waiter is scheduled), short against the work between."""
"""``if not i & YIELD_MASK: yield_now()``: every ``YIELD_EVERY``-th index, from the first."""


def yield_now() -> None:
    """Release the interpreter lock for any thread waiting for it."""
    time.sleep(PAUSE)
