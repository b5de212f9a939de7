"""Disk faults under the file exporter: read-only file system, a directory in the file's place,
a full disk.

For each fault: the write fails and is reported once (rate-limited log) while being retried every
interval; the app's requests all succeed meanwhile; a reader polling the file never sees a partial
one and no temporary file is left behind; once the fault is gone the next write has the right
counts. The read-only and full file systems are small tmpfs mounts (we run as root, where
permission bits do not stop writes); where mounting is not allowed, those tests skip.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from fluxstack_otel import Monitoring, configure_monitoring
from fluxstack_otel._internal.runtime.failures import failure_counts
from servers import wait_until
from support.asgi import ok_app as app

pytestmark = pytest.mark.slow  # real servers or subprocesses: left out of make unit-fast

INTERVAL = 0.05
RETRIES = 3


def requests(monitoring: Monitoring, n: int) -> list[int]:
    """Send ``n`` requests through the middleware in process; return their statuses."""
    wrapped = monitoring.instrument(app)
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def main() -> None:
        for _ in range(n):
            scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
            await wrapped(scope, receive, send)

    asyncio.run(main())
    return statuses


def _run(*args: str) -> bool:
    return subprocess.run(args, capture_output=True, check=False, timeout=10).returncode == 0


@contextmanager
def tmpfs(directory: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``directory``; skips the test where mounting fails."""
    directory.mkdir()
    if not _run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)):
        pytest.skip("cannot mount a tmpfs here (needs root and mount privileges)")
    try:
        yield directory
    finally:
        if not _run("umount", str(directory)):
            _run("umount", "-l", str(directory))


class Watcher:
    """Reads the file continuously; remembers any content that is not a whole exposition."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reads = 0
        self.partial: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                text = self.path.read_text()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                continue
            self.reads += 1
            # A whole file ends with the last family of the exposition, and a newline.
            if not text.endswith("\n") or "http_response_size_bytes_count" not in text:
                self.partial.append(text[-200:])

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def temporaries(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


def failing(kind: str, at_least: int) -> bool:
    return failure_counts().get(kind, 0) >= at_least


def logged(caplog: pytest.LogCaptureFixture, kind: str) -> int:
    return sum(kind in r.getMessage() for r in caplog.records)


@contextmanager
def file_exporter(path: Path) -> Iterator[Monitoring]:
    m = configure_monitoring(
        {
            "system_metrics": False,
            "exporters": [{"type": "file", "file_path": str(path), "interval": INTERVAL}],
        }
    )
    try:
        yield m
    finally:
        m.shutdown()


def holds(path: Path, count: int) -> bool:
    try:
        text = path.read_text()
    except OSError:
        return False
    return f'http_requests_total{{method="GET",route="<unmatched>"}} {count}\n' in text


def _fault_cycle(
    monitoring: Monitoring,
    target: Path,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    """While the fault lasts: retried, logged once, app fine, nothing partial or left over."""
    assert requests(monitoring, 50) == [200] * 50
    wait_until(lambda: failing(kind, RETRIES), timeout=10, message=f"{RETRIES} failed writes")
    assert requests(monitoring, 50) == [200] * 50
    wait_until(lambda: failing(kind, RETRIES * 2), timeout=10, message="more retries")
    assert logged(caplog, kind) == 1
    # A write in flight has its temporary file; a failed one must not leave it behind.
    wait_until(
        lambda: not temporaries(target.parent),
        timeout=5,
        interval=0.01,
        message=lambda: f"no temporary files, still {temporaries(target.parent)}",
    )


def test_read_only_file_system(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A read-only mount: retried and logged once; writes resume when it is writable again."""
    with tmpfs(tmp_path / "fs", "1m") as fs:
        target = fs / "metrics.prom"
        assert _run("mount", "-o", "remount,ro", str(fs))
        kind = f"writing the file exporter's {str(target)!r}"
        with caplog.at_level(logging.ERROR, logger="fluxstack_otel"), file_exporter(target) as m:
            _fault_cycle(m, target, caplog, kind)
            assert not target.exists()
            assert _run("mount", "-o", "remount,rw", str(fs))
            wait_until(lambda: holds(target, 100), timeout=10, message="the file after recovery")


def _replace_with_directory(target: Path) -> bool:
    # The exporter may write the file again between the unlink and the mkdir: then try again.
    target.unlink(missing_ok=True)
    try:
        target.mkdir()
    except FileExistsError:
        return False
    return True


def test_a_directory_in_the_files_place(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The file replaced by a directory: retried, logged once, the directory left intact."""
    target = tmp_path / "out" / "metrics.prom"
    with caplog.at_level(logging.ERROR, logger="fluxstack_otel"), file_exporter(target) as m:
        assert requests(m, 1) == [200]
        wait_until(lambda: holds(target, 1), timeout=10, message="the first write")
        wait_until(lambda: _replace_with_directory(target), timeout=5, message="a directory")
        (target / "keep").write_text("someone's data")
        kind = f"writing the file exporter's {str(target)!r}"
        with Watcher(target) as watcher:
            _fault_cycle(m, target, caplog, kind)
            assert (target / "keep").read_text() == "someone's data"
            (target / "keep").unlink()
            target.rmdir()
            wait_until(lambda: holds(target, 101), timeout=10, message="the file after recovery")
        assert watcher.partial == []


def test_disk_full(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """ENOSPC on a 64 KiB tmpfs: the old file stays whole, then is replaced once space is back."""
    with tmpfs(tmp_path / "fs", "64k") as fs:
        target = fs / "metrics.prom"
        kind = f"writing the file exporter's {str(target)!r}"
        with caplog.at_level(logging.ERROR, logger="fluxstack_otel"), file_exporter(target) as m:
            assert requests(m, 1) == [200]
            wait_until(lambda: holds(target, 1), timeout=10, message="the first write")
            filler = fs / "filler"
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
            try:  # fill every remaining block
                while True:
                    os.write(fd, b"\0" * 4096)
            except OSError:
                pass
            finally:
                os.close(fd)
            with Watcher(target) as watcher:
                _fault_cycle(m, target, caplog, kind)
                assert holds(target, 1)  # the last whole file is still there
                filler.unlink()
                wait_until(lambda: holds(target, 101), timeout=10, message="recovery")
            assert watcher.partial == []
            assert watcher.reads > 0
