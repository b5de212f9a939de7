"""The file exporter: atomic writes, promtool-clean text, history retention, failures retried."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import jsonschema
import pytest

from fluxstack_otel._internal.config.model import (
    FileExporterConfig,
    PrometheusExporterConfig,
)
from fluxstack_otel._internal.runtime.failures import failure_counts
from fluxstack_otel._internal.sinks.file import FileSink
from fluxstack_otel._internal.sinks.prometheus.sink import RenderOptions, render
from fluxstack_otel._internal.transport.atomic import history_path, prune_history, write_atomic
from servers import promtool_check_metrics, requires_promtool
from support.clocks import FakeWallClock
from support.pipeline import Pipeline

SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "json-schema.json").read_text())


def test_prometheus_file_holds_the_same_bytes_as_the_scrape(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """The file is what /metrics renders, with the first prometheus entry's options."""
    pipeline.request()
    pipeline.provider.get_meter("app").create_counter("orders").add(2)
    target = tmp_path / "app.prom"
    prometheus = PrometheusExporterConfig(target_info=True)
    context = pipeline.context(exporters=(prometheus,))
    sink = FileSink(FileExporterConfig(file_path=str(target)), context)
    assert sink.write() is True
    expected = render(pipeline.stream.collect(), openmetrics=False, options=RenderOptions(True))
    assert target.read_bytes() == expected
    assert b"target_info{" in expected


@requires_promtool
def test_prometheus_file_passes_promtool_check_metrics(pipeline: Pipeline, tmp_path: Path) -> None:
    """promtool check metrics finds nothing to complain about in the written file."""
    for status in (200, 404, 500):
        pipeline.request(status=status)
    meter = pipeline.provider.get_meter("app")
    meter.create_histogram("job_seconds", unit="s", description="Job time").record(0.2)
    target = tmp_path / "app.prom"
    FileSink(FileExporterConfig(file_path=str(target)), pipeline.context()).write()
    assert promtool_check_metrics(target.read_bytes()) == []


@pytest.mark.slow
def test_a_reader_polling_during_writes_never_sees_a_partial_file(tmp_path: Path) -> None:
    """Thousands of reads during hundreds of rewrites only ever see one of the whole payloads."""
    target = tmp_path / "metrics.prom"
    big = b"".join(b'big_metric{i="%d"} 1\n' % i for i in range(20_000))  # ~400 kB
    small = b"small_metric 1\n"
    write_atomic(target, small)
    done = threading.Event()
    seen: dict[bytes, int] = {big: 0, small: 0}
    bad: list[int] = []
    stray: list[str] = []

    def reader() -> None:
        while not done.is_set():
            content = target.read_bytes()
            if content in seen:
                seen[content] += 1
            else:
                bad.append(len(content))
            # node_exporter's textfile collector reads only *.prom: temporary files must not match.
            stray.extend(
                n for n in os.listdir(tmp_path) if n.endswith(".prom") and n != target.name
            )

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(200):
            write_atomic(target, big if i % 2 == 0 else small)
    finally:
        done.set()
        thread.join(10)
    assert bad == []
    assert stray == []
    assert seen[big] > 0
    assert seen[small] > 0


def test_missing_directories_are_created_and_mode_is_world_readable(tmp_path: Path) -> None:
    """A new file appears in freshly created directories, 0644 so a collector can read it."""
    target = tmp_path / "a" / "b" / "metrics.prom"
    write_atomic(target, b"x 1\n")
    assert target.read_bytes() == b"x 1\n"
    assert target.stat().st_mode & 0o777 == 0o644
    assert os.listdir(target.parent) == ["metrics.prom"]  # no temporary file left behind


def test_an_unwritable_path_is_reported_once_and_retried(
    pipeline: Pipeline, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Five failing writes log one line and count five; once the path is fixed, writes succeed."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    target = blocker / "metrics.prom"
    sink = FileSink(FileExporterConfig(file_path=str(target)), pipeline.context())
    kind = f"writing the file exporter's {str(target)!r}"
    before = failure_counts().get(kind, 0)
    with caplog.at_level(logging.ERROR, logger="fluxstack_otel"):
        results = [sink.write() for _ in range(5)]
    assert results == [False] * 5
    assert failure_counts()[kind] - before == 5
    assert len([r for r in caplog.records if str(target) in r.getMessage()]) == 1
    blocker.unlink()
    assert sink.write() is True
    assert target.exists()


def test_json_format_writes_the_schema_valid_document(pipeline: Pipeline, tmp_path: Path) -> None:
    """format json writes the JSON document, newline-terminated."""
    pipeline.request()
    target = tmp_path / "metrics.json"
    FileSink(FileExporterConfig(file_path=str(target), format="json"), pipeline.context()).write()
    text = target.read_text()
    assert text.endswith("}\n")
    jsonschema.validate(json.loads(text), SCHEMA)


def test_history_keeps_timestamped_snapshots_within_retention(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """Each write leaves a snapshot; snapshots older than retention_period are deleted."""
    clock = FakeWallClock()
    target = tmp_path / "metrics.prom"
    (tmp_path / "unrelated.txt").write_text("kept")
    context = pipeline.context(retention_period=2.5)
    sink = FileSink(
        FileExporterConfig(file_path=str(target), history=True), context, wall_clock_ns=clock
    )
    stamps = []
    for _ in range(5):
        sink.write()
        stamps.append(clock.ns)
        clock.ns += 1_000_000_000
    kept = sorted(p.name for p in tmp_path.iterdir())
    expected = sorted(
        ["metrics.prom", "unrelated.txt", *(history_path(target, ns).name for ns in stamps[-3:])]
    )
    assert kept == expected
    assert history_path(target, stamps[0]).name == "metrics.prom.20250102T030405.000Z"
    assert not any(n.endswith(".prom") for n in kept if n != "metrics.prom")


def test_prune_ignores_names_it_did_not_produce(tmp_path: Path) -> None:
    """Only <name>.<timestamp> snapshots are candidates for deletion."""
    target = tmp_path / "m.json"
    for name in ("m.json.backup", "m.json.20250102T030405.000Z.tmp", "m.json.2025"):
        (tmp_path / name).write_text("x")
    old = history_path(target, 1_000_000_000_000_000_000)
    old.write_text("x")
    assert prune_history(target, 2_000_000_000_000_000_000) == 1
    assert not old.exists()
    assert len(list(tmp_path.iterdir())) == 3


def test_shutdown_writes_the_file_once_more(pipeline: Pipeline, tmp_path: Path) -> None:
    """Even with an interval far away, shutdown leaves the latest data in the file."""
    target = tmp_path / "metrics.prom"
    sink = FileSink(FileExporterConfig(file_path=str(target), interval=3600), pipeline.context())
    sink.start()
    pipeline.request(route="/late")
    sink.shutdown(5.0)
    assert 'route="/late"' in target.read_text()


def test_periodic_writes_follow_new_data(pipeline: Pipeline, tmp_path: Path) -> None:
    """Running on its own thread, the file catches up with requests within a few intervals."""
    target = tmp_path / "metrics.prom"
    sink = FileSink(FileExporterConfig(file_path=str(target), interval=0.02), pipeline.context())
    sink.start()
    try:
        pipeline.request(route="/first")
        deadline = time.monotonic() + 5
        while not (target.exists() and 'route="/first"' in target.read_text()):
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        sink.shutdown(2.0)
