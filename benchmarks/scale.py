"""The stream at scale: background CPU of the periodic sinks, shared against per-sink collection.

    .venv/bin/python benchmarks/scale.py [--series N,N] [--interval S] [--ticks N] [--json PATH]

For each size, one monitoring holds N HTTP label sets (fed through its middleware, as in
``_scrape.py``) with the Prometheus, console, JSON (file push) and file exporters, all on one
``collect_interval``, and nothing else happening: an idle server. Two modes run side by side in
one process, in an order rotated per size:

- ``shared``: as shipped, the sinks that fall due together read one collection (``Round``);
- ``per-sink``: ``Round.share`` patched to make the value for every caller, which is how every
  sink collected before the shared round.

Each mode is measured over ``ticks`` intervals as the process's CPU seconds over wall seconds
(percent of one core), with the per-tick cost of one alert evaluation of the default rules
(``evaluate_now``, CPU time) beside it, and the CPU of one ``/metrics`` body rendered afresh
against one that reuses the HTTP scope's text (``sinks/prometheus/reuse.py``). Console output goes to a logger that drops it, so the
figure is the sinks' work, not a terminal's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE)]

from _driver import Driver, Request  # noqa: E402
from _scale_render import p99_section, render_section  # noqa: E402
from _scrape import _series_app, label_sets  # noqa: E402
from fluxstack_otel import configure_monitoring  # noqa: E402
from fluxstack_otel._internal.runtime import scheduler  # noqa: E402
from fluxstack_otel._internal.runtime import tick as tick_module  # noqa: E402

MODES = ("shared", "per-sink")


def _monitoring(n: int, interval: float, directory: Path) -> Any:
    return configure_monitoring(
        {
            "service_name": "bench",
            "set_global": False,
            "max_series_per_metric": max(2 * n, 2000),
            "collect_interval": interval,
            "exporters": [
                {"type": "prometheus", "endpoint": "/metrics"},
                {"type": "console", "stream": "log"},
                {
                    "type": "json",
                    "endpoint": "/metrics.json",
                    "file_path": str(directory / "m.json"),
                },
                {"type": "file", "file_path": str(directory / "metrics.prom")},
            ],
        }
    )


async def _feed(app: Any, n: int) -> None:
    for method, route, status in label_sets(n):
        request = Request("s", method, route, status, query=f"status={status}".encode())
        got, _ = await Driver(app, [request]).request(0)
        if got != status:
            raise RuntimeError(f"{method} {route} answered {got}, expected {status}")


def _idle(mode: str, n: int, interval: float, ticks: int, directory: Path) -> dict[str, float]:
    shared = tick_module.Round.share
    if mode == "per-sink":
        tick_module.Round.share = lambda self, key, make: make()  # type: ignore[method-assign]
    try:
        monitoring = _monitoring(n, interval, directory)
        try:
            app = monitoring.instrument(_series_app(-(-n // 50)))
            asyncio.run(_feed(app, n))
            _settle(interval)
            cpu, wall = time.process_time(), time.monotonic()
            time.sleep(ticks * interval)
            percent = 100 * (time.process_time() - cpu) / (time.monotonic() - wall)
            scrape = _scrape_ms(monitoring)
            alerts = monitoring._p.alerts
            started = time.thread_time()  # this thread's CPU: a sink's tick may run meanwhile
            alerts.evaluate_now()
            alert_ms = (time.thread_time() - started) * 1000
        finally:
            monitoring.shutdown()
    finally:
        tick_module.Round.share = shared  # type: ignore[method-assign]
    return {"idle_cpu_percent": percent, "alert_evaluation_cpu_ms": alert_ms, **scrape}


def _settle(interval: float) -> None:
    """Wait until every job of the interval has run twice since the traffic: the first run may
    have started during it, the second is the one that encodes the last requests afresh."""
    jobs = [j for j in scheduler.default_scheduler().jobs if j.interval == interval]
    due = {j: j.runs + 2 for j in jobs}
    deadline = time.monotonic() + 4 * interval
    while any(j.runs < n for j, n in due.items()) and time.monotonic() < deadline:
        time.sleep(0.05)


def _scrape_ms(monitoring: Any) -> dict[str, float]:
    """CPU ms of a /metrics body rendered afresh, and of one reusing the HTTP scope's text."""
    endpoint = next(s for s in monitoring._sinks if type(s).__name__ == "PrometheusSink")._endpoint
    endpoint.respond(None, None)  # keeps the HTTP scope's text: nothing moves until the next
    out = {}
    for name, render in (
        ("scrape_fresh_cpu_ms", monitoring.render_prometheus),
        ("scrape_reused_cpu_ms", lambda: endpoint.respond(None, None)),
    ):
        started = time.thread_time()
        render()
        out[name] = (time.thread_time() - started) * 1000
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", default="1000,10000", help="comma-separated label-set counts")
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--ticks", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--sections", default="idle,render,p99", help="among idle, render, p99 (_scale_render.py)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="render rounds per size")
    parser.add_argument("--p99-series", type=int, default=10000)
    parser.add_argument("--p99-seconds", type=float, default=20.0)
    parser.add_argument("--scrape-every", type=float, default=2.0)
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    quiet = logging.getLogger("fluxstack_otel")
    quiet.setLevel(logging.WARNING)  # the console sink still formats every snapshot
    quiet.propagate = False
    scratch = tempfile.TemporaryDirectory(prefix="fluxstack-scale-")
    directory = Path(scratch.name)
    sizes = [int(s) for s in args.series.split(",")]
    result: dict[str, Any] = {
        "python": sys.version.split()[0],
        "interval": args.interval,
        "ticks": args.ticks,
        "sizes": {},
    }
    for i, n in enumerate(sizes if "idle" in sections else []):
        order = MODES[i % 2 :] + MODES[: i % 2]
        figures = {m: _idle(m, n, args.interval, args.ticks, directory) for m in order}
        result["sizes"][n] = figures
        shared, alone = figures["shared"], figures["per-sink"]
        print(
            f"{n:>7} label sets: idle CPU shared {shared['idle_cpu_percent']:5.1f}% vs per-sink "
            f"{alone['idle_cpu_percent']:5.1f}% of a core (ratio "
            f"{shared['idle_cpu_percent'] / max(alone['idle_cpu_percent'], 1e-9):.2f}); "
            f"alert evaluation {shared['alert_evaluation_cpu_ms']:.0f} ms CPU; scrape "
            f"{shared['scrape_fresh_cpu_ms']:.0f} ms fresh, {shared['scrape_reused_cpu_ms']:.1f} ms "
            "reusing the HTTP text"
        )
    scratch.cleanup()
    if "render" in sections:
        result["render"] = render_section(sizes, args.rounds)
        for n, row in result["render"].items():
            print(
                f"{int(n):>7} label sets: fresh render {row['render_cpu_ms']:.0f} ms CPU vs "
                f"prometheus_client {row['prometheus_client_cpu_ms']:.0f} ms "
                f"({row['ratio']:.3f}x, {row['us_per_label_set']:.1f} us per label set); RSS "
                f"{row['rss_series_bytes'] / 1e6:.1f} MB for the series, "
                f"+{row['rss_growth_after_first_scrape_bytes'] / 1e6:.1f} MB after a first "
                f"scrape ({row['rss_growth_ratio'] or 0:.2f}x); alert evaluation "
                f"{row['alert_evaluation_cpu_ms']:.1f} ms CPU; streamed scrape "
                f"{row['streamed_cpu_ms']:.0f} ms CPU ({row['streamed_ratio']:.3f}x), "
                f"+{row['rss_growth_after_first_streamed_scrape_bytes'] / 1e6:.1f} MB after the "
                f"first ({row['streamed_rss_growth_ratio'] or 0:.2f}x); idle gzip scrape "
                f"{row['idle_gzip_scrape_cpu_ms']:.1f} ms CPU"
            )
    if "p99" in sections:
        p99 = result["p99"] = p99_section(args.p99_series, args.p99_seconds, args.scrape_every)
        calm, busy = p99["without scrapes"], p99["with scrapes"]
        print(
            f"{args.p99_series:>7} label sets: request p99 {calm['p99_ms']:.2f} ms without "
            f"scrapes, {busy['p99_ms']:.2f} ms with a scrape every {args.scrape_every:g} s "
            f"({p99['scrapes']} scrapes, {p99['scrape_seconds_median'] or 0:.2f} s each at the "
            f"median under the load; {p99['p99_ratio']:.2f}x); p50 {calm['p50_ms']:.3f} / "
            f"{busy['p50_ms']:.3f} ms"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
