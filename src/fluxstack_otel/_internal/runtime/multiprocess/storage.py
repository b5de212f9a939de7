"""The host directory's files and the processes behind them, for ``host.HostStream``.

In: a path and a document (a dict), or a pid and its start time. Out: the document's bytes
written in place (quick for a worker file; the archive goes through ``write_atomic``), the
document read back (``None`` when absent or unreadable, which is reported), and whether the
process that wrote a worker file is alive. ``FORK_GUARD`` is the lock fork waits for, so a child
is never forked in the middle of a locked section.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

from fluxstack_otel._internal.runtime.failures import report_failure

__all__ = [
    "FORK_GUARD",
    "dumps",
    "guard_forks",
    "new_archive",
    "process_alive",
    "read_json",
    "write_quick",
]

FORK_GUARD = threading.Lock()
_fork_guarded = False


def process_alive(pid: int, started: float) -> bool:
    """Whether ``pid`` is still the process that started at ``started`` (and not a zombie).

    A pid reused by another process has another start time. When the answer cannot be known
    (access denied) the process counts as alive: keeping a dead worker's file is always safe.
    """
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(float(proc.create_time()) - started) < 0.1
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


def new_archive() -> dict[str, Any]:
    return {"created_ns": time.time_ns(), "instance": str(uuid.uuid4()), "families": []}


def dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), allow_nan=True).encode()


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        report_failure(f"reading {str(path)!r}", exc_info=False, level=logging.WARNING)
        return None
    return doc if isinstance(doc, dict) else None


def write_quick(path: Path, data: bytes) -> None:
    # Atomic but not fsynced: a worker file is rewritten from memory every interval and means
    # nothing after a host crash (its process is gone too). The archive, the one durable record,
    # goes through write_atomic, which fsyncs. One temporary name per worker: only it writes here.
    tmp = path.parent / f".{path.name}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def guard_forks() -> None:
    """Make fork wait for the directory lock's sections (registered once, at first use)."""
    global _fork_guarded
    with FORK_GUARD:
        if _fork_guarded:
            return
        _fork_guarded = True
    os.register_at_fork(
        before=FORK_GUARD.acquire,
        after_in_parent=FORK_GUARD.release,
        after_in_child=FORK_GUARD.release,
    )
