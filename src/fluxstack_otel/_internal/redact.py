"""Secrets out of sight: the one place that masks what a log line, an error or a repr may show.

A URL keeps its scheme, host and port (and its path where that carries no secret); its userinfo
and query become ``***``. ``redact_text`` masks the userinfo of every URL inside free text, for
messages built from values the package does not control (a backend's error, a library's log).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["MASK", "mask_url", "redact_text"]

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
