"""SIGTERM: a uvicorn app stops gracefully, and every exporter flushes once, within the bound.

The app runs in its own process, as in production: uvicorn in the main thread, monitoring with a
file exporter (with history, so every write leaves one snapshot), a json exporter POSTing to a
receiver here and an OTLP exporter, all with a 60 s interval so no periodic run happens during
the test. After SIGTERM the process must exit within uvicorn's graceful stop plus
``Monitoring.shutdown``'s bound, and each exporter must have delivered exactly once, with the
final counts. Nothing in the app calls ``shutdown()``: the exit hook does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loadgen import run_load
from receivers import HttpReceiver, JsonReceiver, requests_total
from servers import wait_until

pytestmark = pytest.mark.slow  # real servers or subprocesses: left out of make unit-fast

REQUESTS = 200
SHUTDOWN_BOUND = 5.0  # Monitoring.shutdown()'s default timeout, used by the exit hook
EXIT_BOUND = SHUTDOWN_BOUND + 3.0  # plus uvicorn's graceful stop and interpreter exit

CHILD = """
import socket, sys
import uvicorn
from fluxstack_otel import configure_monitoring

prom_path, json_url, otlp_url = sys.argv[1:4]
every = {"interval": 60}
monitoring = configure_monitoring({
    "system_metrics": False,
    "exporters": [
        {"type": "file", "file_path": prom_path, "history": True, **every},
        {"type": "json", "url": json_url, **every},
        {"type": "otlp", "endpoint": otlp_url, **every},
    ],
})

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
print(sock.getsockname()[1], flush=True)
config = uvicorn.Config(monitoring.instrument(app), log_level="warning", lifespan="off")
uvicorn.Server(config).run(sockets=[sock])
"""


@pytest.fixture
def json_receiver() -> Iterator[JsonReceiver]:
    with JsonReceiver() as receiver:
        yield receiver


@pytest.fixture
def otlp_receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


def _read_port(process: subprocess.Popen[str], timeout: float) -> int:
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not lines or not lines[0].strip():
        process.kill()
        _, err = process.communicate(timeout=5)
        raise AssertionError(f"the app did not start within {timeout:g}s:\n{err[-2000:]}")
    return int(lines[0])


def _requests_in_json(document: dict[str, Any]) -> float:
    for metric in document["metrics"]:
        if metric["name"] == "http_requests_total":
            return sum(float(s["value"]) for s in metric["series"])
    return 0


@pytest.mark.slow
def test_sigterm_flushes_every_exporter_once_within_the_bound(
    tmp_path: Path, json_receiver: JsonReceiver, otlp_receiver: HttpReceiver
) -> None:
    """SIGTERM: exit within the bound; one file write, one POST, one OTLP export, final counts."""
    prom = tmp_path / "metrics.prom"
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(prom), json_receiver.url, otlp_receiver.base_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        port = _read_port(process, timeout=30)
        result = run_load(f"http://127.0.0.1:{port}", [("GET", "/", b"")] * REQUESTS, connections=4)
        assert result.count("/", 200) == REQUESTS
        assert not prom.exists()  # no periodic run yet: what follows is the flush
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=EXIT_BOUND + 5)
        took = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=5)
    # uvicorn re-raises SIGTERM after its graceful stop, so the process ends by the signal.
    assert process.returncode in (0, -signal.SIGTERM), err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    assert took < EXIT_BOUND, f"exit took {took:.2f}s"

    line = f'http_requests_total{{method="GET",route="<unmatched>"}} {REQUESTS}\n'
    assert line in prom.read_text()
    snapshots = [p for p in tmp_path.iterdir() if p.name.startswith("metrics.prom.")]
    assert len(snapshots) == 1, snapshots  # written once
    wait_until(lambda: json_receiver.documents, timeout=5, message="the final POST")
    assert len(json_receiver.documents) == 1
    assert _requests_in_json(json_receiver.documents[0]) == REQUESTS
    assert len(otlp_receiver.requests) == 1
    assert requests_total(otlp_receiver.requests[0])[0] == REQUESTS
    print(f"SIGTERM to exit: {took:.2f}s (bound {EXIT_BOUND:g}s)")


PLAIN = """
import asyncio, signal, sys, time
from fluxstack_otel import configure_monitoring

path, mode = sys.argv[1:3]

def handler(signum, frame):
    sys.exit(3)

if mode == "own":
    signal.signal(signal.SIGTERM, handler)
monitoring = configure_monitoring({"system_metrics": False, "exporters": [
    {"type": "file", "file_path": path, "interval": 60}]})
wrapped = monitoring.instrument(lambda scope, receive, send: send(
    {"type": "http.response.start", "status": 200, "headers": []}))

async def discard(message):
    pass

async def three():
    for _ in range(3):
        await wrapped({"type": "http", "method": "GET", "path": "/", "headers": []}, None, discard)

asyncio.run(three())
print("own" if signal.getsignal(signal.SIGTERM) is handler else "ours", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("own_handler", [False, True])
def test_a_process_without_a_server_flushes_on_sigterm_and_keeps_a_handler_of_its_own(
    tmp_path: Path, own_handler: bool
) -> None:
    """No server: SIGTERM flushes and the process still dies by it; an app's own handler stays."""
    path = tmp_path / "metrics.prom"
    process = subprocess.Popen(
        [sys.executable, "-c", PLAIN, str(path), "own" if own_handler else "default"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline().strip() if process.stdout else ""
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=EXIT_BOUND + 5)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=5)
    if own_handler:
        assert line == "own", err[-2000:]
        assert process.returncode == 3  # the app's handler ran: sys.exit(3), and atexit flushed
    else:
        assert line == "ours", err[-2000:]
        assert process.returncode == -signal.SIGTERM
    assert 'http_requests_total{method="GET",route="<unmatched>"} 3\n' in path.read_text()
