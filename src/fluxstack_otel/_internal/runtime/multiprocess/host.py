"""Host-wide metrics for multi-worker servers: any worker's ``/metrics`` reports the whole host.

With several worker processes on one host (gunicorn prefork, ``uvicorn --workers``) a scrape
reaches one worker. Each worker therefore publishes its cumulative state to a shared directory,
and the pull exporters read the host view (``HostStream``), built from every worker's file plus
an archive of the workers that have gone:

- ``worker-<pid>-<instance>.json``: one worker's cumulative metrics as plain JSON, replaced
  atomically (temporary file + rename) every collect interval, on every host-wide collection it
  serves, at shutdown and at exit. Only its own worker writes it.
- ``archive.json``: the cumulative counters and histograms of dead workers, the directory's
  creation time (the start time of every summed series) and the host's instance id.
- ``.lock``: ``flock`` lock. Readers hold it shared while they read the archive and the files;
  compaction holds it exclusive while it adds a dead worker's counts to the archive and deletes
  its file, so no reader ever counts a worker twice or not at all.

Aggregation: counters and histograms (monotonic sums) are summed per label set across live
workers, dead ones and the archive, so they never go backwards when a worker dies or is recycled.
Gauges and up-down counters are per worker, with a ``pid`` label, live workers only; the host-wide
gauges (``_families.HOST_GAUGES``) are one value, read by the answering worker. A worker whose own series
restarts (an idle series evicted, then seen again) keeps the earlier incarnations' counts in its
published totals, so its file too only grows.

Staleness: the answering worker is merged from its live collection, never from its own file, so a
request it has just served is in the collection at once (whether or not its publish succeeds). A
worker's counts since its last publish are invisible to the others, so a host-wide collection lags
each other worker by at most one collect interval (plus the time to write a file). Every
collection publishes the answering worker first, so successive collections, whichever worker
answers, never decrease. A live worker whose file is older than ``_STALE_AFTER`` intervals (a hung
worker) is logged, rate-limited, and still summed: its counts are cumulative and still true.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import logging
import os
import re
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import psutil
from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.resources import Resource

from fluxstack_otel._internal.metrics.stream import MetricSource
from fluxstack_otel._internal.runtime.failures import report_failure
from fluxstack_otel._internal.runtime.multiprocess.families import (
    SUMMED,
    Attrs,
    Families,
    add_payloads,
    decode_families,
    encode_families,
    family_points,
    merge_families,
    to_metrics_data,
)
from fluxstack_otel._internal.runtime.multiprocess.storage import (
    FORK_GUARD,
    dumps,
    guard_forks,
    new_archive,
    process_alive,
    read_json,
    write_quick,
)
from fluxstack_otel._internal.runtime.scheduler import PeriodicWorker, Tick
from fluxstack_otel._internal.runtime.tick import Round
from fluxstack_otel._internal.transport.atomic import write_atomic
from fluxstack_otel.errors import ConfigError

__all__ = ["HOST_WIDE_SINKS", "HostStream", "process_alive"]

_log = logging.getLogger("fluxstack_otel")

HOST_WIDE_SINKS = frozenset({"prometheus", "json", "file"})
"""Exporters reading the host view; the others (OTLP, console) are per worker (instance id)."""

_STALE_AFTER = 3  # intervals without a publish before a live worker's file is reported stale
_ARCHIVE, _LOCK, _PREFIX = "archive.json", ".lock", "worker-"
_ABSORBED_KEPT = 1000  # names of compacted files remembered, against a crash between two steps
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")

Liveness = Callable[[int, float], bool]


class HostStream:
    """The host view of a worker's metric stream, and the publisher of that worker's state.

    A ``MetricSource`` to the sinks that read it (``collect``) and a sink to the
    monitoring (``start`` schedules the publisher, ``shutdown`` publishes a last time).

    Args:
        local: This worker's own stream.
        directory: The directory every worker of the host shares.
        interval: Seconds between publishes (the collect interval).
        alive: Liveness test of a ``(pid, start time)``; injectable for tests.

    Raises:
        ConfigError: No directory, or one that cannot be created or locked.
    """

    def __init__(
        self,
        local: MetricSource,
        directory: str | os.PathLike[str] | None,
        interval: float,
        *,
        alive: Liveness = process_alive,
    ) -> None:
        self._local = local
        if directory is None:
            raise ConfigError("multiprocess needs a directory", path="multiprocess.directory")
        self._dir = Path(directory)
        self._interval = interval
        guard_forks()
        self._alive = alive
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            with self._locked(exclusive=True):
                archive = self._read_archive()
                if archive is None:
                    archive = new_archive()
                    write_atomic(self._dir / _ARCHIVE, dumps(archive))
        except OSError as exc:
            raise ConfigError(
                f"cannot use {str(directory)!r} as the multiprocess directory: {exc}",
                path="multiprocess.directory",
            ) from None
        self._created_ns = int(archive["created_ns"])
        self._host_id = str(archive["instance"])
        self._closed = False
        self._warned: dict[int, float] = {}
        self._worker = PeriodicWorker(
            "fluxstack-otel-multiprocess",
            interval,
            self._tick,
            run_at_start=True,
            flush_at_stop=False,
        )
        self._reset_process_state()
        # A worker that exits without a shutdown (sys.exit in a server's worker) still publishes
        # its last counts; a weak reference, so the handler keeps nothing alive.
        self._at_exit = functools.partial(_publish_at_exit, weakref.ref(self))
        atexit.register(self._at_exit)

    # --- MetricSource -----------------------------------------------------------------------

    @property
    def resource(self) -> Resource:
        """This worker's resource, with the host's ``service.instance.id`` (same on every worker)."""
        return self._local.resource.merge(Resource({"service.instance.id": self._host_id}))

    def set_resource(self, resource: Resource) -> None:
        """Replace the resource of the worker's own stream."""
        self._local.set_resource(resource)

    def made_at(self, shared: Round) -> int | None:
        return None  # the host's merged counts have no recorder version

    def collect_in(self, shared: Round, names: Collection[str] | None = None) -> MetricsData:
        """The host's metrics, once for the round ``shared`` (``names`` ignored, as in collect)."""
        return shared.share(self, self.collect)

    def collect(self, names: Collection[str] | None = None) -> MetricsData:
        """Publish this worker, then return the host's metrics as cumulative OTel data.

        ``names`` is accepted for the ``MetricSource`` contract and ignored: the publication
        carries every metric.
        """
        own = self.publish()
        with self._locked(exclusive=False):
            archive = self._read_archive() or new_archive()
            absorbed = set(archive.get("absorbed", ()))  # already in the archive: not again
            workers = [(p, doc) for p, doc in self._read_workers() if p != self._path]
        others = [doc for path, doc in workers if path.name not in absorbed]
        dead = len(workers) - len(others)
        now_ns = time.time_ns()
        families: Families = {}
        merge_families(families, own, summed_only=False, pid=None)
        merge_families(families, decode_families(archive["families"]), summed_only=True, pid=None)
        for doc in others:
            live = self._alive(int(doc["pid"]), float(doc["started"]))
            dead += not live
            if live:
                self._check_stale(doc, now_ns)
            merge_families(
                families,
                decode_families(doc["families"]),
                summed_only=not live,
                pid=int(doc["pid"]),
            )
        if dead:
            self.compact()
        return to_metrics_data(families, self.resource, self._created_ns, now_ns)

    # --- Sink -------------------------------------------------------------------------------

    def endpoints(self) -> dict[str, Any]:
        """No paths of its own: the pull exporters serve the host view."""
        return {}

    def start(self) -> None:
        """Publish now, then every interval, on the periodic scheduler."""
        self._worker.start()

    def shutdown(self, timeout: float) -> None:
        """Stop publishing periodically and publish a last time, so a recycled worker's counts
        all stay."""
        self._closed = True
        atexit.unregister(self._at_exit)
        self._worker.stop(timeout)
        self._final_publish()

    def after_fork(self) -> None:
        """In a forked child: a new identity, fresh state, and a first publish at once (the
        scheduler has restarted the publisher)."""
        self._reset_process_state()
        self._worker.run_soon()

    # --- publishing -------------------------------------------------------------------------

    def publish(self) -> Families:
        """Write this worker's cumulative state to its file now, and return it."""
        # Under FORK_GUARD too: collecting takes the recorder's and the SDK's locks, and a child
        # forked while this thread held one (gunicorn --preload forking from a master that
        # publishes) would wait for it forever.
        with FORK_GUARD, self._state_lock:
            families = self._carry(self._local.collect())
            doc = {
                "pid": self._pid,
                "instance": self._instance,
                "started": self._proc_started,
                "published_ns": time.time_ns(),
                "interval": self._interval,
                "families": encode_families(families),
            }
            try:
                write_quick(self._path, dumps(doc))
            except OSError:
                report_failure(f"publishing worker metrics to {str(self._path)!r}")
            return families

    def compact(self) -> int:
        """Fold dead workers' counters and histograms into the archive and delete their files.

        Returns:
            How many files were compacted.
        """
        try:
            with self._locked(exclusive=True):
                archive = self._read_archive() or new_archive()
                absorbed: list[str] = list(archive.get("absorbed", []))
                families = decode_families(archive["families"])
                gone: list[Path] = []
                for path, doc in self._read_workers():
                    if path == self._path or self._alive(int(doc["pid"]), float(doc["started"])):
                        continue
                    if path.name not in absorbed:  # else: already in the archive (crash between)
                        merge_families(
                            families, decode_families(doc["families"]), summed_only=True, pid=None
                        )
                        absorbed.append(path.name)
                    gone.append(path)
                if not gone:
                    return 0
                archive["families"] = encode_families(families)
                archive["absorbed"] = absorbed[-_ABSORBED_KEPT:]
                write_atomic(self._dir / _ARCHIVE, dumps(archive))
                for path in gone:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    with contextlib.suppress(FileNotFoundError):
                        (path.parent / f".{path.name}.tmp").unlink()
                return len(gone)
        except OSError:
            report_failure(f"compacting the multiprocess directory {str(self._dir)!r}")
            return 0

    def _reset_process_state(self) -> None:
        # Locks and threads do not survive fork: a child builds its own.
        self._state_lock = threading.Lock()
        self._first = True  # the first publish of a process compacts nothing
        self._pid = os.getpid()
        self._proc_started = float(psutil.Process(self._pid).create_time())
        instance = str(self._local.resource.attributes.get("service.instance.id") or uuid.uuid4())
        self._instance = _UNSAFE.sub("_", instance)[:64]
        self._path = self._dir / f"{_PREFIX}{self._pid}-{self._instance}.json"
        # Reset-proofing: the last cumulative point of each counter/histogram series, and the sum
        # of its earlier incarnations (a series evicted, or restarted with a new start time).
        self._last: dict[tuple[str, str, Attrs], tuple[int, list[Any]]] = {}
        self._base: dict[tuple[str, str, Attrs], list[Any]] = {}
        self._meta: dict[tuple[str, str], tuple[str, str, str]] = {}

    def _tick(self, tick: Tick) -> None:
        first, self._first = self._first, False
        try:
            self.publish()
            if not first:
                self.compact()
        except Exception:
            report_failure("publishing worker metrics")

    def _final_publish(self) -> None:
        if self._pid == os.getpid():
            try:
                self.publish()
            except Exception:
                report_failure("publishing worker metrics at shutdown")

    def _carry(self, data: MetricsData) -> Families:
        """This worker's families, counters and histograms made monotonic across series resets."""
        families: Families = {}
        seen: set[tuple[str, str, Attrs]] = set()
        for scope, name, kind, desc, unit, attrs, start, payload in family_points(data):
            self._meta[(scope, name)] = (kind, desc, unit)
            family = families.setdefault((scope, name), [kind, desc, unit, {}])
            if kind not in SUMMED:
                family[3][attrs] = payload
                continue
            sid = (scope, name, attrs)
            seen.add(sid)
            previous = self._last.get(sid)
            if previous is not None and previous[0] != start:
                self._fold_base(kind, sid, previous[1])
            self._last[sid] = (start, payload)
            base = self._base.get(sid)
            family[3][attrs] = (
                payload if base is None else (add_payloads(kind, base, payload) or payload)
            )
        for sid in [s for s in self._last if s not in seen]:  # evicted: keep its counts
            kind = self._meta[sid[:2]][0]
            self._fold_base(kind, sid, self._last.pop(sid)[1])
        for sid, base in self._base.items():
            if sid not in seen:
                kind, desc, unit = self._meta[sid[:2]]
                families.setdefault(sid[:2], [kind, desc, unit, {}])[3][sid[2]] = base
        return families

    def _fold_base(self, kind: str, sid: tuple[str, str, Attrs], payload: list[Any]) -> None:
        base = self._base.get(sid)
        self._base[sid] = payload if base is None else (add_payloads(kind, base, payload) or base)

    # --- reading ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, *, exclusive: bool) -> Iterator[None]:
        # An flock belongs to the open file, which a fork shares: a child forked while a thread
        # of this process holds the lock would hold it forever (its copy of the descriptor is
        # never closed). FORK_GUARD is held around every locked section (and every publish) and
        # taken by fork, so no fork happens inside one.
        with FORK_GUARD:
            fd = os.open(self._dir / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
                yield
            finally:
                os.close(fd)  # closing the descriptor releases the lock

    def _read_archive(self) -> dict[str, Any] | None:
        doc = read_json(self._dir / _ARCHIVE)
        return doc if doc is not None and "created_ns" in doc else None

    def _read_workers(self) -> list[tuple[Path, dict[str, Any]]]:
        out = []
        for path in sorted(self._dir.glob(f"{_PREFIX}*.json")):
            doc = read_json(path)
            if doc is not None and {"pid", "started", "families"} <= doc.keys():
                out.append((path, doc))
        return out

    def _check_stale(self, doc: dict[str, Any], now_ns: int) -> None:
        age = (now_ns - int(doc.get("published_ns", 0))) / 1e9
        limit = _STALE_AFTER * float(doc.get("interval", self._interval))
        pid = int(doc["pid"])
        now = time.monotonic()
        if age > limit and now - self._warned.get(pid, -1e9) > 60.0:
            self._warned[pid] = now
            _log.warning(
                "fluxstack-otel: worker pid %d last published its metrics %.1fs ago (more than "
                "%d intervals); its counts are summed as last published",
                pid,
                age,
                _STALE_AFTER,
            )


def _publish_at_exit(ref: weakref.ref[HostStream]) -> None:
    stream = ref()
    if stream is not None and not stream._closed:
        stream._final_publish()
