"""Serve the scale benchmark's app under uvicorn on 127.0.0.1, holding N HTTP label sets.

    python benchmarks/_scale_server.py --port P --series N

The monitoring (Prometheus exporter, no system metrics, its cap above N) is fed N distinct label
sets through its middleware before uvicorn starts, as ``_scale_render.py`` does in process; then
``GET /s0?status=200`` is the request wrk sends and ``/metrics`` the scrape. A subprocess of
``_scale_render.latency_section``; SIGINT/SIGTERM stop uvicorn, then the monitoring shuts down.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE.parent / "src"), str(_HERE)]

from _scale_render import _feed, _monitoring, _requests  # noqa: E402
from _scrape import _series_app  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--series", type=int, required=True)
    args = parser.parse_args()
    import uvicorn

    monitoring = _monitoring(args.series)
    app = monitoring.instrument(_series_app(-(-args.series // 50)))
    asyncio.run(_feed(app, _requests(args.series)))
    try:
        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    finally:
        monitoring.shutdown()


if __name__ == "__main__":
    main()
