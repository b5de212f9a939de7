"""Section 1: in-process ASGI overhead per request, every variant interleaved in one event loop.

Each round runs one short batch of the request mix per variant (about ``slice_ms`` long: the
batch size is set per variant from its warm-up speed, a multiple of the mix), in an order rotated
per round. Short slices keep a variant and its bare app within a few tens of milliseconds of each
other, so the machine's slow spells hit both. The figure per variant is the median over rounds of
(batch time / batch size); the overhead of an instrumented variant is the median over rounds of
its time minus its bare app's time in the same round.

The clock is the serving thread's CPU time (``time.thread_time_ns``, read twice per batch), so
time the thread spends descheduled by the machine's other load does not count; the wall-clock time
of each batch is kept beside it (``wall_us_per_request``). A variant whose recorder queues records
for a later fold passes a ``settle`` step, run inside both timings after the batch's last request,
so the batch pays for folding every record it queued rather than leaving some to a background
thread. Each instrumented row also carries ``vs_reference``: the median over rounds of its overhead
divided by the hand-written reference's overhead in the same round.

Garbage collection: after set-up, ``gc.freeze()`` moves every object built so far (all variants'
apps, one process holding them all) out of the collector's reach, so a collection inside one
variant's batch does not traverse the other variants' heaps. A ``gc.collect()`` runs before every
batch (outside the timing) and the collector stays enabled inside it, so a variant that allocates
more pays for the collections it causes. ``--gc-off`` disables the collector inside the batches
instead (re-enabled right after).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any

from _apps import MIX, NOOP, Built, Context, Unavailable, Variant, package_evidence
from _driver import Driver
from _stats import median, quartiles, rotated


@dataclass
class _Running:
    variant: Variant
    built: Built
    driver: Driver
    times_us: list[float] = field(default_factory=list)
    wall_us: list[float] = field(default_factory=list)


def run(
    variants: list[Variant],
    ctx: Context,
    *,
    rounds: int,
    slice_ms: float,
    warmup: int,
    gc_off: bool = False,
) -> dict[str, Any]:
    """Measure µs/request for every variant; returns the section's JSON-ready result.

    Args:
        variants: The variants to measure (the driver floor is added).
        ctx: Scratch directory and OTLP sink for the builders.
        rounds: Interleaved rounds.
        slice_ms: Target duration of one variant's batch in a round (0: one pass of the mix).
        warmup: Requests per variant before the rounds.
        gc_off: Disable the collector inside the timed batches.
    """
    ctx = dataclasses.replace(ctx, shared_process=True)
    mine = [v for v in variants if "inproc" in v.sections]
    return asyncio.run(_run(mine, ctx, rounds, slice_ms, warmup, gc_off))


def _batch_size(us_per_request: float, slice_ms: float) -> int:
    k = len(MIX)  # every request kind weighs the same
    n = int(slice_ms * 1000 / max(us_per_request, 0.01))
    return max(k, n - n % k)


async def _run(
    variants: list[Variant], ctx: Context, rounds: int, slice_ms: float, warmup: int, gc_off: bool
) -> dict[str, Any]:
    warmup = max(len(MIX), warmup - warmup % len(MIX))
    result: dict[str, Any] = {
        "rounds": rounds,
        "slice_ms": slice_ms,
        "warmup": warmup,
        "gc": "frozen after set-up, "
        + ("disabled inside batches" if gc_off else "enabled, collected before each batch"),
        "requests": [f"{r.method} {r.path} -> {r.expect_status}" for r in MIX],
        "variants": {},
    }
    out: dict[str, Any] = result["variants"]
    running: dict[str, _Running] = {}
    for variant in [NOOP, *variants]:
        entry = out[variant.name] = {"label": variant.label, "base": variant.base}
        try:
            built = variant.build(ctx)
        except Unavailable as exc:
            entry["skipped"] = str(exc)
            continue
        except Exception as exc:
            entry["error"] = _describe(exc)
            continue
        entry["notes"] = built.notes
        driver = Driver(built.app, MIX)
        try:
            entry["lifespan"] = await driver.startup()
            if variant is not NOOP:
                await driver.check()
            ns, _ = await driver.batch(warmup, built.settle)
        except Exception as exc:
            entry["error"] = _describe(exc)
            await _close(variant, driver, built, ctx, entry)
            continue
        running[variant.name] = _Running(variant, built, driver)
        entry["batch"] = _batch_size(ns / warmup / 1000, slice_ms)

    names = list(running)
    gc.collect()
    gc.freeze()
    try:
        for r in range(rounds):
            if r % 25 == 0 or r == rounds - 1:
                print(f"  in-process round {r + 1}/{rounds}", file=sys.stderr, flush=True)
            for name in rotated(names, r):
                state = running.get(name)
                if state is None:
                    continue
                gc.collect()
                if gc_off:
                    gc.disable()
                try:
                    batch = out[name]["batch"]
                    wall, cpu = await state.driver.batch(batch, state.built.settle)
                except Exception as exc:
                    out[name]["error"] = _describe(exc)
                    del running[name]
                    await _close(state.variant, state.driver, state.built, ctx, out[name])
                    continue
                finally:
                    gc.enable()
                state.times_us.append(cpu / batch / 1000)
                state.wall_us.append(wall / batch / 1000)
                # Give the loop's own callbacks (lag probes, timers) a turn, outside the timing.
                await asyncio.sleep(0)
    finally:
        gc.unfreeze()
        for name, state in running.items():
            await _close(state.variant, state.driver, state.built, ctx, out[name])

    for name, state in running.items():
        out[name].update(_summary(state.times_us))
        out[name]["wall_us_per_request"] = median(state.wall_us)
    for name, state in running.items():
        base = state.variant.base
        if base is None or base not in running:
            continue
        base_times = running[base].times_us
        diffs = [t - b for t, b in zip(state.times_us, base_times, strict=False)]
        ratios = [t / b for t, b in zip(state.times_us, base_times, strict=False)]
        q1, q3 = quartiles(diffs)
        out[name]["overhead_us"] = median(diffs)
        out[name]["overhead_us_q1_q3"] = [q1, q3]
        out[name]["overhead_us_per_round"] = diffs
        out[name]["ratio_to_base"] = median(ratios)
        out[name]["ratio_to_base_per_round"] = ratios
        wall_base = running[base].wall_us
        out[name]["wall_overhead_us"] = median(
            [t - b for t, b in zip(state.wall_us, wall_base, strict=False)]
        )
    _versus_reference(out)
    return result


def _versus_reference(out: dict[str, Any]) -> None:
    """Each package row's overhead over the hand-written reference's, round by round.

    The issue's figure: (package - its bare app) / (reference - its bare app) in the same round,
    median over rounds; the ratio of the two medians is reported beside it. A row on the wide
    app (64 routes) is set beside the reference on the same app.
    """
    for reference_name in ("handwritten", "handwritten-wide"):
        hand = out.get(reference_name, {})
        hand_rounds = hand.get("overhead_us_per_round")
        if not hand_rounds or hand.get("base") is None:
            continue
        for name, entry in out.items():
            mine = entry.get("overhead_us_per_round")
            if not name.startswith("fluxstack") or not mine or entry.get("base") != hand["base"]:
                continue
            per_round = [m / h for m, h in zip(mine, hand_rounds, strict=False) if h > 0]
            entry["vs_reference_per_round"] = per_round
            entry["vs_reference"] = median(per_round) if per_round else None
            reference = hand["overhead_us"]
            entry["vs_reference_of_medians"] = (
                entry["overhead_us"] / reference if reference > 0 else None
            )


def _summary(times: list[float]) -> dict[str, Any]:
    q1, q3 = quartiles(times)
    return {"us_per_request": median(times), "us_q1_q3": [q1, q3], "us_per_round": times}


async def _close(
    variant: Variant, driver: Driver, built: Built, ctx: Context, entry: dict[str, Any]
) -> None:
    if variant.name.startswith("fluxstack"):
        entry.setdefault("notes", []).append(package_evidence(ctx, variant.name))
    try:
        await driver.shutdown()
        built.close()
    except Exception as exc:
        entry.setdefault("notes", []).append(f"close failed: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {tb[-1].filename}:{tb[-1].lineno}" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"
