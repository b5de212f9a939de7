"""Section 1b: instructions per request, counted by valgrind (callgrind): the same on every run.

Wall-clock overheads a microsecond apart are within this machine's noise (two copies of the same
middleware measured 0.9 µs apart in one 60-round run), so the in-process section cannot rank
variants that close. An instruction count can: the interpreter executes the same instructions
for the same requests whatever the neighbours do. It is not time (cache misses and branch
mispredictions cost cycles that no count shows), so it complements section 1 and does not replace
it.

Each variant runs in a child interpreter under callgrind twice, with the same set-up and warm-up
and then 0 or ``requests`` requests of the mix; the difference divided by ``requests`` is the
count per request, free of start-up and shutdown. ``PYTHONHASHSEED`` is fixed so dict layouts
match between the two runs. The package runs its full configuration with the periodic exporters
and alert evaluation set beyond the run (their work is per interval, not per request, and under
valgrind's 50x slowdown a 1 s interval would fire fifty times as often per request).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from _apps import Context, Variant

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
# The variants the budget compares, and the floor any middleware pays (the pass-through); the
# others take minutes each under valgrind.
MEASURED = (
    "starlette",
    "passthrough",
    "fluxstack-default",
    "fluxstack",
    "handwritten",
    # 64 routes, so 64 series and more: what the cost does with the number of series.
    "starlette-wide",
    "fluxstack-wide",
    "handwritten-wide",
)
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def run(
    variants: list[Variant], ctx: Context, *, requests: int, warmup: int, quick: bool = False
) -> dict[str, Any]:
    """Instructions per request of the bare app, the package (default, full) and the reference.

    Args:
        variants: The chosen variants; only those in ``MEASURED`` are counted.
        ctx: The run's context (its OTLP sink receives the package's final export).
        requests: Requests counted per variant (a multiple of the mix and of the drain batch).
        warmup: Requests served before counting starts, in both runs.
        quick: Smoke run: the package alone (full and default), proving the harness works.
    """
    result: dict[str, Any] = {"requests": requests, "warmup": warmup, "variants": {}}
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        result["skipped"] = "valgrind is not installed (Debian package valgrind)"
        return result
    result["valgrind"] = _version(valgrind)
    names = [v.name for v in variants if v.name in MEASURED]
    if quick:
        names = [n for n in names if n in ("fluxstack", "fluxstack-default")]
    for name in names:
        row: dict[str, Any] = {}
        result["variants"][name] = row
        try:
            # Once outside valgrind first, so both counted runs load the same cached bytecode: a
            # module edited since its last import is compiled by the first run alone, which put
            # the compiler's work (about 1,000 instructions per request) into the difference.
            _count(None, name, 0, 0, ctx)
            empty = _count(valgrind, name, 0, warmup, ctx)
            full = _count(valgrind, name, requests, warmup, ctx)
        except (RuntimeError, subprocess.SubprocessError) as exc:
            row["error"] = str(exc)
            continue
        row["instructions_per_request"] = (full - empty) / requests
    bases = {v.name: v.base for v in variants}
    counted = result["variants"]
    for name, row in counted.items():
        base = bases.get(name)
        bare = counted.get(base, {}).get("instructions_per_request") if base else None
        if bare is not None and "instructions_per_request" in row:
            row["base"] = base
            row["overhead"] = row["instructions_per_request"] - bare
    return result


def _count(valgrind: str | None, name: str, requests: int, warmup: int, ctx: Context) -> int:
    """Instructions the child executes; without ``valgrind``, just run it (returns 0)."""
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH", "")]))
    tool = (
        [] if valgrind is None else [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    )
    done = subprocess.run(
        [
            *tool,
            sys.executable,
            str(HERE / "_icount_child.py"),
            name,
            str(requests),
            str(warmup),
            ctx.otlp_endpoint,
            str(ctx.tmpdir),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    if valgrind is None and done.returncode == 0:
        return 0
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"{name}: exit status {done.returncode}: {tail}")
    return int(found.group(1))


def _version(valgrind: str) -> str:
    done = subprocess.run([valgrind, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip()
