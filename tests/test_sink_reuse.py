"""The push sinks of an idle server reuse their encoding of the HTTP scope, and are never stale.

The console snapshot (text and JSON), the file (Prometheus text and JSON) and the JSON document
(endpoint and push) keep what they made of the HTTP scope under the recorder's version. Each
output must equal a fresh encoding of the same moment: a request, a moved custom metric or an
eviction between two outputs always shows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from functools import partial
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import MetricsData

from fluxstack_otel._internal.runtime.scheduler import Round
from fluxstack_otel._internal.sinks.base import SinkContext
from fluxstack_otel._internal.sinks.console import ConsoleSink
from fluxstack_otel._internal.sinks.document import document, document_text, dumps
from fluxstack_otel._internal.sinks.file import FileSink
from fluxstack_otel._internal.sinks.json_endpoint import JsonSink
from fluxstack_otel.config import ConsoleExporterConfig, FileExporterConfig, JsonExporterConfig
from support.pipeline import Pipeline

Encode = Callable[[Round | None], str]
_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def _sink(kind: str, context: SinkContext, directory: Path) -> Encode:
    """One sink's encoding of a collection now (of the round's, given one), as text."""
    if kind.startswith("console"):
        console = ConsoleSink(ConsoleExporterConfig(format=kind.split()[1]), context)
        return console.snapshot
    if kind.startswith("file"):
        config = FileExporterConfig(file_path=str(directory / "m"), format=kind.split()[1])
        file = FileSink(config, context)
        return lambda shared: file.render(shared).decode()
    endpoint = JsonSink(JsonExporterConfig(endpoint="/m.json"), context)._endpoint
    stream = context.stream

    def text(shared: Round | None) -> str:
        if shared is None:
            return endpoint.text()
        return endpoint.text(partial(stream.collect_in, shared), partial(stream.made_at, shared))

    return text


KINDS = ("console text", "console json", "file prometheus", "file json", "json document")


class Reusing:
    """A sink reading a pipeline with the recorder's version, its fresh twin, and counts of
    the stream's collections by kind (everything, or without the HTTP metrics)."""

    def __init__(self, pipeline: Pipeline, kind: str, directory: Path) -> None:
        self.pipeline = pipeline
        self.full = self.light = 0
        inner = pipeline.stream.collect

        def counting(names: Collection[str] | None = None) -> MetricsData:
            if names is None:
                self.full += 1
            elif not names:
                self.light += 1
            return inner(names)

        pipeline.stream.collect = counting  # type: ignore[method-assign]
        context = pipeline.context()._replace(http_version=pipeline.recorder.version)
        self.encode = _sink(kind, context, directory)
        self.fresh = _sink(kind, pipeline.context(), directory)  # no version: always afresh

    def same_as_fresh(self, shared: Round | None = None) -> str:
        """Encode, and check it against a fresh encoding made right after."""
        made = self.encode(shared)
        full = self.full
        assert _STAMP.sub("T", made) == _STAMP.sub("T", self.fresh(None))
        self.full = full  # the twin's collection is not the sink's
        return made


@pytest.mark.parametrize("kind", KINDS)
def test_an_idle_output_reuses_the_http_part_and_equals_a_fresh_one(
    pipeline: Pipeline, kind: str, tmp_path: Path
) -> None:
    """No request between two outputs: the second builds no HTTP point and says the same."""
    sink = Reusing(pipeline, kind, tmp_path)
    pipeline.requests(3, "/a")
    pipeline.request("/b", 503)
    first = sink.same_as_fresh()
    assert (sink.full, sink.light) == (1, 0)
    second = sink.same_as_fresh()
    assert (sink.full, sink.light) == (1, 1)  # the HTTP part came from the kept encoding
    assert _STAMP.sub("T", second) == _STAMP.sub("T", first)
    assert "/b" in second


@pytest.mark.parametrize("kind", KINDS)
def test_a_request_between_two_outputs_always_shows(
    pipeline: Pipeline, kind: str, tmp_path: Path
) -> None:
    """Output, request, output, many times over: every output equals a fresh one of its moment."""
    sink = Reusing(pipeline, kind, tmp_path)
    sink.same_as_fresh()
    for n in range(1, 31):
        pipeline.request(f"/r{n % 4}", 200 if n % 5 else 500)
        if n % 3 == 0:
            sink.same_as_fresh()  # an idle one between: reused
        sink.same_as_fresh()
    assert sink.full == 31  # every output after a request built the HTTP scope again


@pytest.mark.parametrize("kind", KINDS)
def test_a_custom_metric_moves_while_the_http_part_is_reused(
    pipeline: Pipeline, kind: str, tmp_path: Path
) -> None:
    """A custom counter moves without any request: its new value shows, the HTTP part is kept."""
    counter = pipeline.provider.get_meter("app").create_counter("jobs_done")
    sink = Reusing(pipeline, kind, tmp_path)
    pipeline.request("/a")
    sink.same_as_fresh()
    for _ in range(3):
        counter.add(1)
        assert "jobs_done" in sink.same_as_fresh()  # and the same as a fresh output
    assert (sink.full, sink.light) == (1, 3)


def test_the_sinks_of_an_idle_round_share_one_collection_without_the_http_metrics(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """Every kind in one round after an idle interval: one light collection for all of them."""
    counted = Reusing(pipeline, "console text", tmp_path)  # counts the stream's collections
    context = pipeline.context()._replace(http_version=pipeline.recorder.version)
    sinks = [_sink(kind, context, tmp_path) for kind in KINDS]
    pipeline.requests(2)
    first = Round(len(sinks))
    outputs = [encode(first) for encode in sinks]
    assert (counted.full, counted.light) == (1, 0)
    idle = Round(len(sinks))
    again = [encode(idle) for encode in sinks]
    assert (counted.full, counted.light) == (1, 1)
    assert [_STAMP.sub("T", o) for o in again] == [_STAMP.sub("T", o) for o in outputs]


def test_the_document_text_is_the_document_serialised_with_a_merged_name_and_extras(
    pipeline: Pipeline,
) -> None:
    """A custom counter named like a built-in merges into its entry, fresh and spliced alike."""
    meter = pipeline.provider.get_meter("app")
    meter.create_counter("http_requests_total").add(5, {"route": "/sdk"})
    pipeline.requests(2, "/a")
    extras = {"alerts": [{"name": "X", "value": 1.5}]}
    kept: list[object] = []
    data = pipeline.stream.collect()
    fresh = document_text(data, extras, now_ns=1, keep=kept.append)
    assert fresh == dumps(document(data, extras, now_ns=1))
    merged = next(m for m in json.loads(fresh)["metrics"] if m["name"] == "http_requests_total")
    assert {s["labels"]["route"]: s["value"] for s in merged["series"]} == {"/a": 2, "/sdk": 5}
    (http,) = kept
    spliced = document_text(pipeline.stream.collect(()), extras, now_ns=1, http=http)  # type: ignore[arg-type]
    assert spliced == fresh  # the kept entry was copied to merge, not changed
    assert document_text(pipeline.stream.collect(()), extras, now_ns=1, http=http) == fresh  # type: ignore[arg-type]


def test_an_eviction_between_two_outputs_leaves_the_next(tmp_path: Path) -> None:
    """Retention moves the version without a request: the evicted route leaves every output."""
    now = [1000.0]
    pipeline = Pipeline()
    try:
        pipeline.recorder = type(pipeline.recorder)(retention_period=10.0, clock=lambda: now[0])
        pipeline.stream._http_metrics = pipeline.recorder.to_metrics
        pipeline.stream._version = pipeline.recorder.version
        sinks = {kind: Reusing(pipeline, kind, tmp_path) for kind in KINDS}
        pipeline.recorder.record("GET", "/old", 200, None, 0.01, 0, 5, now[0])
        for sink in sinks.values():
            assert "/old" in sink.same_as_fresh()
            assert "/old" in sink.same_as_fresh()
        now[0] += 11.0
        for sink in sinks.values():
            assert "/old" not in sink.same_as_fresh()
    finally:
        pipeline.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_rounds_collection_made_before_a_request_is_not_kept_as_newer(
    pipeline: Pipeline, kind: str, tmp_path: Path
) -> None:
    """Another job of the round collects, a request lands, then the sink reads the version and
    encodes the round's (older) collection: the next idle round still shows the request."""
    sink = Reusing(pipeline, kind, tmp_path)
    pipeline.request("/a")
    first = Round(2)
    pipeline.stream.collect_in(first)  # the alert processor, an OTLP push...: made first
    pipeline.request("/a")  # after that collection, before this sink reads the version
    sink.encode(first)  # the round's collection: one request, correct for that collection
    idle = Round(2)
    sink.same_as_fresh(idle)  # two requests, as a fresh encoding says
