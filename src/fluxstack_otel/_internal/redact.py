"""Secrets out of sight: the one place that masks what a log line, an error or a repr may show.

A URL keeps its scheme, host and port (and its path where that carries no secret); its userinfo
and query become ``***``. ``redact_text`` masks the userinfo of every URL inside free text, for
messages built from values the package does not control (a backend's error, a library's log).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = [
    "MASK",
    "SECRET_KEYS",
    "is_secret_path",
    "mask_url",
    "mask_value",
    "redact_text",
    "safe_path",
]

MASK = "***"

# scheme://userinfo@ : the userinfo is everything up to the last '@' before the host part.
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s@]+)@")


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


def redact_text(text: str) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``***``."""
    if "@" not in text:
        return text
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)


# --- values in configuration errors -------------------------------------------------------------

# Config keys whose value is a secret or holds secrets, in either key style, and the environment
# variables of the sections that hold them. Compared in lower case.
SECRET_KEYS = frozenset(
    {
        "auth",
        "basic",
        "headers",
        "password",
        "bearer_token",
        "bearertoken",
        "fluxstack_monitoring_auth",
    }
)
_PATH_PARTS = re.compile(r"[.\[\]]")
# user:password@host without a scheme, at the start of a value (a collector "endpoint").
_BARE_USERINFO = re.compile(r"^[^/\s@:]*:[^/\s@]*@")


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
        return _BARE_USERINFO.sub(f"{MASK}@", redact_text(str.__str__(value)))
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
