"""The benchmark suite runs: a --quick smoke run builds every variant and answers correctly.

The benchmark is not a test of speed (timing claims live in benchmarks/, measured side by side);
this only proves the harness and every variant still work, so the figures can be reproduced.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # real servers or subprocesses: left out of make unit-fast

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(330)  # the instruction count runs each package variant twice under valgrind
def test_quick_benchmark_run_builds_every_variant(tmp_path: Path) -> None:
    """``benchmarks/run.py --quick`` exits 0 and reports a figure for this package and its peers."""
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    text = json.dumps(results)
    for variant in ("fluxstack", "handwritten", "otel", "starlette-exporter", "instrumentator"):
        assert variant in text, f"{variant} missing from the quick run"
    # The default configuration is the row issue 21's target is set on: built and served too.
    inproc = results["sections"]["inproc"]["variants"]
    assert "fluxstack-default" in inproc
    # The cost with 64 routes (64 series and more), beside the reference on the same app.
    for variant in ("fluxstack-wide", "handwritten-wide"):
        assert inproc[variant]["base"] == "starlette-wide", variant
        assert "overhead_us" in inproc[variant], variant
    assert "unavailable" not in done.stdout
    icount = results["sections"]["icount"]
    if shutil.which("valgrind") is None:
        assert "valgrind" in icount["skipped"]
    else:  # the instruction count of the package's request path was taken, both configurations
        for variant in ("fluxstack", "fluxstack-default"):
            assert icount["variants"][variant]["instructions_per_request"] > 1000, variant


@pytest.mark.slow
@pytest.mark.timeout(200)
def test_the_fastapi_benchmark_runs_every_mode(tmp_path: Path) -> None:
    """``benchmarks/fastapi_native.py`` with one small round reports a CPU figure for every mode."""
    out = tmp_path / "fastapi.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fastapi_native.py"), "--rounds", "1",
         "--requests", "200", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    text = json.dumps(results)
    for mode in ("bare", "monitored-local", "monitored-process", "sdk-provider"):
        assert mode in text, f"{mode} missing from the FastAPI benchmark"


def test_the_scale_benchmark_reports_every_section(tmp_path: Path) -> None:
    """``benchmarks/scale.py`` on a small stream: idle CPU shared and per sink, fresh renders
    against prometheus_client, memory, and request latency with and without scrapes."""
    out = tmp_path / "scale.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--series", "100",
         "--interval", "0.3", "--ticks", "2", "--rounds", "1", "--p99-series", "100",
         "--p99-seconds", "4", "--scrape-every", "0.5", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    figures = results["sizes"]["100"]
    assert set(figures) == {"shared", "per-sink"}
    for mode in figures.values():
        assert mode["idle_cpu_percent"] > 0
        assert mode["alert_evaluation_cpu_ms"] >= 0
    render = results["render"]["100"]
    assert render["render_cpu_ms"] > 0
    assert render["prometheus_client_cpu_ms"] > 0
    assert render["body_bytes"] > 0
    p99 = results["p99"]
    assert p99["scrapes"] > 0
    for mode in ("without scrapes", "with scrapes"):
        assert p99[mode]["p99_ms"] > 0
        assert p99[mode]["rps"] > 0
