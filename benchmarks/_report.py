"""The report: machine and versions, one table per section, and the targets (PASS/MISS)."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from _stats import fmt, sign_test, table

REPO = Path(__file__).resolve().parent.parent
KEY_PACKAGES = (
    "starlette",
    "fastapi",
    "uvicorn",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation-asgi",
    "prometheus-client",
    "prometheus-fastapi-instrumentator",
    "starlette-exporter",
    "httpx",
)


# -- environment --------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _run(cmd: list[str]) -> str:
    try:
        env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # never take the index lock
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, env=env, cwd=REPO)
    except (OSError, subprocess.SubprocessError):
        return ""
    return (done.stdout or done.stderr).strip()


def environment() -> dict[str, Any]:
    """Machine, interpreter, every installed distribution and the tools the run used."""
    versions = {
        d.metadata["Name"].lower().replace("_", "-"): d.version
        for d in importlib.metadata.distributions()
        if d.metadata["Name"]
    }
    try:
        import fluxstack_otel

        package = {
            "version": getattr(fluxstack_otel, "__version__", "working tree"),
            "path": str(Path(fluxstack_otel.__file__).parent),
        }
    except ImportError as exc:
        package = {"unavailable": str(exc)}
    wrk = shutil.which("wrk")
    return {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "python_build": sys.version,
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)),
        "loadavg_at_start": os.getloadavg(),
        "wrk": _run([wrk, "-v"]).splitlines()[0] if wrk else None,
        "taskset": shutil.which("taskset"),
        "git_commit": _run(["git", "rev-parse", "HEAD"]),
        "src_uncommitted_changes": bool(_run(["git", "status", "--porcelain", "--", "src"])),
        "fluxstack_otel": package,
        "packages": dict(sorted(versions.items(), key=lambda kv: kv[0].lower())),
    }


def header(env: dict[str, Any]) -> str:
    pkgs = {k.lower(): v for k, v in env["packages"].items()}
    versions = ", ".join(f"{p} {pkgs.get(p, 'missing')}" for p in KEY_PACKAGES)
    pkg = env["fluxstack_otel"]
    ours = pkg.get("version", pkg.get("unavailable"))
    dirty = " (src has uncommitted changes)" if env["src_uncommitted_changes"] else ""
    return "\n".join(
        [
            f"Python {env['python']} ({env['implementation']}) on {env['platform']}",
            f"CPU: {env['cpu_model']}, {env['cpu_count']} cores ({env['cpus_available']} usable), "
            f"load {' '.join(f'{x:.2f}' for x in env['loadavg_at_start'])}",
            f"fluxstack-otel: {ours} @ {env['git_commit'][:12]}{dirty}",
            f"Peers: {versions}",
            f"wrk: {env['wrk'] or 'not installed'}; taskset: {env['taskset'] or 'not installed'}",
        ]
    )


# -- sections -----------------------------------------------------------------------------------


def _trailer(variants: dict[str, Any]) -> list[str]:
    lines = []
    for entry in variants.values():
        for key in ("skipped", "error"):
            if key in entry:
                lines.append(f"  {entry['label']}: {'SKIPPED' if key == 'skipped' else 'ERROR'}: "
                             f"{entry[key]}")  # fmt: skip
        lines += [f"  {entry['label']}: {note}" for note in entry.get("notes", [])]
    return lines


def _versus(per_round: float | None, of_medians: float | None) -> str:
    """The per-round ratio to the reference, the ratio of medians in brackets; blank if unknown."""
    if per_round is None and of_medians is None:
        return ""
    first, second = (("-" if v is None else f"{v:.2f}x") for v in (per_round, of_medians))
    return f"{first} ({second})"


def inproc(res: dict[str, Any]) -> str:
    rows = []
    for entry in res["variants"].values():
        if "us_per_request" not in entry:
            continue
        q1, q3 = entry["us_q1_q3"]
        row = [entry["label"], fmt(entry["us_per_request"], ".2f"), f"{q1:.1f}-{q3:.1f}"]
        if "overhead_us" in entry:
            o1, o3 = entry["overhead_us_q1_q3"]
            per_round, of_medians = entry.get("vs_reference"), entry.get("vs_reference_of_medians")
            row += [
                fmt(entry["overhead_us"], ".2f", sign=True),
                f"{o1:+.1f}..{o3:+.1f}",
                fmt(entry["ratio_to_base"], ".2f") + "x",
                _versus(per_round, of_medians),
                fmt(entry["wall_overhead_us"], ".2f", sign=True),
                entry["base"],
            ]
        else:
            row += ["", "", "", "", "", ""]
        rows.append(row)
    title = (
        f"1. In-process ASGI, CPU µs per request (the serving thread's clock): median of "
        f"{res['rounds']} rounds, one batch of "
        + (f"~{res['slice_ms']:g} ms" if res["slice_ms"] else "one pass of the mix")
        + f" per variant per round (mix: {'; '.join(res['requests'])}); GC {res['gc']}"
    )
    heads = ["variant", "µs/req", "IQR", "overhead µs", "IQR", "x base",
             "vs hand-written (per round)", "wall overhead µs", "base"]  # fmt: skip
    return "\n".join([title, table(heads, rows), *_trailer(res["variants"])])


def icount(res: dict[str, Any]) -> str:
    title = (
        f"1b. Instructions per request (valgrind callgrind, deterministic): {res['requests']} "
        f"requests of the mix after {res['warmup']} warm-up, minus the same run without them"
    )
    if "skipped" in res:
        return f"{title}\n  skipped: {res['skipped']}"
    variants = res["variants"]
    # Each row beside the reference and the floor on its own app (the wide rows: 64 routes).
    hand = {
        base: variants.get(ref, {}).get("overhead")
        for base, ref in (("starlette", "handwritten"), ("starlette-wide", "handwritten-wide"))
    }
    floor = variants.get("passthrough", {}).get("overhead")
    rows = []
    for name, entry in variants.items():
        if "instructions_per_request" not in entry:
            continue
        overhead, base = entry.get("overhead"), entry.get("base")
        reference = hand.get(base)
        versus = f"{overhead / reference:.2f}x" if overhead is not None and reference else ""
        above = (
            ""
            if overhead is None or floor is None or base != "starlette"
            else fmt(overhead - floor, ",.0f", sign=True)
        )
        rows.append([
            name,
            fmt(entry["instructions_per_request"], ",.0f"),
            "" if overhead is None else fmt(overhead, ",.0f", sign=True),
            versus,
            above,
        ])  # fmt: skip
    errors = [f"  {name}: ERROR {e['error']}" for name, e in variants.items() if "error" in e]
    heads = ["variant", "instr/req", "over its bare app", "vs hand-written", "over pass-through"]
    return "\n".join([title, table(heads, rows), *errors])


def throughput(res: dict[str, Any]) -> str:
    rows = []
    for entry in res["variants"].values():
        if "rps" not in entry:
            continue
        ratio = entry.get("ratio_to_base")
        per_round = entry.get("ratio_to_base_per_round", [])
        capacity = entry.get("capacity_ratio")
        cpu = entry.get("cpu_us_per_request")
        rows.append(
            [
                entry["label"],
                fmt(entry["rps"], ".0f"),
                fmt(ratio, ".3f") if ratio is not None else "",
                " ".join(f"{r:.2f}" for r in per_round),
                fmt(cpu, ".1f") if cpu is not None else "",
                fmt(capacity, ".3f") if capacity is not None else "",
                " ".join(f"{r:.2f}" for r in entry.get("capacity_ratio_per_round", [])),
                fmt(entry["p50_ms"], ".2f"),
                fmt(entry["p99_ms"], ".2f"),
            ]
        )
    rounds = res["rounds"]
    how = f"median of {rounds} rounds" if isinstance(rounds, int) else rounds
    title = f"2. Throughput under uvicorn, {how} ({res['command']}; {res['pinning']})"
    heads = ["variant", "req/s", "paired ratio", "per round", "cpu µs/req", "capacity",
             "per round", "p50 ms", "p99 ms"]  # fmt: skip
    note = ["  req/s, p50, p99: solo runs. paired ratio: requests/s beside the bare app, both "
            "loaded at once on one core; capacity: requests per CPU-second over the bare app's "
            "in those runs (the targets' figure)"]  # fmt: skip
    warn = []
    if res["loadgen"] != "wrk":
        warn = ["  load generator: httpx (wrk not installed); a Python client is usually the "
                "bottleneck, so ratios understate the differences between variants"]  # fmt: skip
    return "\n".join([title, table(heads, rows), *note, *warn, *_trailer(res["variants"])])


def scrape(res: dict[str, Any]) -> str:
    rows = []
    trailer: list[str] = []
    for n, entry in res["sizes"].items():
        for row in entry.values():
            if "ms" in row:
                ratio = row.get("ratio_to_prometheus_client")
                rows.append(
                    [
                        f"{int(n):,} series",
                        row["label"],
                        fmt(row["ms"], ".2f"),
                        f"{row['bytes'] / 1024:,.0f}",
                        f"{row['samples']:,}",
                        fmt(ratio, ".2f") + "x" if ratio is not None else "",
                    ]
                )
        trailer += [f"  {n} series: {line.strip()}" for line in _trailer(entry)]
    title = f"3. Scrape: render time (median of {res['rounds']} rounds) and size"
    heads = ["series", "renderer", "ms", "KiB", "samples", "vs prom"]
    return "\n".join([title, table(heads, rows), *sorted(set(trailer))])


def memory(res: dict[str, Any]) -> str:
    small, large = res["sizes"]
    rows = []
    for row in res["rows"].values():
        if "bytes_per_series" in row:
            traced = row["traced_bytes"]
            rows.append(
                [
                    row["label"],
                    f"{row['bytes_per_series']:,.0f}",
                    f"{traced[str(small)] / 1024:,.0f}",
                    f"{traced[str(large)] / 1024:,.0f}",
                ]
            )
    title = f"4a. Memory per series (label set): tracemalloc slope between {small:,} and {large:,}"
    heads = ["holder", "bytes/series", f"KiB @{small:,}", f"KiB @{large:,}"]
    return "\n".join([title, table(heads, rows), *_trailer(res["rows"])])


def startup(res: dict[str, Any]) -> str:
    rows = []
    for row in res["rows"].values():
        if "ms" in row:
            q1, q3 = row["ms_q1_q3"]
            rows.append([row["label"], fmt(row["ms"], ".1f"), f"{q1:.0f}-{q3:.0f}"])
    title = f"4b. Import + configure, fresh interpreter, median of {res['rounds']} runs"
    return "\n".join([title, table(["what", "ms", "IQR"], rows), *_trailer(res["rows"])])


# -- targets ------------------------------------------------------------------------------------


def _target(name: str, ok: bool | None, detail: str) -> dict[str, Any]:
    status = "N/A" if ok is None else ("PASS" if ok else "MISS")
    return {"target": name, "status": status, "detail": detail}


# The request-path budget: the package's overhead over bare Starlette as a share of the
# hand-written reference's, per configuration (the default one, and everything on).
BUDGET = (("fluxstack-default", "default config", 0.7), ("fluxstack", "everything on", 0.8))


def targets(sections: dict[str, Any]) -> list[dict[str, Any]]:
    """Evaluate the overhead budget against what this run measured."""
    out = []
    counted = sections.get("icount", {}).get("variants", {})
    v = sections.get("inproc", {}).get("variants", {})
    for variant, what, share in BUDGET:
        out.append(_counted_target(counted, variant, what, share))
        out.append(_timed_target(v, variant, what, share))
    ours, otel = v.get("fluxstack", {}), v.get("otel", {})
    name = "in-process overhead >= 30x below OpenTelemetry ASGI"
    if "overhead_us" in ours and "overhead_us" in otel:
        mine, theirs = ours["overhead_us"], otel["overhead_us"]
        if mine <= 0:
            out.append(_target(name, True, f"{mine:+.2f} µs: below the noise; OTel {theirs:+.1f}"))
        else:
            out.append(_target(name, theirs / mine >= 30, f"{theirs / mine:.1f}x "
                               f"({mine:+.2f} µs vs {theirs:+.1f} µs)"))  # fmt: skip
    else:
        out.append(_target(name, None, _why_not(ours, otel)))

    served = sections.get("throughput", {}).get("variants", {})
    for variant, what, floor in (("fluxstack-default", "default config", 0.97),
                                 ("fluxstack", "everything on", 0.95)):  # fmt: skip
        t = served.get(variant, {})
        name = f"throughput, {what}, >= {floor:.2f} x bare Starlette"
        if "capacity_ratio" in t:
            per = t["capacity_ratio_per_round"]
            out.append(_target(name, t["capacity_ratio"] >= floor, f"median capacity ratio "
                               f"{t['capacity_ratio']:.3f}; rounds: {' '.join(f'{r:.3f}' for r in per)}"))  # fmt: skip
        else:
            out.append(_target(name, None, _why_not(t)))

    s = sections.get("scrape", {}).get("sizes", {}).get("10000", {})
    name = "scrape of 10,000 series no slower than prometheus_client"
    ours_s, ref = s.get("fluxstack", {}), s.get("prometheus_client", {})
    if "ms" in ours_s and "ms" in ref:
        out.append(_target(name, ours_s["ms"] <= ref["ms"],
                           f"{ours_s['ms']:.0f} ms vs {ref['ms']:.0f} ms "
                           f"({ours_s['ms'] / ref['ms']:.2f}x)"))  # fmt: skip
    elif s:
        out.append(_target(name, None, _why_not(ours_s, ref)))
    else:
        out.append(_target(name, None, "10,000 series not measured in this run"))

    st = sections.get("startup", {}).get("rows", {}).get("fluxstack", {})
    name = "import + configure_monitoring() < 150 ms"
    if "ms" in st:
        out.append(_target(name, st["ms"] < 150, f"{st['ms']:.0f} ms"))
    else:
        out.append(_target(name, None, _why_not(st)))
    return out


def _counted_target(
    variants: dict[str, Any], variant: str, what: str, share: float
) -> dict[str, Any]:
    """Instructions per request over bare Starlette, against ``share`` of the reference's."""
    name = f"instructions, {what}: overhead <= {share:.1f}x the hand-written reference's"
    ours, hand = variants.get(variant, {}), variants.get("handwritten", {})
    if "overhead" not in ours or "overhead" not in hand:
        return _target(name, None, _why_not(ours, hand) if ours or hand else
                       "not counted in this run")  # fmt: skip
    ratio = ours["overhead"] / hand["overhead"]
    return _target(name, ratio <= share, f"{ratio:.2f}x ({ours['overhead']:+,.0f} vs "
                   f"{hand['overhead']:+,.0f} instructions per request)")  # fmt: skip


def _timed_target(
    variants: dict[str, Any], variant: str, what: str, share: float
) -> dict[str, Any]:
    """Paired CPU time over bare Starlette, against ``share`` of the reference's, same rounds."""
    name = f"in-process overhead, {what}: <= {share:.1f}x the hand-written reference's"
    ours, hand = variants.get(variant, {}), variants.get("handwritten", {})
    if "overhead_us" not in ours or "overhead_us" not in hand:
        return _target(name, None, _why_not(ours, hand))
    pairs = list(zip(ours["overhead_us_per_round"], hand["overhead_us_per_round"], strict=False))
    wins = sum(a <= share * b for a, b in pairs)
    p = sign_test(wins, len(pairs))
    verdict = "a tie within the noise" if p > 0.05 else "a real difference"
    ratio = ours["overhead_us"] / hand["overhead_us"] if hand["overhead_us"] > 0 else float("nan")
    return _target(name, ours["overhead_us"] <= share * hand["overhead_us"],
                   f"{ratio:.2f}x ({ours['overhead_us']:+.2f} µs vs {hand['overhead_us']:+.2f} "
                   f"µs); within the share in {wins}/{len(pairs)} rounds (sign test p={p:.2f}: "
                   f"{verdict})")  # fmt: skip


def _why_not(*entries: dict[str, Any]) -> str:
    for entry in entries:
        for key in ("skipped", "error"):
            if key in entry:
                return f"{entry.get('label', '')}: {entry[key]}"
    return "not measured in this run"


def targets_text(rows: list[dict[str, Any]], quick: bool) -> str:
    title = "Targets" + (" (quick run: smoke figures, not a measurement)" if quick else "")
    lines = [f"  {r['status']:<4}  {r['target']}: {r['detail']}" for r in rows]
    return "\n".join([title, *lines])
