"""Which exposition format a scrape gets: the ``Accept`` header against what ``/metrics`` serves.

Text 0.0.4 (the default), OpenMetrics 1.0 (or 0.0.1) and Prometheus' delimited protobuf, the
one format that carries native histograms.
"""

from __future__ import annotations

__all__ = [
    "CONTENT_TYPE_OPENMETRICS",
    "CONTENT_TYPE_PROTOBUF",
    "CONTENT_TYPE_TEXT",
    "OPENMETRICS",
    "PROTOBUF",
    "TEXT",
    "negotiate",
]

CONTENT_TYPE_TEXT = "text/plain; version=0.0.4; charset=utf-8"
CONTENT_TYPE_OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
_CONTENT_TYPE_OPENMETRICS_001 = "application/openmetrics-text; version=0.0.1; charset=utf-8"

TEXT, OPENMETRICS, PROTOBUF = "text", "openmetrics", "protobuf"
"""The three exposition formats ``negotiate`` picks from."""

CONTENT_TYPE_PROTOBUF = (
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
)
_PROTOBUF_MEDIA = "application/vnd.google.protobuf"
_PROTOBUF_PROTO = "io.prometheus.client.MetricFamily"


def negotiate(
    accept: str | None, *, allow_openmetrics: bool = True, allow_protobuf: bool = False
) -> tuple[str, str]:
    """Pick the exposition format from an ``Accept`` header.

    The protobuf format is what a Prometheus with native histograms asks for first; it is only
    taken in its delimited ``MetricFamily`` encoding, the one Prometheus reads.

    Returns:
        ``(format, content_type)``, the format one of ``TEXT``, ``OPENMETRICS``, ``PROTOBUF``:
        the highest-quality format both sides support; the 0.0.4 text format when the header is
        absent, unparsable or names nothing we serve.
    """
    if not accept or not (allow_openmetrics or allow_protobuf):
        return TEXT, CONTENT_TYPE_TEXT
    best_q, best = 0.0, (TEXT, CONTENT_TYPE_TEXT)
    for part in accept.split(","):
        media, _, params = part.partition(";")
        media = media.strip().lower()
        q, version, proto, encoding = 1.0, None, None, None
        for param in params.split(";"):
            key, _, value = param.partition("=")
            key, value = key.strip().lower(), value.strip()
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
            elif key == "version":
                version = value
            elif key == "proto":
                proto = value
            elif key == "encoding":
                encoding = value.lower()
        if media == "application/openmetrics-text":
            if not allow_openmetrics:
                continue
            if version in (None, "1.0.0"):
                candidate = (OPENMETRICS, CONTENT_TYPE_OPENMETRICS)
            elif version == "0.0.1":
                candidate = (OPENMETRICS, _CONTENT_TYPE_OPENMETRICS_001)
            else:
                continue
        elif media == _PROTOBUF_MEDIA:
            if not allow_protobuf or proto != _PROTOBUF_PROTO or encoding != "delimited":
                continue
            candidate = (PROTOBUF, CONTENT_TYPE_PROTOBUF)
        elif media in ("text/plain", "text/*", "*/*"):
            candidate = (TEXT, CONTENT_TYPE_TEXT)
        else:
            continue
        if q > best_q:
            best_q, best = q, candidate
    return best
