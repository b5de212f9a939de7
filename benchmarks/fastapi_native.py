"""Bare FastAPI's CPU per request, with and without monitoring configured in the same process.

    .venv/bin/python benchmarks/fastapi_native.py [--rounds N] [--requests N] [--json PATH]

FastAPI 0.16x turns its own OpenTelemetry HTTP metrics on for every app once the process-wide
MeterProvider is set. ``configure_monitoring()`` with ``set_global: true`` (the default) sets it;
this measures an app that the monitoring does not instrument, so the figure is what FastAPI's
own telemetry costs, not this package's middleware. Three modes, each in a fresh process (the
global provider cannot be unset), run in an order rotated per round:

- ``bare``: no monitoring;
- ``monitored-local``: ``configure_monitoring()`` with ``set_global: false``, the app left alone:
  what the monitoring itself costs an app it does not instrument;
- ``monitored-process``: ``configure_monitoring()`` with the defaults (``set_global: true``), the
  app left alone: the figure of the target;
- ``sdk-provider``: an SDK ``MeterProvider`` set as the global one, for reference: FastAPI's
  metrics on, as any other global provider turns them on.

Two figures per mode, the app driven in process with ``_driver.Driver`` (no sockets):

- CPU: the median over rounds of process CPU time per request (the sync endpoint runs in a
  worker thread, so process time, not thread time). This machine is shared and noisy: two runs
  of the same mode differ by tens of percent, so read the ratio over many rounds.
- instructions (``--icount``, needs valgrind): callgrind counts the interpreter's instructions
  for 0 and ``--icount-requests`` requests after the same set-up and warm-up; the difference per
  request is the same on every run, whatever the neighbours do.

Target: bare / monitored-process >= 0.95 (per-request cost with monitoring configured at most
about 5 % above bare).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE)]

from _driver import Driver, Request  # noqa: E402
from _stats import median, rotated  # noqa: E402

MODES = ("bare", "monitored-local", "monitored-process", "sdk-provider")
TARGET = 0.95
WORKLOAD = [Request("item", "GET", "/items/7", 200), Request("health", "GET", "/health", 200)]


def _app() -> object:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/items/{item}")
    def item(item: int) -> dict[str, int]:
        return {"item": item}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def _child(mode: str, requests: int) -> float:
    """CPU µs per request of the bare app in this process, after a warm-up."""
    monitoring = None
    if mode.startswith("monitored-"):
        from fluxstack_otel import configure_monitoring

        monitoring = configure_monitoring(
            {"system_metrics": False, "exporters": [], "set_global": mode == "monitored-process"}
        )
    elif mode == "sdk-provider":
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))

    async def measure() -> float:
        driver = Driver(_app(), WORKLOAD)  # type: ignore[arg-type]
        await driver.startup()
        await driver.check()
        await driver.batch(200)
        start = time.process_time()
        if requests:
            await driver.batch(requests)
        spent = time.process_time() - start
        await driver.shutdown()
        return spent / max(requests, 1) * 1e6

    try:
        return asyncio.run(measure())
    finally:
        if monitoring is not None:
            monitoring.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--icount", action="store_true", help="also count instructions")
    parser.add_argument("--icount-requests", type=int, default=400)
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.requests)))
        return 0
    per_mode: dict[str, list[float]] = {mode: [] for mode in MODES}
    ratios: list[float] = []
    for index in range(args.rounds):
        seen: dict[str, float] = {}
        for mode in rotated(MODES, index):
            done = subprocess.run(
                [sys.executable, __file__, "--child", mode, "--requests", str(args.requests)],
                capture_output=True, text=True, timeout=300, check=True,
            )  # fmt: skip
            seen[mode] = float(done.stdout.splitlines()[-1])
            per_mode[mode].append(seen[mode])
        ratios.append(seen["bare"] / seen["monitored-process"])
    result = {
        "requests_per_round": args.requests,
        "rounds": args.rounds,
        "cpu_us_per_request": {mode: round(median(v), 2) for mode, v in per_mode.items()},
        "ratio_bare_over_monitored_process": round(median(ratios), 3),
        "target": TARGET,
    }
    result["met"] = result["ratio_bare_over_monitored_process"] >= TARGET
    if args.icount:
        result["instructions"] = _icount(args.icount_requests)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0


def _icount(requests: int) -> dict[str, object]:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return {"skipped": "valgrind is not installed (Debian package valgrind)"}
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    per_request: dict[str, float] = {}
    for mode in ("bare", "monitored-local", "monitored-process"):
        counts = []
        for n in (0, requests):
            done = subprocess.run(
                [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                 __file__, "--child", mode, "--requests", str(n)],
                capture_output=True, text=True, timeout=900, env=env, check=True,
            )  # fmt: skip
            found = _COLLECTED.search(done.stderr)
            if found is None:
                raise RuntimeError(f"{mode}: no instruction count in {done.stderr[-500:]!r}")
            counts.append(int(found.group(1)))
        per_request[mode] = (counts[1] - counts[0]) / requests
    return {
        "requests": requests,
        "per_request": {mode: round(v) for mode, v in per_request.items()},
        "ratio_bare_over_monitored_process": round(
            per_request["bare"] / per_request["monitored-process"], 3
        ),
    }


if __name__ == "__main__":
    raise SystemExit(main())
