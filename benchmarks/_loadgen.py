"""A bounded async httpx load generator: the fallback when ``wrk`` is not installed.

Runs ``--connections`` workers cycling through the request mix for ``--duration`` seconds and
prints one JSON object (requests/s, p50/p99 latency, errors). A Python client is far slower than
wrk, so on a small machine it can be the bottleneck: ratios against the bare app then understate
the differences between variants. The report says which generator ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))

from _apps import MIX  # noqa: E402


async def _load(url: str, duration: float, connections: int) -> dict[str, float]:
    import httpx

    latencies: list[float] = []
    counts = {"errors": 0, "non_2xx_3xx": 0}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10.0) as client:
        deadline = time.perf_counter() + duration

        async def worker(offset: int) -> None:
            i = offset
            while time.perf_counter() < deadline:
                req = MIX[i % len(MIX)]
                i += 1
                headers = {"content-type": req.content_type.decode()} if req.content_type else None
                t0 = time.perf_counter()
                try:
                    response = await client.request(
                        req.method, req.path, content=req.body or None, headers=headers
                    )
                except httpx.HTTPError:
                    counts["errors"] += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                if response.status_code >= 400:
                    counts["non_2xx_3xx"] += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(connections)))
        elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        **counts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_load(args.url, args.duration, args.connections))))


if __name__ == "__main__":
    main()
