"""Secrets out of sight: the one place that masks what a log line, an error or a repr may show.

A URL keeps its scheme, host and port (and its path where that carries no secret); its userinfo
and query become ``***``. ``redact_text`` masks the userinfo of every URL inside free text, for
messages built from values the package does not control (a backend's error, a library's log),
and of bare ``user:password@host`` targets (gRPC writes its endpoint so, without a scheme).
``url_secrets`` lists the secret parts of a configured URL, for ``redact_text(secrets=...)`` to
mask wherever they appear. ``RedactingFilter`` applies all of it to log records, message, arguments
and traceback text alike; the package's own logger carries ``LOG_FILTER``
(``runtime/failures.py``), and every part that is given a URL with userinfo (a webhook, the
Alertmanager, a JSON push target, an OTLP endpoint) hands it to ``mask_in_logs``, so even a library
error that quotes a fragment of it (``nonnumeric port: 'PASSWORD@host'``) is masked.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable
from urllib.parse import unquote, urlsplit

__all__ = [
    "LOG_FILTER",
    "MASK",
    "SECRET_KEYS",
    "RedactingFilter",
    "is_secret_path",
    "mask_in_logs",
    "mask_url",
    "mask_value",
    "redact_record",
    "redact_text",
    "safe_path",
    "url_secrets",
]

MASK = "***"

# scheme://userinfo@ : the userinfo is everything up to the last '@' before the host part.
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s]+)@")
# user:password@host without a scheme (a gRPC target): a word with a colon, then '@', then a host.
_BARE_USERINFO = re.compile(
    r"(?<![^\s(\[{<,;=\"'])(?P<userinfo>[^\s/:@\"'*][^\s/:\"']*:[^\s/\"']*)@(?=[\w\[])"
)
_MIN_SECRET = 3  # a shorter known secret would mask ordinary text


def mask_url(url: str, *, keep_path: bool) -> str:
    """``url`` without its secrets.

    Args:
        url: Any URL (or text that fails to parse as one, which is masked whole).
        keep_path: Keep the path (a collector endpoint); otherwise a path or query becomes
            ``/***`` (webhook URLs carry their secret in the path).
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return MASK
    if not parts.scheme or not host:
        return url.rsplit("@", 1)[-1] if keep_path else MASK
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{port}" if port else ""
    rest = (parts.path if keep_path else "") + ("?***" if parts.query else "")
    if not keep_path and (parts.path.strip("/") or parts.query):
        rest = "/***"
    return f"{parts.scheme}://{netloc}{rest}"


def redact_text(text: str, *, secrets: Collection[str] = ()) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``***``.

    Args:
        text: Free text.
        secrets: Known secret values (``url_secrets``), masked wherever they appear.
    """
    for secret in secrets:
        if len(secret) >= _MIN_SECRET and secret in text:
            text = text.replace(secret, MASK)
    if "@" not in text:
        return text
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    return _BARE_USERINFO.sub(f"{MASK}@", text)


def url_secrets(url: str | None) -> tuple[str, ...]:
    """The secret parts of ``url``: its userinfo and password, as written and decoded.

    Returns:
        The values to mask, longest first (so a password inside a userinfo goes with it).
    """
    if not url or "@" not in url:
        return ()
    try:
        parts = urlsplit(url if "//" in url else f"//{url}")
        netloc = parts.netloc
    except ValueError:
        return ()
    userinfo, at, _ = netloc.rpartition("@")
    if not at:
        return ()
    found = {userinfo, unquote(userinfo)}
    for value in (parts.password, parts.username if parts.password is None else None):
        if value:
            found.update({value, unquote(value)})
    return tuple(sorted((s for s in found if len(s) >= _MIN_SECRET), key=len, reverse=True))


def redact_record(record: logging.LogRecord, secrets: Collection[str] = ()) -> None:
    """Mask ``record``'s message and traceback text in place (``redact_text``).

    The message is rendered once and kept without arguments when masking changed it; a traceback
    is formatted now, masked, and left in ``exc_text``, which formatters print as it is.
    """
    try:
        message = record.getMessage()
    except Exception:  # a malformed record is the logging module's business, not ours
        return
    masked = redact_text(message, secrets=secrets)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact_text(record.exc_text, secrets=secrets)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info, secrets=secrets)


class RedactingFilter(logging.Filter):
    """A log filter that lets every record through, masked (``redact_record``).

    Args:
        secrets: Known secret values to mask besides URL userinfo; more can be added later
            (``add``).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: tuple[str, ...] = ()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Mask these values too (longest first, so a password inside a userinfo goes with it)."""
        new = {s for s in secrets if len(s) >= _MIN_SECRET} - set(self.secrets)
        if new:
            self.secrets = tuple(sorted({*self.secrets, *new}, key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record, self.secrets)
        return True


LOG_FILTER = RedactingFilter()
"""The filter of the package's logger, with every secret handed to ``mask_in_logs``."""


def mask_in_logs(*urls: str | None) -> None:
    """Mask the userinfo of these URLs in every log line of the package, wherever it appears."""
    LOG_FILTER.add(s for url in urls for s in url_secrets(url))


# --- values in configuration errors -------------------------------------------------------------

# Config keys whose value is a secret or holds secrets, in either key style, and the environment
# variables of the sections that hold them. Compared in lower case.
SECRET_KEYS = frozenset(
    {
        "auth",
        "basic",
        "headers",
        "options",
        "password",
        "bearer_token",
        "bearertoken",
        "fluxstack_monitoring_auth",
    }
)
_PATH_PARTS = re.compile(r"[.\[\]]")
# user:password@host without a scheme, at the start of a value (a collector "endpoint").
_LEADING_USERINFO = re.compile(r"^[^/\s@:]*:[^/\s@]*@")


def is_secret_path(path: str) -> bool:
    """True when a key path (``auth.basic.username``, ``exporters[0].headers.x``) or variable
    (``FLUXSTACK_MONITORING_AUTH``) lies inside a section that holds secrets."""
    return any(part.lower() in SECRET_KEYS for part in _PATH_PARTS.split(path) if part)


def safe_path(path: str) -> str:
    """``path`` cut after its first segment that names a secret section (``auth.x.y`` is
    ``auth``): keys inside such a section may be pasted secrets, so a message names the section."""
    for match in _PATH_PARTS.finditer(path):
        head = path[: match.start()]
        if is_secret_path(head):
            return head
    return path


def mask_value(value: object, *, depth: int = 8) -> object:
    """A copy of a received configuration value that is safe to quote.

    Mappings keep their keys; the value of a secret key (``SECRET_KEYS``) becomes ``***``;
    strings lose the userinfo of URLs in them (with a scheme or, at their start, without);
    lists and tuples are masked item by item. Past
    ``depth`` levels, or for any other container, the value's type is shown instead.

    Args:
        value: What the configuration held.
        depth: How many levels of nesting are walked.

    Returns:
        The masked copy (the value itself when nothing in it needs masking).
    """
    if isinstance(value, str):
        return _LEADING_USERINFO.sub(f"{MASK}@", redact_text(str.__str__(value)))
    if isinstance(value, dict | list | tuple) and depth <= 0:
        return _Shown(f"<{type(value).__name__}>")
    if isinstance(value, dict):
        return {
            key: _Shown(MASK)
            if isinstance(key, str) and key.lower() in SECRET_KEYS
            else mask_value(item, depth=depth - 1)
            for key, item in list(value.items())[:20]
        }
    if isinstance(value, list | tuple):
        masked = [mask_value(item, depth=depth - 1) for item in value[:20]]
        return tuple(masked) if isinstance(value, tuple) else masked
    return value


class _Shown(str):
    """Text shown as it is in a repr (``***``, ``<dict>``), not quoted."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)
