"""Real gunicorn with four uvicorn workers: any worker's ``/metrics`` reports the whole host.

20,000 requests, with ``max_requests`` recycling every worker a few times during the traffic; a
scraper on fresh connections (so any worker may answer) checks that the host total never goes
backwards, and after the traffic that every scrape equals the requests answered, exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from servers import free_port, wait_until

APPS = Path(__file__).parent / "apps"
GUNICORN = Path(sys.executable).with_name("gunicorn")
REQUESTS = 20_000
INTERVAL = 0.5
WORKERS = 4
_SAMPLE = re.compile(r"^http_requests_total\{([^}]*)\} (\S+)$", re.M)
_RSS = re.compile(r'^process_memory_rss_bytes\{pid="(\d+)"\}', re.M)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn is not installed in this venv"),
    pytest.mark.skipif(not hasattr(os, "fork"), reason="gunicorn needs fork"),
]


class Gunicorn:
    """gunicorn running ``mp_app:app`` in a process group of its own, with its log."""

    def __init__(
        self,
        directory: Path,
        log: Path,
        *,
        max_requests: int,
        jitter: int,
        preload: bool = False,
        dashboard: bool = False,
        interval: float = INTERVAL,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**os.environ, "MP_DIR": str(directory), "MP_INTERVAL": str(interval),
               "MP_DASHBOARD": "1" if dashboard else "0"}  # fmt: skip
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(GUNICORN), "-w", str(WORKERS), "-k", "uvicorn.workers.UvicornWorker",
                 "--bind", f"127.0.0.1:{self.port}", "--chdir", str(APPS),
                 "--max-requests", str(max_requests), "--max-requests-jitter", str(jitter),
                 "--graceful-timeout", "10", *(["--preload"] if preload else []), "mp_app:app"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,
            )  # fmt: skip

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # gunicorn stops its workers gracefully
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(15)
        # The workers are in the master's process group; whatever is left of it goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(5)

    def booted(self) -> int:
        """How many workers the master has started, the first four included."""
        return self.log.read_text(errors="replace").count("Booting worker")

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


def scrape_total(url: str) -> int | None:
    """The host's ``http_requests_total`` for ``/hello``, from one scrape on a new connection."""
    try:
        with httpx.Client(trust_env=False, timeout=5.0) as client:
            response = client.get(f"{url}/metrics", headers={"Connection": "close"})
    except httpx.HTTPError:
        return None  # a worker recycling under us: the next scrape gets another one
    if response.status_code != 200:
        return None
    return sum(
        int(float(value))
        for labels, value in _SAMPLE.findall(response.text)
        if 'route="/hello"' in labels
    )


async def _connection(port: int, count: int, answered: list[int], deadline: float) -> None:
    """Send ``count`` GET /hello on keep-alive connections, reconnecting when a worker recycles.

    A request the server closed the connection on without answering was not processed (uvicorn
    finishes the requests it has read before it closes), so it is sent again.
    """
    request = f"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    sent = 0
    while sent < count:
        if time.monotonic() > deadline:
            raise TimeoutError("load did not finish in time")
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
        except OSError:
            await asyncio.sleep(0.01)
            continue
        try:
            while sent < count:
                writer.write(request)
                status = await asyncio.wait_for(reader.readline(), 10)
                if not status:
                    break  # closed by a recycling worker: reconnect and resend
                length = 0
                while (line := await asyncio.wait_for(reader.readline(), 10)) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                if status.split()[1] == b"200":
                    answered[0] += 1
                sent += 1
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def drive(port: int, total: int, connections: int = 32, timeout: float = 90.0) -> int:
    """Send ``total`` requests over ``connections`` connections; returns how many got 200."""
    answered = [0]
    deadline = time.monotonic() + timeout
    shares = [total // connections + (i < total % connections) for i in range(connections)]

    async def main() -> None:
        await asyncio.gather(*(_connection(port, n, answered, deadline) for n in shares))

    asyncio.run(main())
    return answered[0]


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Gunicorn]:
    """gunicorn with four workers recycled every ~1,500-2,000 requests, stopped at the end."""
    server = Gunicorn(tmp_path / "mp", tmp_path / "gunicorn.log", max_requests=1500, jitter=500)
    try:
        wait_until(lambda: scrape_total(server.url) is not None, timeout=20,
                   message=lambda: f"gunicorn to serve /metrics\n{server.tail()}")  # fmt: skip
        yield server
    finally:
        server.stop()


def test_host_total_is_exact_and_monotonic_across_worker_recycling(
    gunicorn: Gunicorn, tmp_path: Path
) -> None:
    """Every scrape after the traffic equals the requests answered; during it totals only grow."""
    scrapes: list[int] = []
    stop = threading.Event()

    def scraper() -> None:
        while not stop.is_set():
            total = scrape_total(gunicorn.url)
            if total is not None:
                scrapes.append(total)
            stop.wait(0.1)

    thread = threading.Thread(target=scraper, daemon=True)
    started = time.monotonic()
    thread.start()
    try:
        answered = drive(gunicorn.port, REQUESTS)
    finally:
        stop.set()
        thread.join(10)
    load_seconds = time.monotonic() - started
    assert answered == REQUESTS
    decreases = [(a, b) for a, b in itertools.pairwise(scrapes) if b < a]
    assert not decreases, f"host total went backwards: {decreases[:5]}"
    assert len(scrapes) >= 10, "the scraper should have seen the traffic"
    # The master logs a replacement only after the old worker exited: wait for the log, not assume.
    wait_until(lambda: gunicorn.booted() >= WORKERS + 4, timeout=20,
               message=lambda: f"workers recycled during the traffic\n{gunicorn.tail()}")  # fmt: skip

    # Within two intervals every worker has published; from then on every scrape is exact.
    wait_until(lambda: scrape_total(gunicorn.url) == REQUESTS, timeout=4 * INTERVAL + 5,
               message=lambda: f"total {scrape_total(gunicorn.url)} == {REQUESTS}")  # fmt: skip
    after = [scrape_total(gunicorn.url) for _ in range(40)]
    assert after == [REQUESTS] * 40

    # Dead workers were compacted into the archive: one file per live worker, no more.
    directory = tmp_path / "mp"
    wait_until(lambda: len(list(directory.glob("worker-*.json"))) == WORKERS, timeout=5,
               message=lambda: f"{WORKERS} worker files, got {sorted(os.listdir(directory))}")  # fmt: skip
    assert (directory / "archive.json").exists()

    # Gauges are per worker (a pid label, live workers only); the host's memory is one value.
    body = httpx.get(f"{gunicorn.url}/metrics", headers={"Connection": "close"},
                     trust_env=False).text  # fmt: skip
    assert len(set(_RSS.findall(body))) == WORKERS
    assert len(re.findall(r"^system_memory_total_bytes ", body, re.M)) == 1

    # The JSON document reads the same host view, under one host instance id whichever worker.
    instances = set()
    for _ in range(8):
        with httpx.Client(trust_env=False, timeout=5.0) as client:
            doc = client.get(f"{gunicorn.url}/metrics.json", headers={"Connection": "close"})
        metric = next(m for m in doc.json()["metrics"] if m["name"] == "http_requests_total")
        assert sum(s["value"] for s in metric["series"] if s["labels"]["route"] == "/hello") == (
            REQUESTS
        )
        instances.add(doc.json()["resource"]["instance_id"])
    assert len(instances) == 1
    print(
        f"\n{REQUESTS} requests in {load_seconds:.1f}s, {len(scrapes)} scrapes during the traffic, "
        f"{gunicorn.booted() - WORKERS} workers recycled, 40 exact scrapes after"
    )


def test_the_answering_workers_own_requests_count_before_any_publish(tmp_path: Path) -> None:
    """Requests a worker just served are in its next scrape at once, long before its next publish."""
    # An hour between publishes: after the first one at start, only the live counts can change.
    server = Gunicorn(tmp_path / "mp", tmp_path / "gunicorn.log", max_requests=0, jitter=0,
                      interval=3600.0)  # fmt: skip
    try:
        wait_until(lambda: scrape_total(server.url) is not None, timeout=20,
                   message=lambda: f"gunicorn to serve /metrics\n{server.tail()}")  # fmt: skip
        totals = []
        with httpx.Client(trust_env=False, timeout=5.0) as client:  # one keep-alive connection:
            for _ in range(3):  # every request and scrape goes to one worker
                assert client.get(f"{server.url}/hello").status_code == 200
                text = client.get(f"{server.url}/metrics").text
                totals.append(sum(int(float(v)) for labels, v in _SAMPLE.findall(text)
                                  if 'route="/hello"' in labels))  # fmt: skip
        assert totals == [1, 2, 3]
    finally:
        server.stop()


def test_preloaded_app_forked_into_workers_counts_exactly(tmp_path: Path) -> None:
    """With --preload the master configures monitoring and forks: every worker publishes its own."""
    server = Gunicorn(tmp_path / "mp", tmp_path / "gunicorn.log", max_requests=250, jitter=50,
                      preload=True)  # fmt: skip
    try:
        wait_until(lambda: scrape_total(server.url) is not None, timeout=20,
                   message=lambda: f"gunicorn to serve /metrics\n{server.tail()}")  # fmt: skip
        assert drive(server.port, 2400, connections=16) == 2400
        # Each worker stops at 250-300 requests plus what it serves before uvicorn's next 0.1 s
        # check, so 2,400 requests take at least six workers. Their boots are logged late.
        wait_until(lambda: server.booted() >= WORKERS + 2, timeout=20,
                   message=lambda: f"workers recycled during the traffic\n{server.tail()}")  # fmt: skip
        wait_until(lambda: scrape_total(server.url) == 2400, timeout=4 * INTERVAL + 5,
                   message=lambda: f"total {scrape_total(server.url)} == 2400\n{server.tail()}")  # fmt: skip
        assert [scrape_total(server.url) for _ in range(10)] == [2400] * 10
    finally:
        server.stop()


def test_each_workers_dashboard_history_holds_the_hosts_requests(tmp_path: Path) -> None:
    """Whichever worker answers, its dashboard history adds up to every request the host served."""
    directory = tmp_path / "mp"
    server = Gunicorn(directory, tmp_path / "gunicorn.log", max_requests=0, jitter=0,
                      dashboard=True)  # fmt: skip
    total = 2_000
    try:
        # Every worker up (each publishes at start) before the traffic, so every baseline is 0.
        wait_until(lambda: len(list(directory.glob("worker-*.json"))) == WORKERS, timeout=30,
                   message=lambda: f"{WORKERS} workers\n{server.tail()}")  # fmt: skip
        assert drive(server.port, total) == total

        def histories() -> dict[float, int]:
            """Ring (told apart by its first point's time) -> the requests its points add up to."""
            seen: dict[float, int] = {}
            for _ in range(24):
                with httpx.Client(trust_env=False, timeout=5.0) as client:
                    doc = client.get(f"{server.url}/metrics/dashboard/data.json",
                                     headers={"Connection": "close"}).json()  # fmt: skip
                points = doc["history"]["points"]
                if points:
                    seen[points[0]["t"]] = sum(p["req"] for p in points)
            return seen

        rings = wait_until(
            lambda: (h := histories()) and len(h) >= 2 and set(h.values()) == {total} and h,
            timeout=8 * INTERVAL + 10,
            message=lambda: f"every worker's history to add up to {total}: {histories()}",
        )
        assert len(rings) >= 2
    finally:
        server.stop()
