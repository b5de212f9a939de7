"""Servers under auto-instrumentation, as subprocesses: the harness of the distro and worker tests.

The package is importable in the test venv but need not be installed, so its entry points may be
missing; ``entry_points_dir`` then writes a minimal ``.dist-info`` whose ``entry_points.txt`` is
generated from ``pyproject.toml``'s ``[project.entry-points.*]`` tables (the declared entry
points, not a copy), and ``auto_env`` puts it on ``PYTHONPATH``. Every server runs in a process
group of its own, listens on 127.0.0.1, and is stopped with SIGTERM (then SIGKILL for the whole
group) by ``Server.stop``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import sysconfig
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from importlib.metadata import entry_points, version
from pathlib import Path

import httpx
import pytest

from servers import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"
BIN = Path(sys.executable).parent
INSTRUMENT = BIN / "opentelemetry-instrument"
UVICORN = BIN / "uvicorn"
GUNICORN = BIN / "gunicorn"
requires_instrument = pytest.mark.skipif(
    not INSTRUMENT.exists(), reason="opentelemetry-instrument is not installed in this venv"
)
AUTO_MARKS = [
    pytest.mark.slow,  # real servers in subprocesses: left out of make unit-fast
    requires_instrument,
]
"""The marks of every test module that runs servers under auto-instrumentation."""
# Variables that configure monitoring: the tests start from none of them.
_CONFIG_VARS = re.compile(
    r"^(OTEL_|FLUXSTACK_|ENABLE_MONITORING$|HTTP_METRICS$|SYSTEM_METRICS$|CUSTOM_METRICS$"
    r"|METRICS_INTERVAL$|METRICS_RETENTION_PERIOD$|METRICS_EXPORT_CONSOLE$)"
)
_TARGET_INFO = re.compile(r"^target_info\{([^}]*)\}", re.M)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def declared_entry_points() -> dict[str, dict[str, str]]:
    """``[project.entry-points.*]`` of pyproject.toml: group -> {name: object reference}."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {group: dict(table) for group, table in project.get("entry-points", {}).items()}


def write_entry_points(directory: Path) -> Path | None:
    """A ``.dist-info`` with the declared entry points, unless they are installed already.

    Returns:
        The directory to put on ``PYTHONPATH``, or None when nothing was needed.
    """
    declared = declared_entry_points()
    if all(
        any(ep.name == name for ep in entry_points(group=group))
        for group, table in declared.items()
        for name in table
    ):
        return None
    dist = directory / "fluxstack_otel_entry_points-0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fluxstack-otel-entry-points\nVersion: 0\n"
    )
    lines = []
    for group, table in declared.items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {ref}" for name, ref in table.items()]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return directory


def distro_venv(directory: Path) -> Path:
    """A venv that sees this venv's packages and also has ``opentelemetry-distro``.

    Built with the standard library's ``venv`` (no pip of its own): a ``.pth`` file puts this
    venv's site-packages on its path, and pip installs ``opentelemetry-distro`` (the version of
    the installed ``opentelemetry-instrumentation``, as it requires) into its own site-packages,
    from the package index pip is configured with. Bounded: one pip run of at most 180 s.

    Returns:
        The venv's ``bin`` directory (its ``python`` runs the servers).
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True,
                   timeout=60)  # fmt: skip
    py = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = directory / "lib" / py / "site-packages"
    parent = sysconfig.get_paths()["purelib"]  # with its own .pth files (the editable install)
    (site / "parent-venv.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    wanted = f"opentelemetry-distro=={version('opentelemetry-instrumentation')}"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
         wanted],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"pip install {wanted} failed:\n{done.stderr[-2000:]}")
    return directory / "bin"


def auto_env(entry_dir: Path | None, extra: Mapping[str, str] = ()) -> dict[str, str]:  # type: ignore[assignment]
    """The environment of a server under test: no monitoring variables but ``extra``."""
    env = {k: v for k, v in os.environ.items() if not _CONFIG_VARS.match(k)}
    paths = [str(APPS), str(ROOT / "src")]
    if entry_dir is not None:
        paths.append(str(entry_dir))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class Server:
    """A server command in its own process group, its output in ``log``."""

    def __init__(
        self, argv: Sequence[str], env: Mapping[str, str], log: Path, *, cwd: Path, port: int
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
            )

    def client(self) -> httpx.Client:
        """A client of this server: a 5 s timeout, and no proxy taken from the environment."""
        return httpx.Client(base_url=self.url, timeout=5, trust_env=False)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def wait_ready(self, path: str = "/", timeout: float = 30.0) -> None:
        """Wait until ``path`` answers (any status), failing with the log when it exits."""

        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.process.returncode}:\n{self.tail()}"
                )
            try:
                httpx.get(self.url + path, timeout=2.0, headers={"Connection": "close"})
            except httpx.HTTPError:
                return False
            return True

        wait_until(ready, timeout=timeout, interval=0.1, message=lambda: f"ready\n{self.tail()}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait for a graceful exit, then SIGKILL the group. Returns the exit status."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # whatever is left of the group
        if self.process.poll() is None:
            self.process.wait(5)
        return self.process.returncode


def uvicorn_argv(app: str, *options: str, prefix: Sequence[str] = (str(INSTRUMENT),)) -> list[str]:
    """``opentelemetry-instrument uvicorn APP`` (or another ``prefix``) serving a test app on
    127.0.0.1 at the ``{port}`` that ``server`` fills in, with ``options`` added."""
    return [*prefix, str(UVICORN), app, "--host", "127.0.0.1", "--port", "{port}",
            "--app-dir", str(APPS), *options]  # fmt: skip


def gunicorn_argv(app: str, workers: int, *options: str) -> list[str]:
    """``opentelemetry-instrument gunicorn`` with ``workers`` uvicorn workers serving a test app
    on 127.0.0.1 at the ``{port}`` that ``server`` fills in, with ``options`` added."""
    return [str(INSTRUMENT), str(GUNICORN), "-w", str(workers), "-k", "uvicorn.workers.UvicornWorker",
            "--bind", "127.0.0.1:{port}", "--chdir", str(APPS), *options, app]  # fmt: skip


@contextlib.contextmanager
def server(
    argv_for_port: Sequence[str],
    env: Mapping[str, str],
    log: Path,
    *,
    cwd: Path,
    ready_path: str = "/",
) -> Iterator[Server]:
    """Start ``argv`` (``{port}`` replaced by a free port), wait until it answers, stop it after."""
    port = free_port()
    argv = [part.replace("{port}", str(port)) for part in argv_for_port]
    srv = Server(argv, env, log, cwd=cwd, port=port)
    try:
        srv.wait_ready(ready_path)
        yield srv
    finally:
        srv.stop()


def target_info(text: str) -> dict[str, str]:
    """The labels of the ``target_info`` series of an exposition."""
    match = _TARGET_INFO.search(text)
    return dict(_LABEL.findall(match.group(1))) if match else {}


def worker_views(url: str, *, workers: int, attempts: int = 200) -> dict[int, str]:
    """pid -> that worker's ``/metrics``, read on new connections until ``workers`` were seen.

    ``/pid`` and ``/metrics`` go over one keep-alive connection, so one worker answers both.
    """
    seen: dict[int, str] = {}
    deadline = time.monotonic() + 30
    for _ in range(attempts):
        with httpx.Client(base_url=url, timeout=5.0, trust_env=False) as client:
            pid = int(client.get("/pid").text)
            seen[pid] = client.get("/metrics").text
        if len(seen) >= workers or time.monotonic() > deadline:
            break
    return seen
