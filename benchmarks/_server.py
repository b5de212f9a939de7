"""Serve one variant under uvicorn on 127.0.0.1 (a subprocess of the throughput section).

Writes a small JSON report (notes, or the reason the variant is unavailable) to ``--report`` before
serving, so the parent can tell "skipped" from "crashed". SIGINT/SIGTERM stop uvicorn gracefully,
then the variant is closed (the package's ``shutdown()`` runs).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE.parent / "src"), str(_HERE)]

from _apps import BY_NAME, Context, Unavailable  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", required=True, choices=sorted(BY_NAME))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tmpdir", type=Path, required=True)
    parser.add_argument("--otlp-endpoint", required=True)
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args()

    ctx = Context(tmpdir=args.tmpdir, otlp_endpoint=args.otlp_endpoint)
    try:
        built = BY_NAME[args.variant].build(ctx)
    except Unavailable as exc:
        args.report.write_text(json.dumps({"skipped": str(exc)}))
        return 3
    except Exception as exc:
        args.report.write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        raise
    args.report.write_text(json.dumps({"notes": built.notes}))

    import uvicorn

    config = uvicorn.Config(
        built.app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="auto",
    )
    try:
        uvicorn.Server(config).run()
    finally:
        built.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
