"""The exporter entries of the configuration: one frozen dataclass per ``type``, and their parser.

Part of the configuration model (``_config`` re-exports every name); the generic checks come
from ``_config_parse``. Rules that span the entries (two Prometheus entries on one address) are
checked here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, Literal, TypeAlias

from fluxstack_otel._internal.config.checks import (
    CHECK,
    PATH_TEXT,
    Check,
    _pairs,
    boolean,
    choice,
    duration,
    endpoint_path,
    entries,
    entry_type,
    fail,
    headers,
    integer,
    is_url,
    items,
    join,
    masked_repr,
    number,
    optional_host_name,
    optional_text,
    text,
)
from fluxstack_otel._internal.config.fields import build, option, validate
from fluxstack_otel.errors import ConfigError

__all__ = [
    "ConsoleExporterConfig",
    "ExporterConfig",
    "FileExporterConfig",
    "JsonExporterConfig",
    "OtelExporterConfig",
    "OtlpExporterConfig",
    "PrometheusExporterConfig",
    "parse_exporters",
]


def _optional_boolean(value: object, path: str, camel: bool) -> bool | None:
    return None if value is None else boolean(value, path, camel)


@dataclass(frozen=True, kw_only=True)
class _ExporterBase:
    """What every exporter entry has."""

    type: ClassVar[str]
    """The entry's ``type`` key."""
    enabled: bool = option(True, boolean)
    """A disabled exporter is still validated and kept here; consumers skip it."""
    interval: float | None = option(None, number(gt=0, duration=True, off=(None,)))
    """Seconds between runs of a periodic exporter; ``None`` means ``collect_interval``."""

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True, kw_only=True, repr=False)  # its own __repr__ masks push_url's userinfo
class PrometheusExporterConfig(_ExporterBase):
    """Prometheus exposition, served on the app at ``endpoint`` or, with ``port``, on its own,
    and with ``push_url`` also pushed to a Pushgateway every interval."""

    type: ClassVar[Literal["prometheus"]] = "prometheus"
    endpoint: str = option("/metrics", endpoint_path)
    """The path that serves the exposition."""
    host: str | None = option(None, optional_host_name)
    """Interface of the standalone server (needs ``port``); ``None`` means ``127.0.0.1``."""
    port: int | None = option(None, integer(0, 65535))
    """Port of a standalone server (0 picks a free one); ``None`` serves on the app itself."""
    openmetrics: bool = option(True, boolean)
    """Answer in OpenMetrics when the scraper asks for it."""
    gzip: bool = option(True, boolean)
    """Compress the answer when the scraper accepts gzip."""
    target_info: bool | None = option(None, _optional_boolean)
    """Expose the resource as a ``target_info`` series; ``None``: as the naming profile says
    (off for ``fluxstack``, the plugin's exact families; on for ``semconv``, as OpenTelemetry's
    own Prometheus exporter does)."""
    scope_labels: bool | None = option(None, _optional_boolean)
    """Add ``otel_scope_*`` labels to every series; ``None``: as the naming profile says (off for
    ``fluxstack``, on for ``semconv``, as OpenTelemetry's own Prometheus exporter does)."""
    push_url: str | None = option(
        None, text("an http:// or https:// URL of a Pushgateway", is_url, null=True)
    )
    """A Pushgateway the text exposition is PUT to every ``interval`` (and once at shutdown), as
    ``<push_url>/metrics/job/<service name>/instance/<service.instance.id>``."""

    def __post_init__(self) -> None:
        validate(self)
        if self.host and self.port is None:
            raise ConfigError(
                f"host {self.host!r} is for a standalone server and needs a port;"
                " without one the app itself serves the endpoint",
                path="host",
            )

    def __repr__(self) -> str:
        return masked_repr(self)


@dataclass(frozen=True, kw_only=True)
class ConsoleExporterConfig(_ExporterBase):
    """A periodic snapshot written to the log or to standard output."""

    type: ClassVar[Literal["console"]] = "console"
    format: Literal["text", "json"] = option("text", choice("text", "json"))
    """``text`` for people, ``json`` for log pipelines."""
    stream: Literal["log", "stdout"] = option("log", choice("log", "stdout"))
    """``log`` writes through the ``fluxstack_otel`` logger, ``stdout`` prints."""


@dataclass(frozen=True, kw_only=True, repr=False)  # its own __repr__ masks secrets
class JsonExporterConfig(_ExporterBase):
    """The JSON document: served at ``endpoint``, POSTed to ``url``, written to ``file_path``."""

    type: ClassVar[Literal["json"]] = "json"
    endpoint: str | None = option(
        None, text(f"{PATH_TEXT} or an http(s) URL", lambda t: t[:1] == "/" or is_url(t), null=True)
    )
    """The path that serves the document on the app (FluxStack's URL form becomes ``url``)."""
    url: str | None = option(None, text("an http:// or https:// URL", is_url, null=True))
    """An http(s) URL the document is POSTed to every interval."""
    file_path: str | None = option(None, optional_text)
    """A file the document is written to every interval."""
    timeout: float = option(5.0, duration)
    """Seconds a POST may take."""
    headers: tuple[tuple[str, str], ...] = option((), headers)
    """Extra HTTP headers of the POST as (name, value) pairs; ``repr`` masks the values."""

    def __post_init__(self) -> None:
        validate(self)
        if self.endpoint is not None and is_url(self.endpoint):
            # FluxStack POSTs to a json ``endpoint`` URL: that is ``url`` here.
            if self.url is not None:
                raise fail("endpoint", "a path (url is set too: keep one)", self.endpoint)
            object.__setattr__(self, "url", self.endpoint)
            object.__setattr__(self, "endpoint", None)
        if self.endpoint is None and self.url is None and self.file_path is None:
            raise ConfigError(
                "a json exporter needs at least one of 'endpoint', 'url', 'file_path'"
                " ('filePath' in FluxStack style; for JSON in the log, use a console exporter"
                " with format 'json')"
            )

    def __repr__(self) -> str:
        return masked_repr(self)


@dataclass(frozen=True, kw_only=True)
class FileExporterConfig(_ExporterBase):
    """A file rewritten every interval."""

    type: ClassVar[Literal["file"]] = "file"
    file_path: str = field(metadata={CHECK: text()})
    """The file to write (required)."""
    format: Literal["prometheus", "json"] = option(
        "prometheus", choice("prometheus", "json", aliases={"text": "prometheus"})
    )
    """Prometheus text or the JSON document (FluxStack's ``text`` means ``prometheus``)."""
    history: bool = option(False, boolean)
    """Append one JSON line per interval instead of rewriting the file."""


@dataclass(frozen=True, kw_only=True, repr=False)  # its own __repr__ masks secrets
class OtlpExporterConfig(_ExporterBase):
    """OTLP push to a collector, over HTTP/protobuf or gRPC."""

    type: ClassVar[Literal["otlp"]] = "otlp"
    endpoint: str | None = option(None, optional_text)
    """The collector; ``None`` leaves it to ``OTEL_EXPORTER_OTLP_*`` and the exporter's default."""
    protocol: Literal["http/protobuf", "grpc"] = option(
        "http/protobuf", choice("http/protobuf", "grpc")
    )
    """The OTLP transport."""
    headers: tuple[tuple[str, str], ...] = option((), headers)
    """Extra headers (gRPC metadata) as (name, value) pairs; ``repr`` masks the values."""
    timeout: float = option(10.0, duration)
    """Seconds an export may take."""
    compression: Literal["gzip", "none"] | None = option(None, choice("gzip", "none", null=True))
    """Payload compression; ``None`` leaves it to the environment and the exporter's default."""
    temporality: Literal["cumulative", "delta", "lowmemory"] = option(
        "cumulative", choice("cumulative", "delta", "lowmemory")
    )
    """Aggregation temporality of sums and histograms: ``delta`` for every counter and
    histogram, ``lowmemory`` (the OpenTelemetry preference) for the synchronous ones only."""

    def __post_init__(self) -> None:
        validate(self)
        if (
            self.endpoint is not None
            and self.protocol == "http/protobuf"
            and not is_url(self.endpoint)
        ):
            allowed = "an http:// or https:// URL with protocol 'http/protobuf'"
            raise fail("endpoint", allowed, self.endpoint)

    def __repr__(self) -> str:
        return masked_repr(self)


_EXPORTER_NAME = re.compile(r"[A-Za-z_][\w.-]*(:[A-Za-z_][\w.]*)?")
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


def _options(value: object, path: str, camel: bool) -> tuple[tuple[str, object], ...]:
    pairs = []
    for key, item in _pairs(value, path):
        if not _IDENTIFIER.fullmatch(key):
            raise fail(join(path, key), "a keyword argument name", key)
        pairs.append((key, item))
    return tuple(pairs)


@dataclass(frozen=True, kw_only=True, repr=False)  # its own __repr__ masks the option values
class OtelExporterConfig(_ExporterBase):
    """Any installed OpenTelemetry metric exporter or reader, fed the whole stream."""

    type: ClassVar[Literal["otel"]] = "otel"
    exporter: str = field(
        metadata={
            CHECK: text(
                "an opentelemetry_metrics_exporter entry-point name (such as 'console' or"
                " 'otlp_proto_http') or 'module:attribute'",
                _EXPORTER_NAME.fullmatch,  # type: ignore[arg-type]
            )
        }
    )
    """The exporter: an ``opentelemetry_metrics_exporter`` entry-point name, or ``module:attribute``."""
    options: tuple[tuple[str, object], ...] = option((), _options)
    """Keyword arguments for its constructor, as (name, value) pairs; ``repr`` masks the values."""

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}=***" for k, _ in self.options)
        return (
            f"OtelExporterConfig(enabled={self.enabled!r}, interval={self.interval!r}, "
            f"exporter={self.exporter!r}, options=({shown}))"
        )


ExporterConfig: TypeAlias = (
    PrometheusExporterConfig
    | ConsoleExporterConfig
    | JsonExporterConfig
    | FileExporterConfig
    | OtlpExporterConfig
    | OtelExporterConfig
)
_EXPORTERS: dict[str, type[ExporterConfig]] = {
    c.type: c
    for c in (
        PrometheusExporterConfig,
        ConsoleExporterConfig,
        JsonExporterConfig,
        FileExporterConfig,
        OtlpExporterConfig,
        OtelExporterConfig,
    )
}
# FluxStack gives every exporter ``format: "text" | "json"``; where it means nothing here, the one
# value that fits is accepted and ignored.
_IGNORED_FORMAT: dict[str, Check] = {"prometheus": choice("text"), "json": choice("json")}


def parse_exporters(value: object, path: str, camel: bool) -> tuple[ExporterConfig, ...]:
    """The ``exporters`` list: each entry by its ``type``."""
    out = tuple(_exporter(item, f"{path}[{i}]", camel) for i, item in enumerate(items(value, path)))
    # Two enabled Prometheus entries at one address would shadow each other without a word (on
    # the app) or fail to bind at start-up (standalone); port 0 picks a free port each time.
    taken: dict[str, int] = {}
    for i, e in enumerate(out):
        if isinstance(e, PrometheusExporterConfig) and e.enabled and e.port != 0:
            where = e.endpoint if e.port is None else f"{e.host or '127.0.0.1'}:{e.port}"
            if where in taken:
                raise ConfigError(
                    f"serves {where!r}, as {path}[{taken[where]}] does already",
                    path=f"{path}[{i}]",
                )
            taken[where] = i
    return out


def _exporter(value: object, path: str, camel: bool) -> ExporterConfig:
    if isinstance(value, _ExporterBase):
        return value  # type: ignore[return-value]  # every concrete entry is an ExporterConfig
    raw = entries(value, path)
    kind = entry_type(raw, _EXPORTERS, path, camel)
    extra: dict[str, Check] = {"type": lambda *_: None}  # already read above
    if kind in _IGNORED_FORMAT:
        extra["format"] = _IGNORED_FORMAT[kind]
    return build(_EXPORTERS[kind], raw, path, camel, extra)
