"""Peak memory and CPU time of every process taking part in a measurement.

The goals bound the worker's memory, and knowing which process burns the CPU on a
2-core machine says more about where the time goes than any end-to-end figure. The
processes are separate (broker, worker, sink, gateway, the ``gridhub ingest`` client), so
each is sampled from outside with psutil, in a background thread, for the length of one
measurement.

On Linux it also reads how long each process's threads sat runnable in the scheduler's
queue without a CPU (``/proc/PID/task/*/schedstat``): a stage that is slow but neither busy
nor queued is waiting on something else (a broker round trip, a timer), which a CPU
profile alone does not show.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psutil

SAMPLE_SECONDS = 0.2


@dataclass(frozen=True)
class ProcessUsage:
    """What one process used during a measurement."""

    peak_rss_mib: float
    cpu_seconds: float
    queued_seconds: float | None = None
    """Time its threads were runnable but waiting for a CPU (Linux only)."""


@dataclass
class _Watched:
    process: psutil.Process
    cpu_start: float | None = None
    cpu_last: float = 0.0
    queued_start: float | None = None
    queued_last: float | None = None
    peak_rss: int = 0


def _queued_seconds(pid: int) -> float | None:
    """Run-queue wait of all threads of a process, from schedstat (second field, nanoseconds)."""
    total = 0
    try:
        for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            total += int(stat.read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


class ProcessSampler:
    """Samples resident memory and CPU time of named processes until stopped.

    Processes can be added while it runs (the ingest client starts after the
    measurement does); one that has exited keeps what was last seen of it.
    """

    def __init__(self, processes: dict[str, int] | None = None, interval_s: float = SAMPLE_SECONDS) -> None:
        self.interval_s = interval_s
        self._watched: dict[str, _Watched] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        for name, pid in (processes or {}).items():
            self.watch(name, pid)

    def watch(self, name: str, pid: int) -> None:
        """Start sampling a process (taking its first sample at once)."""
        try:
            watched = _Watched(psutil.Process(pid))
        except psutil.NoSuchProcess:
            return
        with self._lock:
            self._watched[name] = watched
        self._sample(watched)

    def _sample(self, watched: _Watched) -> None:
        try:
            with watched.process.oneshot():
                rss = watched.process.memory_info().rss
                times = watched.process.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return
        cpu = times.user + times.system
        if watched.cpu_start is None:
            watched.cpu_start = cpu
        watched.cpu_last = cpu
        watched.peak_rss = max(watched.peak_rss, rss)
        queued = _queued_seconds(watched.process.pid)
        if queued is not None:
            watched.queued_start = queued if watched.queued_start is None else watched.queued_start
            watched.queued_last = queued

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                watched = list(self._watched.values())
            for item in watched:
                self._sample(item)

    def usage(self) -> dict[str, ProcessUsage]:
        """Peak RSS and CPU seconds of each process so far."""
        with self._lock:
            watched = dict(self._watched)
        return {
            name: ProcessUsage(
                peak_rss_mib=round(item.peak_rss / 2**20, 1),
                cpu_seconds=round(item.cpu_last - (item.cpu_last if item.cpu_start is None else item.cpu_start), 2),
                queued_seconds=None
                if item.queued_last is None or item.queued_start is None
                else round(item.queued_last - item.queued_start, 2),
            )
            for name, item in watched.items()
        }

    def __enter__(self) -> ProcessSampler:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        with self._lock:
            watched = list(self._watched.values())
        for item in watched:
            self._sample(item)
