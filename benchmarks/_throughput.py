"""Section 2: throughput under uvicorn on 127.0.0.1, one server subprocess per variant.

All servers start first (in parallel, then pinned to one core) and are warmed up; the load
generator is pinned to another core. Each round has two parts:

- solo runs: every server alone under load, in an order rotated per round, for the absolute
  requests/s, p50 and p99;
- paired runs: each variant and its bare app loaded at the same time, for the same second, both
  servers on the one core. The kernel's scheduler interleaves them every few milliseconds, so a
  slow spell of the machine (on a shared virtual machine, adjacent seconds differ by up to 15 %)
  lands on both alike. Each server's CPU time is read from ``/proc/PID/task/*/schedstat`` (ns)
  around the run, and the round's **capacity ratio** is the variant's requests per CPU-second
  over the bare app's: what a saturated server's requests/s would be, corrected for the
  scheduler's share not being exactly half.

The report gives the median capacity ratio over the rounds (the figure the targets use), the
paired runs' raw requests/s ratio beside it, and the medians of the solo runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _apps import MIX, Context, Variant
from _stats import median, rotated

HERE = Path(__file__).resolve().parent


@dataclass
class _Server:
    variant: Variant
    port: int
    proc: subprocess.Popen[bytes]
    report: Path
    stderr: Path
    runs: list[dict[str, Any]] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    capacity: list[float] = field(default_factory=list)
    paired: list[dict[str, Any]] = field(default_factory=list)
    # More processes of the same variant, for the paired runs (see run's ``instances``).
    twins: list[_Server] = field(default_factory=list)

    def instance(self, k: int) -> _Server:
        """Process ``k`` (mod their number) of this variant: 0 is this one, then the twins."""
        every = [self, *self.twins]
        return every[k % len(every)]


def plan_cores() -> tuple[int | None, int | None, str]:
    """(server cpu, load generator cpu, note): one core each when taskset and 2 cores allow."""
    cpus = sorted(os.sched_getaffinity(0))
    if shutil.which("taskset") is None:
        return None, None, "taskset not found: server and load generator share all cores"
    if len(cpus) < 2:
        return None, None, f"only {len(cpus)} core(s) available: no pinning"
    return cpus[0], cpus[1], f"server pinned to cpu {cpus[0]}, load generator to cpu {cpus[1]}"


def choose_loadgen(preference: str) -> str:
    if preference == "wrk" and shutil.which("wrk") is None:
        raise SystemExit("--loadgen wrk: wrk is not installed (apt-get install wrk)")
    if preference == "auto":
        return "wrk" if shutil.which("wrk") else "httpx"
    return preference


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, method: str = "GET", body: bytes = b"", ctype: bytes = b"") -> int:
    req = urllib.request.Request(url, data=body or None, method=method)
    if ctype:
        req.add_header("Content-Type", ctype.decode())
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _start(variant: Variant, ctx: Context, workdir: Path, instance: int = 0) -> _Server:
    port = _free_port()
    tag = variant.name if instance == 0 else f"{variant.name}.{instance}"
    report = workdir / f"{tag}.json"
    stderr = workdir / f"{tag}.stderr"
    cmd = [
        sys.executable,
        str(HERE / "_server.py"),
        f"--variant={variant.name}",
        f"--port={port}",
        f"--tmpdir={ctx.tmpdir / tag}",
        f"--otlp-endpoint={ctx.otlp_endpoint}",
        f"--report={report}",
    ]
    (ctx.tmpdir / tag).mkdir(parents=True, exist_ok=True)
    with stderr.open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    return _Server(variant, port, proc, report, stderr)


def _wait_ready(server: _Server, timeout: float = 90.0) -> str | None:
    """None when the server answers; else the reason it is not serving."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{server.port}/plain"
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            info = _read_report(server)
            if "skipped" in info:
                return "skip:" + info["skipped"]
            tail = server.stderr.read_text(errors="replace").strip().splitlines()[-5:]
            return f"server exited with {server.proc.returncode}: " + " | ".join(tail)
        with contextlib.suppress(OSError):
            if _get(url) == 200:
                return None
        time.sleep(0.2)
    return f"server did not answer within {timeout:.0f} s"


def _read_report(server: _Server) -> dict[str, Any]:
    try:
        return dict(json.loads(server.report.read_text()))
    except (OSError, ValueError):
        return {}


def _smoke(server: _Server) -> str | None:
    base = f"http://127.0.0.1:{server.port}"
    for req in MIX:
        status = _get(base + req.path, req.method, req.body, req.content_type)
        if status != req.expect_status:
            return f"{req.method} {req.path} answered {status}, expected {req.expect_status}"
    return None


def _pin(pid: int, cpu: int | None) -> None:
    if cpu is not None:
        subprocess.run(
            ["taskset", "-a", "-p", "-c", str(cpu), str(pid)],
            check=True,
            stdout=subprocess.DEVNULL,
        )


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(text: str) -> dict[str, Any]:
    """Requests/s, p50/p99 (ms), request count and errors from ``wrk --latency`` output."""

    def latency(pct: str) -> float:
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.MULTILINE)
        return float(m.group(1)) * _UNIT_MS[m.group(2)] if m else float("nan")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if rps is None or total is None:
        raise ValueError(f"cannot parse wrk output: {text!r}")
    return {
        "rps": float(rps.group(1)),
        "requests": int(total.group(1)),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non_2xx_3xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": sum(int(g) for g in sock.groups()) if sock else 0,
    }


def _load_cmd(
    loadgen: str, port: int, duration: int, connections: int, cpu: int | None
) -> list[str]:
    url = f"http://127.0.0.1:{port}"
    prefix = ["taskset", "-c", str(cpu)] if cpu is not None else []
    if loadgen == "wrk":
        script = str(HERE / "mix.lua")
        return [*prefix, "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script, url]  # fmt: skip
    loader = str(HERE / "_loadgen.py")
    return [*prefix, sys.executable, loader, url, f"--duration={duration}", f"--connections={connections}"]  # fmt: skip


def _parse(loadgen: str, stdout: str) -> dict[str, Any]:
    return parse_wrk(stdout) if loadgen == "wrk" else dict(json.loads(stdout))


def _load(
    loadgen: str, port: int, duration: int, connections: int, cpu: int | None
) -> dict[str, Any]:
    cmd = _load_cmd(loadgen, port, duration, connections, cpu)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True)
    return _parse(loadgen, done.stdout)


def cpu_ns(pid: int) -> int | None:
    """CPU time every live thread of ``pid`` has run, in ns (``schedstat``); None off Linux."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended between the listing and the read
    return total


def _load_pair(
    loadgen: str, bare: _Server, variant: _Server, duration: int, connections: int,
    cpu: int | None,
) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """Load both servers at once for the same duration; each run with its server's CPU time."""
    pair = (bare, variant)
    before = [cpu_ns(s.proc.pid) for s in pair]
    procs = [
        subprocess.Popen(
            _load_cmd(loadgen, s.port, duration, connections, cpu),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in pair
    ]
    outs = [p.communicate(timeout=duration + 60) for p in procs]
    after = [cpu_ns(s.proc.pid) for s in pair]
    runs = []
    for proc, (stdout, stderr), b, a in zip(procs, outs, before, after, strict=True):
        if proc.returncode != 0:
            raise ValueError(f"exit status {proc.returncode}: {stderr.strip()[-300:]}")
        run = _parse(loadgen, stdout)
        if b is not None and a is not None and run["requests"] > 0:
            run["cpu_s"] = (a - b) / 1e9
        runs.append(run)
    return runs[0], runs[1]


def _load_all_at_once(
    loadgen: str, servers: dict[str, _Server], duration: int, connections: int
) -> dict[str, dict[str, Any] | str]:
    """Smoke mode: load every server at the same time (proves each runs; measures nothing)."""
    procs = {
        name: subprocess.Popen(
            _load_cmd(loadgen, server.port, duration, connections, None),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, server in servers.items()
    }
    out: dict[str, dict[str, Any] | str] = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=duration + 60)
        try:
            if proc.returncode != 0:
                raise ValueError(f"exit status {proc.returncode}: {stderr.strip()[-300:]}")
            out[name] = _parse(loadgen, stdout)
        except ValueError as exc:
            out[name] = str(exc)
    return out


def _stop(server: _Server) -> None:
    """Stop the server and its twins (SIGINT, then SIGKILL after 15 s)."""
    for process in (server, *server.twins):
        if process.proc.poll() is None:
            process.proc.send_signal(signal.SIGINT)
    for process in (server, *server.twins):
        try:
            process.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.proc.kill()
            process.proc.wait()


def run(
    variants: list[Variant],
    ctx: Context,
    *,
    rounds: int,
    duration: int,
    connections: int,
    warmup: int,
    loadgen: str,
    smoke: bool = False,
    instances: int = 3,
) -> dict[str, Any]:
    """Measure requests/s, p50 and p99 per variant; returns the section's JSON-ready result.

    ``instances`` processes of every variant serve the paired runs, in turn: one process's
    figures carry its own luck (memory layout, hash seed), which moved two processes of the
    same bare app up to 3 % apart here, as much as the differences being measured.
    """
    server_cpu, client_cpu, pin_note = plan_cores()
    result: dict[str, Any] = {
        "loadgen": loadgen,
        "command": (
            f"wrk -t1 -c{connections} -d{duration}s --latency -s benchmarks/mix.lua URL"
            if loadgen == "wrk"
            else f"benchmarks/_loadgen.py URL --duration={duration} --connections={connections}"
        ),
        "rounds": rounds if not smoke else "smoke: every server loaded at once",
        "warmup_seconds": warmup,
        "pinning": pin_note,
        "server": "uvicorn, one process, h11/asyncio as installed, access log off",
        "instances": instances,
        "variants": {},
    }
    out: dict[str, Any] = result["variants"]
    variants = [v for v in variants if "throughput" in v.sections]
    workdir = ctx.tmpdir / "servers"
    workdir.mkdir(parents=True, exist_ok=True)
    servers: dict[str, _Server] = {}
    try:
        for variant in variants:
            servers[variant.name] = _start(variant, ctx, workdir)
            if not smoke:
                servers[variant.name].twins = [
                    _start(variant, ctx, workdir, k) for k in range(1, instances)
                ]
        for name, server in list(servers.items()):
            entry = out[name] = {"label": server.variant.label, "base": server.variant.base}
            problem = _wait_ready(server) or _smoke(server)
            if problem is not None:
                entry["skipped" if problem.startswith("skip:") else "error"] = problem.removeprefix(
                    "skip:"
                )
                _stop(server)
                del servers[name]
                continue
            for twin in server.twins:
                problem = _wait_ready(twin) or _smoke(twin)
                if problem is not None:
                    entry["error"] = f"a second process of it: {problem}"
                    break
            if "error" in entry:
                _stop(server)
                del servers[name]
                continue
            entry["notes"] = _read_report(server).get("notes", [])
            for process in (server, *server.twins):
                _pin(process.proc.pid, server_cpu)
        for name, server in list(servers.items()):
            try:
                if warmup:
                    for process in (server, *server.twins):
                        _load(loadgen, process.port, warmup, connections, client_cpu)
            except (subprocess.SubprocessError, ValueError) as exc:
                out[name]["error"] = f"warm-up load failed: {exc}"
                _stop(server)
                del servers[name]
        for r in range(rounds if not smoke else 0):
            print(f"  throughput round {r + 1}/{rounds}", file=sys.stderr, flush=True)
            for name in rotated(list(servers), r):
                server = servers.get(name)
                if server is None:
                    continue
                try:
                    server.runs.append(
                        _load(loadgen, server.port, duration, connections, client_cpu)
                    )
                except (subprocess.SubprocessError, ValueError) as exc:
                    out[name]["error"] = f"load round {r + 1} failed: {exc}"
                    _stop(server)
                    del servers[name]
            members = [n for n, s in servers.items() if s.variant.base in servers]
            for name in rotated(members, r):
                # Every pairing of the variant's processes with the bare app's, in turn.
                k = instances
                variant = servers[name].instance(r)
                bare = servers[servers[name].variant.base or ""].instance(r + r // k)
                server = servers[name]
                try:
                    b, v = _load_pair(loadgen, bare, variant, duration, connections, client_cpu)
                except (subprocess.SubprocessError, ValueError) as exc:
                    out[name]["error"] = f"paired load round {r + 1} failed: {exc}"
                    continue
                server.ratios.append(v["rps"] / b["rps"])
                if "cpu_s" in b and "cpu_s" in v and b["cpu_s"] > 0 and v["cpu_s"] > 0:
                    server.capacity.append(
                        (v["requests"] / v["cpu_s"]) / (b["requests"] / b["cpu_s"])
                    )
                server.paired.append({"bare": b, "variant": v})
        if smoke:
            for name, got in _load_all_at_once(loadgen, servers, duration, connections).items():
                if isinstance(got, str):
                    out[name]["error"] = f"load failed: {got}"
                    del servers[name]
                else:
                    servers[name].runs.append(got)
    finally:
        for server in servers.values():
            _stop(server)

    for name, server in servers.items():
        runs = server.runs
        out[name].update(
            {
                "rps": median([x["rps"] for x in runs]),
                "p50_ms": median([x["p50_ms"] for x in runs]),
                "p99_ms": median([x["p99_ms"] for x in runs]),
                "runs": runs,
            }
        )
        if name.startswith("fluxstack"):
            evidence = ctx.tmpdir / name / f"{name}.prom"
            size = evidence.stat().st_size if evidence.exists() else 0
            out[name].setdefault("notes", []).append(f"server's {evidence.name} holds {size} bytes")
    for name, server in servers.items():
        if server.ratios:
            out[name]["ratio_to_base"] = median(server.ratios)
            out[name]["ratio_to_base_per_round"] = server.ratios
        if server.capacity:
            out[name]["capacity_ratio"] = median(server.capacity)
            out[name]["capacity_ratio_per_round"] = server.capacity
        if server.paired:
            out[name]["paired_runs"] = server.paired
    # CPU per request from the paired runs: each variant's own, each bare app's over all its pairs.
    cpu: dict[str, list[float]] = {}
    for name, server in servers.items():
        for pair in server.paired:
            for side, who in (("variant", name), ("bare", server.variant.base or "")):
                run = pair[side]
                if run.get("cpu_s") and run["requests"]:
                    cpu.setdefault(who, []).append(run["cpu_s"] / run["requests"] * 1e6)
    for name, values in cpu.items():
        out[name]["cpu_us_per_request"] = median(values)
    return result
