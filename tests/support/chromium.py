"""A headless Chromium spoken to over the DevTools protocol, for the dashboard's browser tests.

Chromium comes from Debian (``apt-get install chromium``), ``websocket-client`` from the dev
extra; the tests that use them skip without. The browser runs with a private profile, no network
beyond 127.0.0.1 and a bounded life: its whole process group is stopped when the test ends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from servers import wait_until

__all__ = ["CHROMIUM", "Chromium", "requires_chromium", "started_chromium"]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
requires_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not found: apt-get install chromium"
)


class Chromium:
    """A headless Chromium with one page, spoken to over the Chrome DevTools Protocol."""

    def __init__(self, binary: str, profile: Path) -> None:
        self.console_errors: list[str] = []
        self._next_id = 0
        self._process = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--no-proxy-server",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so every child stops with it
        )
        try:
            port_file = profile / "DevToolsActivePort"
            wait_until(
                lambda: port_file.is_file() and port_file.read_text().count("\n") >= 1,
                timeout=20,
                message=self._dead_or("Chromium's DevToolsActivePort file"),
            )
            port = int(port_file.read_text().splitlines()[0])
            targets: list[dict[str, Any]] = wait_until(
                lambda: [
                    t
                    for t in httpx.get(f"http://127.0.0.1:{port}/json/list", trust_env=False).json()
                    if t.get("type") == "page"
                ],
                timeout=10,
                message="a page target",
            )
            import websocket  # the dev extra; started_chromium() skips without it

            self._ws = websocket.create_connection(
                targets[0]["webSocketDebuggerUrl"], timeout=10, suppress_origin=True
            )
            for domain in ("Runtime", "Log", "Page"):
                self.call(f"{domain}.enable")
        except BaseException:
            self.close()
            raise

    def _dead_or(self, what: str) -> Any:
        return lambda: f"{what} (chromium exit status: {self._process.poll()})"

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result; events read meanwhile are recorded."""
        self._next_id += 1
        ident = self._next_id
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']!r}")
                result: dict[str, Any] = message["result"]
                return result
            self._event(message)

    def _event(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.console_errors.append(json.dumps(params.get("args")))
        elif method == "Runtime.exceptionThrown":
            self.console_errors.append(json.dumps(params.get("exceptionDetails")))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            self.console_errors.append(
                f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}"
            )

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable results)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} raised {result['exceptionDetails']!r}")
        return result["result"].get("value")

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def close(self) -> None:
        ws = getattr(self, "_ws", None)
        if ws is not None:
            ws.close()
        if self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(5)


@contextmanager
def started_chromium() -> Iterator[Chromium]:
    """A started headless Chromium with a throw-away profile, stopped on exit."""
    if CHROMIUM is None:
        pytest.skip("chromium not found: apt-get install chromium")
    pytest.importorskip("websocket", reason="pip install websocket-client (dev extra)")
    with tempfile.TemporaryDirectory(prefix="fluxstack-chromium-") as profile:
        browser = Chromium(CHROMIUM, Path(profile))
        try:
            yield browser
        finally:
            browser.close()
