"""Sections 3 and 4a: scrape cost (render time, size) and memory per series, against
prometheus_client holding the same series.

A "series" here is one HTTP label set (method, route template, status code): what one distinct
kind of request creates. N label sets come from N requests to an app with N/50 routes, each
answering five methods with ten 2xx statuses (a status taken from the query string), so no label
set is an error and the counts stay exact. The package sees them through its middleware, as in
production; the reference is a private prometheus_client ``CollectorRegistry`` holding the same
families the package exposes for them (requests and responses counters, duration and body-size
histograms with the catalogue's buckets), rendered with ``generate_latest``. Both outputs are
checked to hold N ``http_responses_total`` samples.

The package is configured with the Prometheus exporter only and no system metrics, so the render
compares like for like and no periodic exporter runs during the timing. ``_created`` samples are
disabled in prometheus_client (``disable_created_metrics``) since the package emits none.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from _apps import Part, Unavailable, base_config, configure_with_fallback
from _driver import Driver, Request
from _stats import median, quartiles

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
STATUSES = (200, 201, 202, 203, 204, 205, 206, 207, 208, 226)
_PER_ROUTE = len(METHODS) * len(STATUSES)


def label_sets(n: int) -> list[tuple[str, str, int]]:
    """N distinct (method, route, status) label sets over ceil(N/50) routes."""
    out: list[tuple[str, str, int]] = []
    for r in range(-(-n // _PER_ROUTE)):
        for method in METHODS:
            for status in STATUSES:
                out.append((method, f"/s{r}", status))
    return out[:n]


def _catalogue() -> dict[str, Any]:
    """Buckets and help texts from the package's catalogue, when it can be imported."""
    spec: dict[str, Any] = {
        "dur_buckets": (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10),
        "size_buckets": (10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000),
        "help": {},
    }
    try:
        from fluxstack_otel._internal.metrics import catalog as cat
    except ImportError:
        return spec
    spec["dur_buckets"] = cat.DEFAULT_DURATION_BUCKETS
    spec["size_buckets"] = cat.DEFAULT_SIZE_BUCKETS
    spec["help"] = {m.name: m.help for m in cat.HTTP_METRICS}
    return spec


# -- the reference: prometheus_client with the same families -----------------------------------


class PromReference:
    """A private registry holding, for N label sets, the families the package exposes."""

    def __init__(self, sets: list[tuple[str, str, int]]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        spec = _catalogue()

        def help_of(name: str) -> str:
            return str(spec["help"].get(name, name))

        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        mr = ("method", "route")
        mrs = ("method", "route", "status_code")
        requests = Counter("http_requests", help_of("http_requests_total"), mr, registry=r)
        responses = Counter("http_responses", help_of("http_responses_total"), mrs, registry=r)

        def histogram(name: str, labels: tuple[str, ...], buckets: str) -> Any:
            return Histogram(name, help_of(name), labels, buckets=spec[buckets], registry=r)

        duration = histogram("http_request_duration_seconds", mrs, "dur_buckets")
        req_size = histogram("http_request_size_bytes", mr, "size_buckets")
        resp_size = histogram("http_response_size_bytes", mrs, "size_buckets")
        for method, route, status in sets:
            s = str(status)
            requests.labels(method, route).inc()
            responses.labels(method, route, s).inc()
            duration.labels(method, route, s).observe(0.0004)
            req_size.labels(method, route).observe(0)
            resp_size.labels(method, route, s).observe(0)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return bytes(generate_latest(self.registry))

    def close(self) -> None:
        pass


# -- the package, fed through its middleware ------------------------------------------------------


def _series_app(n_routes: int) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request as StarletteRequest
    from starlette.responses import Response
    from starlette.routing import Route

    async def answer(request: StarletteRequest) -> Response:
        return Response(b"", status_code=int(request.query_params["status"]))

    return Starlette(
        routes=[Route(f"/s{r}", answer, methods=list(METHODS)) for r in range(n_routes)]
    )


class PackageSeries:
    """The package (Prometheus exporter only) after N distinct requests through its middleware.

    It runs background threads (periodic collection), unlike the prometheus_client reference.

    Args:
        sets: The label sets to create, one request each.
        app: The bare series app, when built beforehand (the memory section builds it outside
            the traced window so its routes do not count as the package's memory).
    """

    def __init__(self, sets: list[tuple[str, str, int]], app: Any = None) -> None:
        base = base_config(system_metrics=False)
        parts = [
            Part("series cap", "max_series_per_metric", max(2 * len(sets), 2000)),
            # No process-wide state from a harness-internal instance (see _apps.full_config).
            Part("set_global: false", "set_global", False),
        ]
        self.monitoring, self.notes, _ = configure_with_fallback(base, parts)
        self.background = True
        try:
            bare = app if app is not None else self.prepare(sets)
            self.app = self.monitoring.instrument(bare)
            asyncio.run(self._feed(sets))
        except BaseException:
            self.monitoring.shutdown()
            raise
        self._render: Callable[[], bytes]
        if hasattr(self.monitoring, "render_prometheus"):
            self._render = self.monitoring.render_prometheus
            self.how = "Monitoring.render_prometheus()"
        else:
            self._metrics = Driver(self.app, [Request("metrics", "GET", "/metrics", 200)])
            self._render = self._render_via_get
            self.how = "GET /metrics through the in-process driver (no render_prometheus())"

    @staticmethod
    def prepare(sets: list[tuple[str, str, int]]) -> Any:
        return _series_app(-(-len(sets) // _PER_ROUTE))

    async def _feed(self, sets: list[tuple[str, str, int]]) -> None:
        for method, route, status in sets:
            request = Request("s", method, route, status, query=f"status={status}".encode())
            got, _ = await Driver(self.app, [request]).request(0)
            if got != status:
                raise RuntimeError(f"{method} {route} answered {got}, expected {status}")

    def _render_via_get(self) -> bytes:
        async def get() -> bytes:
            status, body = await self._metrics.request(0, keep_body=True)
            if status != 200:
                raise RuntimeError(f"GET /metrics answered {status}")
            return body

        return asyncio.run(get())

    def render(self) -> bytes:
        return self._render()

    def close(self) -> None:
        self.monitoring.shutdown()


def _count_samples(text: bytes, prefix: bytes) -> tuple[int, int]:
    """(sample lines, samples whose line starts with prefix)."""
    samples = 0
    matching = 0
    for line in text.splitlines():
        if line and not line.startswith(b"#"):
            samples += 1
            if line.startswith(prefix):
                matching += 1
    return samples, matching


BUILDERS: dict[str, tuple[str, Callable[[list[tuple[str, str, int]]], Any]]] = {
    "fluxstack": ("fluxstack-otel render", PackageSeries),
    "prometheus_client": ("prometheus_client generate_latest", PromReference),
}


def run_scrape(sizes: list[int], *, rounds: int, budget_s: float) -> dict[str, Any]:
    """Render time and size per series count, the two renderers interleaved per round."""
    from prometheus_client import disable_created_metrics

    disable_created_metrics()
    result: dict[str, Any] = {"rounds": rounds, "sizes": {}}
    for n in sizes:
        print(f"  scrape: {n} series", file=sys.stderr, flush=True)
        sets = label_sets(n)
        entry: dict[str, Any] = {}
        result["sizes"][str(n)] = entry
        built: dict[str, Any] = {}
        for key, (label, factory) in BUILDERS.items():
            row = entry[key] = {"label": label}
            obj = _attempt(row, factory, sets)
            if obj is None:
                continue
            built[key] = obj
            row["notes"] = list(getattr(built[key], "notes", []))
            if hasattr(built[key], "how"):
                row["notes"].append(built[key].how)
        try:
            _time_renders(n, built, entry, rounds, budget_s)
        finally:
            for obj in built.values():
                obj.close()
        if "ms" in entry.get("fluxstack", {}) and "ms" in entry.get("prometheus_client", {}):
            ratios = [
                a / b
                for a, b in zip(
                    entry["fluxstack"]["ms_per_round"],
                    entry["prometheus_client"]["ms_per_round"],
                    strict=False,
                )
            ]
            entry["fluxstack"]["ratio_to_prometheus_client"] = median(ratios)
            entry["fluxstack"]["ratio_per_round"] = ratios
    return result


def _time_renders(
    n: int, built: dict[str, Any], entry: dict[str, Any], rounds: int, budget_s: float
) -> None:
    reps: dict[str, int] = {}
    for key, obj in built.items():
        t0 = time.perf_counter()
        body = obj.render()
        first = time.perf_counter() - t0
        # Small renders are repeated within a round so the clock's resolution does not matter.
        reps[key] = max(1, min(200, int(budget_s / max(first, 1e-6))))
        samples, responses = _count_samples(body, b"http_responses_total{")
        entry[key].update({"bytes": len(body), "samples": samples, "responses_series": responses})
        if responses != n:
            entry[key].setdefault("notes", []).append(
                f"expected {n} http_responses_total series, found {responses}"
            )
        entry[key]["ms_per_round"] = []
    keys = list(built)
    for r in range(rounds):
        for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
            obj = built[key]
            gc.collect()
            t0 = time.perf_counter_ns()
            for _ in range(reps[key]):
                obj.render()
            entry[key]["ms_per_round"].append((time.perf_counter_ns() - t0) / reps[key] / 1e6)
    for key in keys:
        times = entry[key]["ms_per_round"]
        entry[key]["ms"] = median(times)
        entry[key]["ms_q1_q3"] = list(quartiles(times))
        entry[key]["renders_per_round"] = reps[key]


def run_memory(sizes: tuple[int, int], window_s: float = 2.5) -> dict[str, Any]:
    """Bytes per series: the slope of traced memory between two series counts (tracemalloc).

    What is measured is the memory a holder retains for its series: after one render (buffers
    drained on collection, such as pending records, are not series); for a holder with
    background threads, as the minimum of samples over ``window_s``, so a collection a thread
    happens to have in flight (transient working memory) is not counted.
    """
    small, large = sizes
    result: dict[str, Any] = {"sizes": [small, large], "method": "tracemalloc slope", "rows": {}}
    for key, (label, factory) in BUILDERS.items():
        row = result["rows"][key] = {"label": label.split(" ")[0]}
        traced = _attempt(row, _traced_builds, factory, sizes, window_s)
        if traced is None:
            continue
        row["traced_bytes"] = {str(n): b for n, b in traced.items()}
        row["bytes_per_series"] = (traced[large] - traced[small]) / (large - small)
    return result


def _attempt(row: dict[str, Any], build: Callable[..., Any], *args: Any) -> Any:
    """``build(*args)``, or None with why in ``row``: skipped (not available here) or error."""
    try:
        return build(*args)
    except Unavailable as exc:
        row["skipped"] = str(exc)
    except Exception as exc:
        row["error"] = f"{type(exc).__name__}: {exc}"
    return None


def _traced_builds(factory: Any, sizes: tuple[int, int], window_s: float) -> dict[int, int]:
    factory(label_sets(10)).close()  # imports and one-time caches outside the measurement
    return {n: _traced_build(factory, n, window_s) for n in sizes}


def _traced_build(factory: Any, n: int, window_s: float) -> int:
    sets = label_sets(n)
    prepare = getattr(factory, "prepare", None)
    extra = {"app": prepare(sets)} if prepare is not None else {}
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        obj = factory(sets, **extra)
        obj.render()
        samples = []
        deadline = time.monotonic() + (window_s if getattr(obj, "background", False) else 0.0)
        while True:
            gc.collect()
            samples.append(tracemalloc.get_traced_memory()[0])
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        after = min(samples)
    finally:
        tracemalloc.stop()
    obj.close()
    return after - before
