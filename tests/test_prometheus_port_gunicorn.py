"""Real gunicorn, three workers, one fixed Prometheus port: one worker serves the host's metrics.

Every worker configures the same ``port`` with ``multiprocess``: none crashes at boot, the port
answers with the whole host's counts, and when the serving worker is killed a standby worker takes
the port over with no count lost.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from servers import free_port, wait_until

APPS = Path(__file__).parent / "apps"
GUNICORN = Path(sys.executable).with_name("gunicorn")
WORKERS = 3
REQUESTS = 300
_SAMPLE = re.compile(r'^http_requests_total\{method="GET",route="/hello"\} (\S+)$', re.M)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn is not installed in this venv"),
    pytest.mark.skipif(not hasattr(os, "fork"), reason="gunicorn needs fork"),
]


def scrape(port: int) -> int | None:
    """The host's count of GET /hello from the fixed port, or None while nobody serves it."""
    try:
        with httpx.Client(trust_env=False, timeout=5.0) as client:
            response = client.get(f"http://127.0.0.1:{port}/metrics")
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    found = _SAMPLE.search(response.text)
    return int(float(found.group(1))) if found else 0


def holder(master: psutil.Process, port: int) -> psutil.Process | None:
    """The worker listening on ``port``."""
    for child in master.children():
        with contextlib.suppress(psutil.Error):
            for conn in child.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port:
                    return child
    return None


def test_one_worker_serves_the_fixed_port_and_another_takes_over(tmp_path: Path) -> None:
    """No worker crashes on the taken port; the port reports every request; a kill hands it on."""
    app_port, prom_port = free_port(), free_port()
    log = tmp_path / "gunicorn.log"
    env = {**os.environ, "MP_DIR": str(tmp_path / "mp"), "MP_PROM_PORT": str(prom_port)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(GUNICORN), "-w", str(WORKERS), "-k", "uvicorn.workers.UvicornWorker",
             "--bind", f"127.0.0.1:{app_port}", "--chdir", str(APPS), "--graceful-timeout", "5",
             "mp_port_app:app"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )  # fmt: skip
    try:
        master = psutil.Process(process.pid)
        wait_until(
            lambda: len(master.children()) == WORKERS and scrape(prom_port) is not None,
            timeout=60,
            message=lambda: "three workers and a served port\n" + log.read_text(errors="replace"),
        )
        with httpx.Client(base_url=f"http://127.0.0.1:{app_port}", trust_env=False) as client:
            for _ in range(REQUESTS):
                assert client.get("/hello", headers={"Connection": "close"}).text == "ok"
        wait_until(lambda: scrape(prom_port) == REQUESTS, timeout=30, message="the host total")
        pids = {c.pid for c in master.children()}
        assert len(pids) == WORKERS  # nobody crashed at boot (gunicorn would have replaced it)
        text = log.read_text(errors="replace")
        assert "Traceback" not in text
        assert "Worker failed to boot" not in text
        serving = holder(master, prom_port)
        assert serving is not None
        serving.send_signal(signal.SIGKILL)
        wait_until(
            lambda: (h := holder(master, prom_port)) is not None and h.pid != serving.pid,
            timeout=30,
            message="a standby worker takes the port",
        )
        # The killed worker's last published counts stay in the host view.
        wait_until(lambda: scrape(prom_port) == REQUESTS, timeout=30, message="the same total")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        if process.poll() is None:
            process.wait(5)
