"""Child of section 1b: build one variant, serve a warm-up, then N more requests of the mix.

Usage: _icount_child.py VARIANT N WARMUP OTLP_ENDPOINT TMPDIR (run under callgrind by _icount).
"""

from __future__ import annotations

import asyncio
import gc
import sys
from pathlib import Path

from _apps import BY_NAME, MIX, Context
from _driver import Driver


async def main(name: str, requests: int, warmup: int, ctx: Context) -> None:
    built = BY_NAME[name].build(ctx)
    driver = Driver(built.app, MIX)
    try:
        if not await driver.startup():
            raise SystemExit(f"{name}: lifespan start-up failed")
        await driver.batch(warmup, built.settle)
        # As in section 1: what set-up built is moved out of the collector's reach, so a full
        # collection inside the counted requests does not traverse the whole process.
        gc.collect()
        gc.freeze()
        if requests:
            await driver.batch(requests, built.settle)
        await driver.shutdown()
    finally:
        built.close()


if __name__ == "__main__":
    variant, n, warm, endpoint, tmpdir = sys.argv[1:6]
    context = Context(
        tmpdir=Path(tmpdir), otlp_endpoint=endpoint, shared_process=True, periodic_interval=3600.0
    )
    asyncio.run(main(variant, int(n), int(warm), context))
