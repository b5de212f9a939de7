"""Beside ``opentelemetry-distro``: ``opentelemetry-instrument`` never starts an app unmonitored.

A real venv (built once for this module, ``autoinst.distro_venv``) sees the test venv's packages
and also has ``opentelemetry-distro``, so two distros and two configurators are installed, as in
a common image. ``opentelemetry-instrument`` picks one of each (the first found, unless
``OTEL_PYTHON_DISTRO`` / ``OTEL_PYTHON_CONFIGURATOR`` name them); the tests name them to pin each
combination, and one leaves the choice to the installation.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from autoinst import APPS, INSTRUMENT, Server, auto_env, distro_venv, server, target_info
from fluxstack_otel._internal.metrics.catalog import BUILTIN_METRICS
from servers import wait_until

pytestmark = [
    pytest.mark.slow,  # each test starts servers in subprocesses
    pytest.mark.skipif(
        not INSTRUMENT.exists(), reason="opentelemetry-instrument is not installed in this venv"
    ),
]

_TYPE_LINE = re.compile(r"^# TYPE (\S+) ", re.M)
# No exports leave the machine: the other distro's OTLP defaults point at a closed loopback port.
_QUIET = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_BSP_SCHEDULE_DELAY": "60000"}


@pytest.fixture(scope="module")
def venv_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` of a venv with this venv's packages and ``opentelemetry-distro``."""
    return distro_venv(tmp_path_factory.mktemp("distro-venv"))


def env_for(venv_bin: Path, extra: Mapping[str, str]) -> dict[str, str]:
    env = auto_env(None, {**_QUIET, **extra})
    env["PATH"] = f"{venv_bin}:{env.get('PATH', '')}"
    return env


def argv(app: str) -> list[str]:
    return [str(INSTRUMENT), "python", "-m", "uvicorn", app, "--host", "127.0.0.1",
            "--port", "{port}", "--app-dir", str(APPS), "--log-level", "warning"]  # fmt: skip


def instrumented(
    venv_bin: Path, tmp_path: Path, extra: Mapping[str, str], app: str = "auto_fastapi:app"
) -> AbstractContextManager[Server]:
    return server(argv(app), env_for(venv_bin, extra), tmp_path / "server.log", cwd=tmp_path)


def all_twelve(client: httpx.Client) -> str:
    """/metrics once every built-in metric is declared (the loop lag needs its first sample)."""

    def missing() -> list[str]:
        declared = set(_TYPE_LINE.findall(client.get("/metrics").text))
        return [m.name for m in BUILTIN_METRICS if m.name not in declared]

    wait_until(lambda: not missing(), timeout=10, message=lambda: f"all twelve: {missing()}")
    return client.get("/metrics").text


def test_the_venv_has_both_distributions(venv_bin: Path) -> None:
    """The harness is what it claims: two distros and two configurators are installed."""
    code = (
        "from importlib.metadata import entry_points as e;"
        "print(sorted(x.name for x in e(group='opentelemetry_distro')),"
        " sorted(x.name for x in e(group='opentelemetry_configurator')))"
    )
    done = subprocess.run([str(venv_bin / "python"), "-c", code], capture_output=True, text=True,
                          timeout=30, check=True)  # fmt: skip
    assert done.stdout.split() == ["['distro',", "'fluxstack_otel']", "['configurator',",
                                   "'fluxstack_otel']"]  # fmt: skip


@pytest.mark.parametrize(
    "selection",
    [
        {},
        {"OTEL_PYTHON_DISTRO": "distro"},
        {"OTEL_PYTHON_DISTRO": "fluxstack_otel"},
        {"OTEL_PYTHON_CONFIGURATOR": "fluxstack_otel"},
        {"OTEL_PYTHON_DISTRO": "distro", "OTEL_PYTHON_CONFIGURATOR": "fluxstack_otel"},
    ],
    ids=["installed-order", "their-distro", "our-distro", "only-our-configurator", "mixed"],
)
def test_this_configurator_serves_the_twelve_whatever_distro_ran(
    venv_bin: Path, tmp_path: Path, selection: dict[str, str]
) -> None:
    """The twelve on /metrics, the route counted, and no 'otlp' the user never asked for."""
    with (
        instrumented(venv_bin, tmp_path, selection) as srv,
        srv.client() as client,
    ):
        assert client.get("/api/users/3").json() == {"user_id": 3}
        text = all_twelve(client)
        output = srv.output()
    assert 'route="/api/users/{user_id}"' in text
    assert "optional dependency" not in output
    assert "Traceback" not in output


def test_their_configurator_chosen_still_monitors_and_says_so(
    venv_bin: Path, tmp_path: Path
) -> None:
    """opentelemetry-distro's configurator set up OpenTelemetry; the instrumentor monitors anyway."""
    selection = {
        "OTEL_PYTHON_DISTRO": "distro",
        "OTEL_PYTHON_CONFIGURATOR": "configurator",
        "OTEL_SERVICE_NAME": "shop",  # the user's variable: honoured by both
        "FLUXSTACK_MONITORING_EXPORTERS": '[{"type": "prometheus", "target_info": true}]',
    }
    with (
        instrumented(venv_bin, tmp_path, selection) as srv,
        srv.client() as client,
    ):
        assert client.get("/api/users/4").status_code == 200
        text = all_twelve(client)
        output = srv.output()
    assert "set up by the 'configurator' configurator" in output
    assert "OTEL_PYTHON_CONFIGURATOR=fluxstack_otel" in output
    assert target_info(text)["service_name"] == "shop"
    assert 'route="/api/users/{user_id}"' in text


@pytest.mark.parametrize(
    ("selection", "named"),
    [
        ({"OTEL_PYTHON_CONFIGURATOR": "fluxstak_otel"}, "OTEL_PYTHON_CONFIGURATOR: 'fluxstak_otel'"),
        ({"OTEL_PYTHON_DISTRO": "fluxstack_otel", "OTEL_PYTHON_CONFIGURATOR": "nope"},
         "OTEL_PYTHON_CONFIGURATOR: 'nope'"),
    ],
    ids=["typo", "our-distro-unknown-configurator"],
)  # fmt: skip
def test_a_configurator_that_is_not_installed_stops_the_process_naming_the_installed(
    venv_bin: Path, tmp_path: Path, selection: dict[str, str], named: str
) -> None:
    """Nothing would configure OpenTelemetry: exit 1 naming the entry and the installed ones."""
    done = subprocess.run(
        [part.replace("{port}", "1") for part in argv("auto_fastapi:app")],
        env=env_for(venv_bin, selection), capture_output=True, text=True, timeout=60,
        cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    assert named in done.stderr
    assert "installed: configurator, fluxstack_otel" in done.stderr
