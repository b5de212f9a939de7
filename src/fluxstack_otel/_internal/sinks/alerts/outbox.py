"""The sending side of the webhook and Alertmanager notifiers: one JSON POST queue per endpoint.

In: JSON documents (``Outbox.put``), from the evaluation thread. Out: POSTs from a daemon thread
of its own, each with a timeout and retried with exponential backoff within a bounded budget; a
full queue drops the document and a failed POST is reported, naming only the URL's origin.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from fluxstack_otel._internal.redact import mask_in_logs, mask_url
from fluxstack_otel._internal.runtime.failures import report_failure
from fluxstack_otel._internal.sinks.periodic import Tick

if TYPE_CHECKING:
    import queue

__all__ = ["Outbox"]


def _origin(url: str) -> str:
    # A webhook URL's path often holds a secret token, its userinfo a password: reports name
    # only scheme, host and port.
    return mask_url(url, keep_path=False).removesuffix("/***")


class Outbox:
    """POSTs JSON bodies from a daemon thread of its own, with retries; bounded queue."""

    def __init__(
        self,
        what: str,
        url: str,
        *,
        timeout: float,
        headers: Mapping[str, str],
        attempts: int = 3,
        first_backoff: float = 0.5,
        capacity: int = 100,
        send: Callable[[str, bytes, Mapping[str, str], float], int] | None = None,
    ) -> None:
        # The HTTP client is imported by the first webhook or Alertmanager notifier, not with
        # the package.
        import queue

        from fluxstack_otel._internal.transport.post import post

        mask_in_logs(url)
        self.what = f"{what} {_origin(url)}"
        self._url = url
        self._timeout = timeout
        self._headers = {"Content-Type": "application/json", **headers}
        self._first_backoff = first_backoff
        # Enough time for ``attempts`` attempts and the backoffs between them.
        self._budget = attempts * timeout + first_backoff * (2 ** (attempts - 1) - 1) * 1.2 + 0.1
        self._attempts = attempts
        self._send = send if send is not None else post
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=capacity)
        self._abort = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def put(self, document: object) -> None:
        """Queue one JSON document; when the queue is full it is dropped and reported."""
        body = json.dumps(document, allow_nan=False).encode()
        with self._lock:
            if self._closed:
                return
            if self._thread is None or not self._thread.is_alive():  # first use, or forked
                self._thread = threading.Thread(
                    target=self._run, name="fluxstack-otel-alert-sender", daemon=True
                )
                self._thread.start()
        import queue

        try:
            self._queue.put_nowait(body)
        except queue.Full:
            report_failure(f"sending alerts to {self.what} (queue full, dropped)", exc_info=False)

    def _run(self) -> None:
        from fluxstack_otel._internal.transport.post import PostError

        while True:
            body = self._queue.get()
            if body is None:
                return
            try:
                self._post(body)
            except PostError:
                report_failure(f"sending alerts to {self.what}", exc_info=False)
            except Exception:
                report_failure(f"sending alerts to {self.what}")

    def _post(self, body: bytes) -> None:
        from fluxstack_otel._internal.transport.post import PostError, post_with_retries

        left = self._attempts

        def attempt(url: str, data: bytes, headers: Mapping[str, str], timeout: float) -> int:
            # post_with_retries bounds retries by time; this bounds their number too.
            nonlocal left
            left -= 1
            try:
                return self._send(url, data, headers, timeout)
            except PostError as exc:
                if left <= 0:
                    raise PostError(str(exc), retryable=False) from None
                raise

        post_with_retries(
            self._url,
            body,
            self._headers,
            timeout=self._timeout,
            tick=Tick(time.monotonic() + self._budget, abort=self._abort),
            first_backoff=self._first_backoff,
            send=attempt,
        )

    def shutdown(self, timeout: float) -> None:
        """Send what is queued within ``timeout``; then stop retrying and leave."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is None:
            return
        import queue

        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):  # the thread is stuck: the join below gives up
            self._queue.put(None, timeout=max(0.0, timeout))
        thread.join(max(0.0, deadline - time.monotonic() - 0.05))
        self._abort.set()  # a backoff in progress ends now
        thread.join(max(0.0, deadline - time.monotonic()))
