"""Section 4b: import + configure time, each sample in a fresh interpreter.

The timer runs inside the child, around the import and the configure call only, so interpreter
start-up is not counted. Bytecode is cached as in any installed deployment, but into a private
``PYTHONPYCACHEPREFIX`` directory (never into the source tree), with ``PYTHONDONTWRITEBYTECODE``
cleared for the children; one discarded run per command fills that cache and the OS page cache.
The commands are then interleaved over the rounds and the median is reported. The children run
in an empty working directory, as an app without a ``pyproject.toml`` table would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _stats import median, quartiles

SRC = Path(__file__).resolve().parent.parent / "src"

COMMANDS: dict[str, tuple[str, str]] = {
    "fluxstack": (
        "import fluxstack_otel + configure_monitoring()",
        "import time; t=time.perf_counter(); import fluxstack_otel; "
        "m=fluxstack_otel.configure_monitoring(); print(time.perf_counter()-t); m.shutdown()",
    ),
    "fluxstack_import": (
        "import fluxstack_otel (alone, for the breakdown)",
        "import time; t=time.perf_counter(); import fluxstack_otel; print(time.perf_counter()-t)",
    ),
    "prometheus_client": (
        "import prometheus_client + Counter + Histogram",
        "import time; t=time.perf_counter(); import prometheus_client as p; "
        "r=p.CollectorRegistry(); p.Counter('c','c',registry=r); p.Histogram('h','h',registry=r); "
        "print(time.perf_counter()-t)",
    ),
    "otel_sdk": (
        "import OTel SDK + MeterProvider(InMemoryMetricReader)",
        "import time; t=time.perf_counter(); from opentelemetry.sdk.metrics import MeterProvider; "
        "from opentelemetry.sdk.metrics.export import InMemoryMetricReader; "
        "m=MeterProvider(metric_readers=[InMemoryMetricReader()]); print(time.perf_counter()-t); "
        "m.shutdown()",
    ),
}


def _env(pycache: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH", "")]))
    return env


def _once(code: str, env: dict[str, str], cwd: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise RuntimeError(tail or f"exit status {done.returncode}")
    return float(done.stdout.strip().splitlines()[-1])


def run(rounds: int, warm: bool = True) -> dict[str, Any]:
    """Median seconds per command over ``rounds`` fresh interpreters.

    Args:
        rounds: Timed runs per command.
        warm: Run each command once, untimed, first (fills the bytecode and page caches). A smoke
            run skips it: its single figure is then a cold start.
    """
    scratch = tempfile.mkdtemp(prefix="bench-startup-")
    pycache = os.path.join(scratch, "pycache")
    workdir = os.path.join(scratch, "app")
    os.mkdir(workdir)
    try:
        # A smoke run keeps the environment's bytecode as it is: filling a private cache would
        # compile everything once, for one figure that means nothing.
        return _run(rounds, _env(pycache if warm else None), warm, workdir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run(rounds: int, env: dict[str, str], warm: bool, cwd: str) -> dict[str, Any]:
    result: dict[str, Any] = {
        "rounds": rounds,
        "pythonpath": str(SRC),
        "bytecode": (
            "cached in a private PYTHONPYCACHEPREFIX, filled by one discarded run"
            if warm
            else "as the environment has it; no warm-up run (smoke)"
        ),
        "rows": {},
    }
    rows: dict[str, Any] = result["rows"]
    alive: list[str] = []
    for key, (label, code) in COMMANDS.items():
        rows[key] = {"label": label, "code": code, "seconds_per_round": []}
        try:
            first = _once(code, env, cwd)
        except (RuntimeError, subprocess.SubprocessError, ValueError) as exc:
            message = str(exc)
            if key.startswith("fluxstack") and (
                "ModuleNotFoundError" in message or "ImportError" in message
            ):
                rows[key]["skipped"] = f"unavailable: {message}"
            else:
                rows[key]["error"] = message
            continue
        alive.append(key)
        if not warm:
            rows[key]["seconds_per_round"].append(first)
    for r in range(rounds if warm else rounds - 1):
        for key in alive[r % len(alive) :] + alive[: r % len(alive)] if alive else []:
            try:
                rows[key]["seconds_per_round"].append(_once(COMMANDS[key][1], env, cwd))
            except (RuntimeError, subprocess.SubprocessError, ValueError) as exc:
                rows[key]["error"] = str(exc)
    for key in alive:
        times = rows[key]["seconds_per_round"]
        if times:
            rows[key]["ms"] = median(times) * 1000
            rows[key]["ms_q1_q3"] = [q * 1000 for q in quartiles(times)]
    return result
