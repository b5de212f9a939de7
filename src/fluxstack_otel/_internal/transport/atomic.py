"""Atomic file writes and timestamped history snapshots.

A reader (node_exporter's textfile collector, a log shipper, ``cat``) sees either the previous
complete file or the new complete file, never a partial one: the bytes go to a temporary file in
the same directory (same filesystem, so the rename is atomic), are flushed and fsynced, and the
temporary file is renamed over the target. The temporary name starts with a dot and does not end
in ``.prom``, so the textfile collector never reads it.

History snapshots sit next to the file as ``<name>.<UTC timestamp>`` (``metrics.prom.20250102T
030405.678Z``): they keep the file's name as a prefix, sort by time, and, not ending in
``.prom``, are not read by the textfile collector either.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["history_path", "prune_history", "write_atomic"]

_STAMP = "%Y%m%dT%H%M%S"


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, creating missing directories.

    The new file keeps the mode of the file it replaces (0644 for a new file), so a collector
    running as another user can still read it.

    Raises:
        OSError: The directory cannot be created or written; the target is left untouched.
    """
    target = Path(path)
    directory = target.parent
    directory.mkdir(parents=True, exist_ok=True)
    try:
        mode = target.stat().st_mode & 0o7777
    except OSError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if hasattr(os, "fchmod"):  # not on Windows before 3.13, where modes mean little
                os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable across a crash; best effort (not every OS or FS allows it).
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def history_path(path: str | os.PathLike[str], unix_ns: int) -> Path:
    """The snapshot name of ``path`` at ``unix_ns``: ``<path>.<YYYYmmddTHHMMSS.mmm>Z``."""
    moment = datetime.fromtimestamp(unix_ns / 1e9, tz=UTC)
    stamp = f"{moment.strftime(_STAMP)}.{moment.microsecond // 1000:03d}Z"
    target = Path(path)
    return target.with_name(f"{target.name}.{stamp}")


def prune_history(path: str | os.PathLike[str], older_than_ns: int) -> int:
    """Delete the snapshots of ``path`` taken before ``older_than_ns``.

    Only names that ``history_path`` produces are considered; other files are never touched.

    Returns:
        How many snapshots were deleted.

    Raises:
        OSError: The directory cannot be listed.
    """
    target = Path(path)
    prefix = f"{target.name}."
    deleted = 0
    with os.scandir(target.parent) as entries:
        for entry in entries:
            if not entry.name.startswith(prefix):
                continue
            taken = _parse_stamp(entry.name[len(prefix) :])
            if taken is not None and taken < older_than_ns:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    deleted += 1
    return deleted


def _parse_stamp(text: str) -> int | None:
    if len(text) != 20 or text[-5] != "." or not text.endswith("Z"):
        return None
    try:
        moment = datetime.strptime(text[:-5], _STAMP).replace(tzinfo=UTC)
        millis = int(text[-4:-1])
    except ValueError:
        return None
    return int(moment.timestamp()) * 1_000_000_000 + millis * 1_000_000
