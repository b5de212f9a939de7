"""POST a body to an HTTP endpoint with retries and exponential backoff, inside one run.

Standard library only (``urllib.request``, imported on the first POST, so an app that never
posts does not load the HTTP client and TLS): no runtime dependency for a JSON webhook. Every
attempt has a timeout, and the backoff waits go through the run's ``Tick``, so retries end before
the next run starts and a shutdown cuts them short.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from fluxstack_otel._internal.sinks.periodic import Tick

__all__ = ["PostError", "post", "post_with_retries", "public_url"]

# Worth another try: the backend is busy, restarting, or timed out. Any other 4xx is final.
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_FIRST_BACKOFF = 0.5
_MIN_ATTEMPT = 0.01  # no attempt is started with less time than this left


class PostError(Exception):
    """A POST failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def public_url(url: str) -> str:
    """``scheme://host:port`` of a URL, for logs: webhook URLs often carry a secret in their path
    or query (``/services/T0/B0/XXXX``), and userinfo is a password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparsable URL>"
    if not parts.scheme or not host:
        return url.split("?", 1)[0].rsplit("@", 1)[-1]  # a bare host:port, as gRPC takes
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}"


def post(
    url: str, body: bytes, headers: Mapping[str, str], timeout: float, *, method: str = "POST"
) -> int:
    """POST ``body`` once (or send it with another ``method``: a Pushgateway takes a PUT).

    Returns:
        The 2xx (or 3xx) status.

    Raises:
        PostError: Connection failure, timeout, or an error status; names the URL and the cause.
    """
    import urllib.error
    import urllib.request
    from http.client import HTTPException

    shown = public_url(url)
    url, headers = _userinfo_as_basic_auth(url, headers)
    request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise PostError(
            f"{method} {shown} answered {exc.code}", retryable=exc.code in _RETRYABLE_STATUS
        ) from None
    except (urllib.error.URLError, HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PostError(f"{method} {shown} failed: {reason}", retryable=True) from None


def _userinfo_as_basic_auth(url: str, headers: Mapping[str, str]) -> tuple[str, Mapping[str, str]]:
    """``http://user:password@host/...`` as ``http://host/...`` plus ``Authorization: Basic``
    (unless the headers set one): urllib would take the userinfo for part of the host."""
    if "@" not in url:
        return url, headers
    from urllib.parse import unquote, urlsplit, urlunsplit

    from fluxstack_otel._internal.redact import mask_in_logs

    parts = urlsplit(url)
    if parts.username is None:
        return url, headers
    mask_in_logs(url)
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    if any(key.lower() == "authorization" for key in headers):
        return bare, headers
    import base64

    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    basic = "Basic " + base64.b64encode(pair).decode("ascii")
    return bare, {**headers, "Authorization": basic}


def post_with_retries(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,
    tick: Tick,
    first_backoff: float = _FIRST_BACKOFF,
    send: Callable[[str, bytes, Mapping[str, str], float], int] = post,
) -> None:
    """POST ``body``, retrying with exponential backoff (0.5 s, 1 s, 2 s... ±20 %) within ``tick``.

    Each attempt waits at most ``timeout`` seconds, and never past the tick's deadline.

    Args:
        url: Where to POST.
        body: The request body.
        headers: The request headers.
        timeout: Seconds one attempt may take.
        tick: The run: its deadline bounds the retries, a stop cuts the backoff short.
        first_backoff: Seconds before the first retry; each retry doubles it.
        send: The single attempt (``post``), replaceable in tests.

    Raises:
        PostError: The last failure, once no retry fits before the deadline or a failure is
            final (a 4xx other than 408/425/429).
    """
    backoff = first_backoff
    while True:
        budget = min(timeout, tick.remaining())
        if budget < _MIN_ATTEMPT:
            raise PostError(f"POST {public_url(url)}: no time left in this run", retryable=True)
        try:
            send(url, body, headers, budget)
            return
        except PostError as exc:
            if not exc.retryable or not tick.wait(backoff * random.uniform(0.8, 1.2)):
                raise
        backoff *= 2
