"""Running a function in a forked child: its result, or its exception, back in the parent."""

from __future__ import annotations

import json
import os
import select
import warnings
from collections.abc import Callable
from typing import Any


def in_child(run: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Fork; return what ``run()`` returned in the child (its exception re-raised as one)."""
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads running
        pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        status = 1
        try:
            os.close(read)
            try:
                payload = {"ok": run()}
            except BaseException as exc:
                payload = {"error": f"{type(exc).__name__}: {exc}"}
            os.write(write, json.dumps(payload, default=str).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    try:
        chunks = []
        while True:
            ready, _, _ = select.select([read], [], [], timeout)
            if not ready:
                os.kill(pid, 9)
                raise AssertionError(f"the child said nothing within {timeout:g}s")
            chunk = os.read(read, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    answer = json.loads(b"".join(chunks))
    if "error" in answer:
        raise AssertionError(f"in the child: {answer['error']}")
    return answer["ok"]
