"""Real parts the tests drive: uvicorn in a thread, Prometheus, Alertmanager and promtool.

Tests import this module as ``servers`` (``from servers import PrometheusServer``): under pytest's
default import mode the ``tests/`` folder is on ``sys.path``, as it is for ``conftest.py``, which
also offers the common cases as fixtures (``serve``, ``prometheus``, ``alertmanager``).

Every server has a bounded life: it listens on 127.0.0.1 only, on a port of its own, and every wait
polls a condition until a deadline, then fails with what was seen. The Prometheus binaries come from
Debian (``apt-get install prometheus prometheus-alertmanager``); where one is absent the tests that
need it skip, naming the package to install.

HTTP to these servers bypasses any proxy set in the environment; a test's own client should too
(``httpx.Client(trust_env=False)``).

Configuration files are written as JSON, which Prometheus and Alertmanager read as YAML, so no YAML
library is needed.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import pytest
import uvicorn

__all__ = [
    "AlertmanagerServer",
    "HarnessError",
    "PrometheusServer",
    "ServerStartError",
    "alertmanager_path",
    "free_port",
    "prometheus_path",
    "promtool_check_metrics",
    "promtool_check_rules",
    "promtool_path",
    "requires_alertmanager",
    "requires_prometheus",
    "requires_promtool",
    "serve_asgi",
    "wait_until",
]

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]
T = TypeVar("T")

HOST = "127.0.0.1"


class HarnessError(RuntimeError):
    """A real part did not behave: it failed to start, to stop, or answered with an error."""


class ServerStartError(HarnessError):
    """A server did not become ready in time; the message carries its stderr tail."""


# --- waiting ---------------------------------------------------------------------------------


def wait_until(
    condition: Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.05,
    message: str | Callable[[], str] = "condition",
) -> T:
    """Poll ``condition`` until it returns a truthy value, and return that value.

    Raises:
        AssertionError: The deadline passed; the message says what was awaited.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:g}s waiting for {text}")
        time.sleep(interval)


# --- ports and binaries ----------------------------------------------------------------------


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that was free a moment ago (for servers that cannot report port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _find_binary(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    for name in names:
        candidate = Path("/usr/bin") / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


@functools.cache
def promtool_path() -> str | None:
    """The ``promtool`` binary, or None."""
    return _find_binary("promtool")


@functools.cache
def prometheus_path() -> str | None:
    """The ``prometheus`` server binary, or None."""
    return _find_binary("prometheus")


@functools.cache
def alertmanager_path() -> str | None:
    """The Alertmanager binary (Debian names it ``prometheus-alertmanager``), or None."""
    return _find_binary("prometheus-alertmanager", "alertmanager")


@functools.cache
def pushgateway_path() -> str | None:
    """The Pushgateway binary (Debian names it ``prometheus-pushgateway``), or None."""
    return _find_binary("prometheus-pushgateway", "pushgateway")


PROMTOOL_MISSING = "promtool not found: apt-get install prometheus"
PROMETHEUS_MISSING = "prometheus not found: apt-get install prometheus"
ALERTMANAGER_MISSING = "alertmanager not found: apt-get install prometheus-alertmanager"

requires_promtool = pytest.mark.skipif(promtool_path() is None, reason=PROMTOOL_MISSING)
requires_prometheus = pytest.mark.skipif(prometheus_path() is None, reason=PROMETHEUS_MISSING)
requires_alertmanager = pytest.mark.skipif(alertmanager_path() is None, reason=ALERTMANAGER_MISSING)
PUSHGATEWAY_MISSING = "pushgateway not found: apt-get install prometheus-pushgateway"
requires_pushgateway = pytest.mark.skipif(pushgateway_path() is None, reason=PUSHGATEWAY_MISSING)


# --- uvicorn ---------------------------------------------------------------------------------


@contextmanager
def serve_asgi(
    app: ASGIApp,
    *,
    host: str = HOST,
    startup_timeout: float = 10.0,
    shutdown_timeout: float = 10.0,
    **config: Any,
) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn in a background thread and yield its base URL.

    The server binds port 0, so the kernel picks a free port and no other process can race for it.
    On exit the server is asked to stop (lifespan shutdown runs) and its thread is joined.

    Args:
        app: Any ASGI 3 application.
        host: The address to bind.
        startup_timeout: Seconds to wait for the server to accept connections.
        shutdown_timeout: Seconds to wait for a graceful stop before forcing it.
        **config: Further ``uvicorn.Config`` options.

    Yields:
        ``http://HOST:PORT``.

    Raises:
        ServerStartError: The server did not start (its failure is chained).
        HarnessError: The server did not stop, or failed while serving.
    """
    options: dict[str, Any] = {"log_level": "warning", "lifespan": "auto", **config}
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=0, **options))
    base = ""
    failures: list[BaseException] = []

    def run() -> None:
        # Caught here so the failure reaches the test thread instead of the thread excepthook;
        # uvicorn raises SystemExit when it cannot bind.
        try:
            server.run()
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, name="uvicorn-test-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive():
                raise ServerStartError(
                    "uvicorn stopped before it started (see the log above)"
                ) from (failures[0] if failures else None)
            if time.monotonic() >= deadline:
                raise ServerStartError(f"uvicorn did not start within {startup_timeout:g}s")
            thread.join(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://{host}:{port}"
        _SERVING[base] = server
        yield base
    finally:
        _SERVING.pop(base, None)
        _stop_uvicorn(server, thread, shutdown_timeout)
    if failures:
        raise HarnessError("uvicorn failed while serving") from failures[0]


_SERVING: dict[str, uvicorn.Server] = {}


def settle(base: str, timeout: float = 10.0) -> None:
    """Wait until the ``serve_asgi`` server at ``base`` runs no request.

    A client holds the whole response before the app's coroutine returns: the monitoring
    middleware records an exchange after its last ``send``, so an in-process read made right
    after a response may miss that exchange. Call this between the requests and such a read.
    (A read over HTTP from the same server runs on the same event loop, after that middleware
    code, as long as nothing between the app's last ``send`` and its return awaits.)
    """
    server = _SERVING[base]
    wait_until(
        lambda: not server.server_state.tasks,
        timeout=timeout,
        message=lambda: f"{len(server.server_state.tasks)} request(s) still running at {base}",
    )


def _stop_uvicorn(server: uvicorn.Server, thread: threading.Thread, timeout: float) -> None:
    server.should_exit = True
    thread.join(timeout)
    if thread.is_alive():
        # Graceful shutdown is stuck (a request that never ends): cancel what is left.
        server.force_exit = True
        thread.join(5.0)
    if thread.is_alive():
        raise HarnessError(f"uvicorn did not stop within {timeout:g}s")


# --- promtool --------------------------------------------------------------------------------


def promtool_check_metrics(text: str | bytes, *, timeout: float = 30.0) -> list[str]:
    """Lint a Prometheus text exposition with ``promtool check metrics``.

    Args:
        text: The exposition, as served by a ``/metrics`` endpoint.
        timeout: Seconds promtool may take.

    Returns:
        promtool's findings, one per line; an empty list means the exposition is clean. An
        exposition that does not parse is a finding too (``error while linting: ...``).

    Raises:
        HarnessError: promtool is missing or failed for a reason other than the exposition.
    """
    binary = promtool_path()
    if binary is None:
        raise HarnessError(PROMTOOL_MISSING)
    data = text.encode() if isinstance(text, str) else text
    done = subprocess.run(
        [binary, "check", "metrics"],
        input=data,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    output = (done.stdout + done.stderr).decode(errors="replace")
    findings = [line.strip() for line in output.splitlines() if line.strip()]
    # promtool exits 3 for lint problems and 1 when the text does not parse; anything else
    # (a missing subcommand, a crash) is not about the exposition.
    if done.returncode in (0, 3) or (
        done.returncode == 1 and output.startswith("error while linting")
    ):
        return findings
    raise HarnessError(f"promtool check metrics exited {done.returncode}: {output.strip()!r}")


def promtool_check_rules(path: str | Path, *, timeout: float = 60.0) -> str:
    """Check a Prometheus rules file with ``promtool check rules``.

    Args:
        path: The rules file.
        timeout: Seconds promtool may take.

    Returns:
        promtool's report (``SUCCESS: N rules found``...).

    Raises:
        AssertionError: promtool rejected the file; the message is its output.
        HarnessError: promtool is missing.
    """
    binary = promtool_path()
    if binary is None:
        raise HarnessError(PROMTOOL_MISSING)
    done = subprocess.run(
        [binary, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


# --- HTTP ------------------------------------------------------------------------------------

# A proxy from the environment must never see loopback test traffic.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _request(
    url: str, *, data: bytes | None = None, method: str | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def _is_ready(url: str) -> bool:
    try:
        status, _ = _request(url, timeout=1.0)
    except (urllib.error.URLError, OSError):
        return False
    return status == 200


# --- managed processes -----------------------------------------------------------------------


class _ManagedProcess:
    """A server binary with a temp directory, a free port, a readiness probe and a bounded stop."""

    name = "server"
    ready_path = "/-/ready"
    missing = ""
    """What to install when the binary is absent (the error's message)."""

    @staticmethod
    def _find() -> str | None:
        """The binary's path, or None where it is absent."""
        raise NotImplementedError

    def __init__(self, *, startup_timeout: float = 20.0) -> None:
        """Describe the server; it starts on ``__enter__``.

        Raises:
            HarnessError: The binary is absent.
        """
        binary = self._find()
        if binary is None:
            raise HarnessError(self.missing)
        self.binary = binary
        self.startup_timeout = startup_timeout
        self.port = 0
        self.directory = Path()
        self._process: subprocess.Popen[bytes] | None = None
        self._stack = ExitStack()

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, as a Prometheus target or Alertmanager address."""
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``."""
        return f"http://{self.address}"

    @property
    def log_path(self) -> Path:
        """The file the server's stdout and stderr go to."""
        return self.directory / f"{self.name}.log"

    config_name = ""
    """The configuration file's name in the server's directory."""

    @property
    def config_path(self) -> Path:
        """The configuration file written for this server."""
        return self.directory / self.config_name

    def _arguments(self) -> list[str]:
        raise NotImplementedError

    def _write_config(self) -> None:
        raise NotImplementedError

    def _write_json_config(self, config: Mapping[str, Any]) -> None:
        """``config`` as the configuration file (JSON, which is YAML too)."""
        self.config_path.write_text(json.dumps(config, indent=2))

    def _file_arguments(self, storage_flag: str) -> list[str]:
        """The configuration file, the data directory (under ``storage_flag``), the address."""
        return [
            f"--config.file={self.config_path}",
            f"--{storage_flag}={self.directory / 'data'}",
            f"--web.listen-address={self.address}",
        ]

    def __enter__(self) -> Self:
        try:
            self.directory = Path(
                self._stack.enter_context(
                    tempfile.TemporaryDirectory(
                        prefix=f"fluxstack-otel-{self.name}-", ignore_cleanup_errors=True
                    )
                )
            )
            self._stack.callback(self._terminate)
            self._write_config()
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    def _start(self) -> None:
        # A free port can be taken between the probe and the bind: try a few.
        for attempt in range(3):
            self.port = free_port()
            with self.log_path.open("wb") as log:
                self._process = subprocess.Popen(
                    [self.binary, *self._arguments()],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.directory,
                )
            deadline = time.monotonic() + self.startup_timeout
            while self._process.poll() is None and time.monotonic() < deadline:
                if _is_ready(self.url + self.ready_path):
                    return
                time.sleep(0.05)
            code = self._process.poll()
            if code is not None and "address already in use" in self.log_tail() and attempt < 2:
                self._process = None
                continue
            state = "did not become ready" if code is None else f"exited with code {code}"
            raise ServerStartError(
                f"{self.name} {state} within {self.startup_timeout:g}s "
                f"(listening on {self.address})\n--- {self.name} log tail ---\n{self.log_tail()}"
            )

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5.0)

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines the server logged."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        status, body = _request(f"{self.url}{path}{query}")
        try:
            document = json.loads(body)
        except ValueError:
            raise HarnessError(f"GET {path}{query} -> {status}: {body[:500]!r}") from None
        if status != 200:
            raise HarnessError(f"GET {path}{query} -> {status}: {document!r}")
        return document


def _duration(value: float | str) -> str:
    """A Prometheus duration from seconds or an already spelled duration (``"1s"``)."""
    if isinstance(value, str):
        return value
    return f"{round(value * 1000)}ms"


class PrometheusServer(_ManagedProcess):
    """A real Prometheus scraping the given targets, with its HTTP API at hand.

    Use as a context manager::

        with PrometheusServer(["127.0.0.1:8000"]) as prom:
            prom.wait_for("up == 1")

    It is ready in a fraction of a second, but Prometheus 2.x first scrapes new targets about 5 s
    after start (its discovery tick): tests that need scraped data do well to share one server
    through a module-scoped fixture.
    """

    name = "prometheus"
    config_name = "prometheus.yml"
    missing = PROMETHEUS_MISSING
    _find = staticmethod(prometheus_path)

    def __init__(
        self,
        targets: Sequence[str] = (),
        *,
        metrics_path: str = "/metrics",
        scrape_interval: float | str = "1s",
        evaluation_interval: float | str = "1s",
        job_name: str = "app",
        rule_files: Sequence[str | os.PathLike[str]] = (),
        alertmanager: str | None = None,
        startup_timeout: float = 20.0,
        features: Sequence[str] = (),
    ) -> None:
        """Describe the server; it starts on ``__enter__``.

        Args:
            targets: ``host:port`` of each app to scrape, in one job.
            metrics_path: The path scraped on every target.
            scrape_interval: Seconds, or a Prometheus duration; also the scrape timeout.
            evaluation_interval: How often rule files are evaluated.
            job_name: The ``job`` label of the targets.
            rule_files: Alerting or recording rule files to load.
            alertmanager: ``host:port`` of an Alertmanager to send alerts to.
            startup_timeout: Seconds to wait for ``/-/ready``.
            features: ``--enable-feature`` flags (``native-histograms``).

        Raises:
            HarnessError: The prometheus binary is absent.
        """
        super().__init__(startup_timeout=startup_timeout)
        self.features = list(features)
        self.targets_config = list(targets)
        self.metrics_path = metrics_path
        self.scrape_interval = _duration(scrape_interval)
        self.evaluation_interval = _duration(evaluation_interval)
        self.job_name = job_name
        self.rule_files = [str(Path(p).resolve()) for p in rule_files]
        self.alertmanager = alertmanager

    def _write_config(self) -> None:
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "scrape_configs": [
                {
                    "job_name": self.job_name,
                    "metrics_path": self.metrics_path,
                    "scrape_interval": self.scrape_interval,
                    "scrape_timeout": self.scrape_interval,
                    "static_configs": [{"targets": self.targets_config}],
                }
            ],
        }
        if self.rule_files:
            config["rule_files"] = self.rule_files
        if self.alertmanager is not None:
            config["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": [self.alertmanager]}]}]
            }
        self._write_json_config(config)

    def _arguments(self) -> list[str]:
        return [
            *self._file_arguments("storage.tsdb.path"),
            # Hidden flag (default 5s). Prometheus 2.x hands new targets to the scrape manager only
            # on its 5 s discovery tick; without this the scrape manager's own 5 s tick can add
            # another 5 s before the first scrape.
            "--scrape.discovery-reload-interval=100ms",
            *(f"--enable-feature={f}" for f in self.features),
        ]

    def api(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET ``/api/v1/<path>`` and return its ``data``.

        Raises:
            HarnessError: The API answered with an error (a bad query, for example).
        """
        document = self._get_json(f"/api/v1/{path}", params)
        if document.get("status") != "success":
            raise HarnessError(f"/api/v1/{path} {dict(params or {})!r}: {document!r}")
        return document["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Evaluate an instant query now.

        Returns:
            The result series, each ``{"metric": {labels}, "value": [time, "value"]}``; a scalar
            or string result comes back as one such entry with no labels.
        """
        data = self.api("query", {"query": promql})
        result = data["result"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": result}]
        return list(result)

    def wait_for(
        self,
        promql: str,
        predicate: Callable[[list[dict[str, Any]]], bool] = bool,
        *,
        timeout: float = 15.0,
        interval: float = 0.1,
    ) -> list[dict[str, Any]]:
        """Poll ``query(promql)`` until ``predicate(result)`` holds (default: a non-empty result).

        Returns:
            The result that satisfied the predicate.

        Raises:
            AssertionError: The deadline passed; the message has the last result, the targets'
                health and the server's log tail.
        """
        last: list[list[dict[str, Any]]] = [[]]

        def satisfied() -> bool:
            last[0] = self.query(promql)
            return bool(predicate(last[0]))

        def explain() -> str:
            health = [
                {k: t.get(k) for k in ("scrapeUrl", "health", "lastError")} for t in self.targets()
            ]
            return (
                f"{promql!r} to satisfy the predicate; last result: {last[0]!r}; "
                f"targets: {health!r}\n--- prometheus log tail ---\n{self.log_tail(10)}"
            )

        wait_until(satisfied, timeout=timeout, interval=interval, message=explain)
        return last[0]

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets with their ``health``, ``lastError`` and ``scrapeUrl``."""
        return list(self.api("targets", {"state": "active"})["activeTargets"])

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts of the loaded rules, pending or firing."""
        return list(self.api("alerts")["alerts"])

    def rules(self) -> list[dict[str, Any]]:
        """The loaded rule groups with each rule's state and health."""
        return list(self.api("rules")["groups"])


class AlertmanagerServer(_ManagedProcess):
    """A real Alertmanager (clustering off) routing every alert to a receiver that does nothing."""

    name = "alertmanager"
    config_name = "alertmanager.yml"
    missing = ALERTMANAGER_MISSING
    _find = staticmethod(alertmanager_path)

    def _write_config(self) -> None:
        self._write_json_config({"route": {"receiver": "null"}, "receivers": [{"name": "null"}]})

    def _arguments(self) -> list[str]:
        return [*self._file_arguments("storage.path"), "--cluster.listen-address="]

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds (``GET /api/v2/alerts``)."""
        return list(self._get_json("/api/v2/alerts"))

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """Send alerts the way Prometheus does (``POST /api/v2/alerts``).

        Raises:
            HarnessError: Alertmanager refused them.
        """
        body = json.dumps(list(alerts)).encode()
        status, answer = _request(f"{self.url}/api/v2/alerts", data=body, method="POST")
        if status != 200:
            raise HarnessError(f"POST /api/v2/alerts -> {status}: {answer[:500]!r}")


class PushgatewayServer(_ManagedProcess):
    """A real Prometheus Pushgateway, in memory (no persistence file), on a free loopback port."""

    name = "pushgateway"
    missing = PUSHGATEWAY_MISSING
    _find = staticmethod(pushgateway_path)

    def _write_config(self) -> None:
        pass  # configured by its arguments alone

    def _arguments(self) -> list[str]:
        # Debian's default persistence file is shared by every run: keep the groups in memory.
        return [f"--web.listen-address={self.address}", "--persistence.file="]

    def groups(self) -> list[dict[str, Any]]:
        """The pushed groups (``GET /api/v1/metrics``): labels, metric families, push times."""
        return list(self._get_json("/api/v1/metrics")["data"])
