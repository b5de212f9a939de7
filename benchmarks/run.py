"""Measure fluxstack-otel's overhead against its peers, side by side, in one run.

    .venv/bin/python benchmarks/run.py [--quick] [--rounds N] [--only SECTION[,SECTION]]
                                       [--json PATH] [--variants NAME[,NAME]] [--loadgen KIND]

Sections (all by default): inproc (ASGI overhead per request, no sockets), throughput (uvicorn +
wrk), scrape (render time and size at 100/1,000/10,000 series), memory (bytes per series), startup
(import + configure). Variants run interleaved, in an order rotated per round; the report gives
medians and per-round ratios. See docs/performance.md for how to read it.

Exit status: 1 if a variant that could be built failed (a wrong status, a crash), 0 otherwise;
targets never fail the run unless ``--fail-on-miss`` is given (these machines are noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Measure the working tree's package, whatever is installed.
sys.path[:0] = [str(HERE.parent / "src"), str(HERE)]

import _report  # noqa: E402
from _apps import BY_NAME, VARIANTS, Context, Variant  # noqa: E402
from _sink import OtlpSink  # noqa: E402

SECTIONS = ("inproc", "icount", "throughput", "scrape", "memory", "startup")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """Per-section rounds and sizes: full run (~4 min here) or --quick smoke (seconds)."""
    if args.quick:
        s: dict[str, Any] = {
            "inproc": {"rounds": 1, "slice_ms": 0.0, "warmup": 8},
            "icount": {"requests": 64, "warmup": 64, "quick": True},
            "throughput": {
                "rounds": 1,
                "duration": 1,
                "warmup": 0,
                "connections": 4,
                "smoke": True,
            },
            "scrape": {"rounds": 1, "sizes": [100], "budget_s": 0.0},
            "memory": {"sizes": (50, 100), "window_s": 0.0},
            "startup": {"rounds": 1, "warm": False},
        }
    else:
        s = {
            "inproc": {"rounds": 200, "slice_ms": 10.0, "warmup": 1000},
            "icount": {"requests": 2048, "warmup": 1024},
            "throughput": {"rounds": 18, "duration": 1, "warmup": 1, "connections": 16},
            "scrape": {"rounds": 3, "sizes": [100, 1_000, 10_000], "budget_s": 0.05},
            "memory": {"sizes": (1_000, 10_000), "window_s": 2.5},
            "startup": {"rounds": 15},
        }
    if args.rounds is not None:
        for name in ("inproc", "throughput", "scrape", "startup"):
            s[name]["rounds"] = args.rounds
    if args.duration is not None:
        s["throughput"]["duration"] = args.duration
    return s


def _variants(names: str | None) -> list[Variant]:
    if not names:
        return list(VARIANTS)
    wanted = {n.strip() for n in names.split(",") if n.strip()}
    unknown = wanted - {v.name for v in VARIANTS}
    if unknown:
        raise SystemExit(
            f"unknown variant(s) {sorted(unknown)}; known: {[v.name for v in VARIANTS]}"
        )
    # An instrumented variant is always measured against its bare app.
    wanted |= {BY_NAME[n].base for n in wanted if BY_NAME[n].base}  # type: ignore[misc]
    return [v for v in VARIANTS if v.name in wanted]


def _sections(only: str | None) -> list[str]:
    if not only:
        return list(SECTIONS)
    chosen = [s.strip() for s in only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown section(s) {unknown}; known: {list(SECTIONS)}")
    return [s for s in SECTIONS if s in chosen]


def _cpu_snapshot() -> tuple[float, float, float] | None:
    """(machine busy CPU seconds, this run's own CPU seconds incl. children, wall clock)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    t = os.times()
    return busy, t.user + t.system + t.children_user + t.children_system, time.monotonic()


def _other_cpu_share(
    before: tuple[float, float, float] | None, after: tuple[float, float, float] | None
) -> float | None:
    """Share of the machine's CPU used by other processes (and the hypervisor) in between."""
    if before is None or after is None or after[2] <= before[2]:
        return None
    other = (after[0] - before[0]) - (after[1] - before[1])
    return max(0.0, other / ((after[2] - before[2]) * (os.cpu_count() or 1)))


def _has_errors(section: dict[str, Any]) -> bool:
    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            return "error" in node or any(walk(v) for v in node.values())
        return False

    return walk(section)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="fluxstack-otel overhead benchmarks, against the peers, in one run."
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: proves every variant runs")
    parser.add_argument("--rounds", type=int, help="rounds for every section (default per section)")
    parser.add_argument("--only", help=f"comma-separated sections among {', '.join(SECTIONS)}")
    parser.add_argument("--json", type=Path, help="write the full results to this file")
    parser.add_argument("--variants", help="comma-separated variants (bare apps added as needed)")
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "httpx"),
        default="auto",
        help="throughput load generator (auto: wrk when installed, else httpx)",
    )
    parser.add_argument("--duration", type=int, help="seconds of load per throughput round")
    parser.add_argument(
        "--gc-off", action="store_true", help="disable GC inside in-process batches"
    )
    parser.add_argument(
        "--fail-on-miss", action="store_true", help="exit 2 when a target is missed"
    )
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")

    import _throughput

    settings = _settings(args)
    sections = _sections(args.only)
    variants = _variants(args.variants)
    loadgen = _throughput.choose_loadgen(args.loadgen) if "throughput" in sections else None
    env = _report.environment()
    print(_report.header(env), flush=True)

    sink = OtlpSink().start()
    ctx = Context(otlp_endpoint=sink.endpoint, sink=sink)
    results: dict[str, Any] = {
        "environment": env,
        "mode": "quick" if args.quick else "full",
        "settings": settings,
        "sections": {},
    }
    out = results["sections"]
    started = time.perf_counter()
    try:
        for name in sections:
            print(f"\n[{name}] running...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            cpu0 = _cpu_snapshot()
            out[name] = _run_section(name, settings[name], variants, ctx, args, loadgen)
            out[name]["seconds"] = round(time.perf_counter() - t0, 1)
            other = _other_cpu_share(cpu0, _cpu_snapshot())
            out[name]["other_processes_cpu_share"] = other
            print("\n" + getattr(_report, name)(out[name]), flush=True)
            if other is not None and other > 0.10 and not args.quick:
                print(f"  Other processes used {other:.0%} of the machine's CPU during this "
                      "section: expect noisy figures.", flush=True)  # fmt: skip
    finally:
        sink.stop()
        shutil.rmtree(ctx.tmpdir, ignore_errors=True)
    results["otlp_sink"] = {"posts": sink.posts, "bytes": sink.bytes_received}
    results["targets"] = _report.targets(out)
    results["seconds"] = round(time.perf_counter() - started, 1)
    print("\n" + _report.targets_text(results["targets"], args.quick))
    print(f"\nTotal {results['seconds']:.0f} s.")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"Results written to {args.json}")
    if any(_has_errors(s) for s in out.values()):
        print("Some variants FAILED (see ERROR lines above).", file=sys.stderr)
        return 1
    if args.fail_on_miss and any(t["status"] == "MISS" for t in results["targets"]):
        return 2
    return 0


def _run_section(
    name: str,
    s: dict[str, Any],
    variants: list[Variant],
    ctx: Context,
    args: argparse.Namespace,
    loadgen: str | None,
) -> dict[str, Any]:
    if name == "inproc":
        import _inproc

        return _inproc.run(variants, ctx, gc_off=args.gc_off, **s)
    if name == "icount":
        import _icount

        return _icount.run(variants, ctx, **s)
    if name == "throughput":
        import _throughput

        return _throughput.run(variants, ctx, loadgen=loadgen or "httpx", **s)
    if name == "scrape":
        import _scrape

        return _scrape.run_scrape(**s)
    if name == "memory":
        import _scrape

        return _scrape.run_memory(**s)
    import _startup

    return _startup.run(**s)


if __name__ == "__main__":
    sys.exit(main())
