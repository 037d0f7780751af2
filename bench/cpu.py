"""Where the machine's CPU went during a run: the whole machine, this process, the daemon.

`CpuMark` reads the machine's busy time and the benchmark's own; `CpuAccount` is the
account of one run; `CpuBase` is the daemon's CPU before a burst, subtracted after it.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field

import psutil  # type: ignore[import-untyped]

from bench.process import Daemon

_NOT_BUSY = frozenset({"idle", "iowait", "guest", "guest_nice"})


@dataclass(frozen=True)
class CpuMark:
    """Whole-machine busy CPU and the benchmark process's own CPU, at one moment."""

    busy: float  # core-seconds the machine spent not idle since boot
    own: float  # user + system CPU of this process (sink, probe, sampler threads)
    at: float

    @classmethod
    def now(cls) -> CpuMark:
        times = psutil.cpu_times()._asdict()
        # Linux counts guest time inside user time already; idle and iowait are not busy.
        busy = sum(v for k, v in times.items() if k not in _NOT_BUSY)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return cls(busy, usage.ru_utime + usage.ru_stime, time.monotonic())


@dataclass(frozen=True)
class CpuAccount:
    """Where the machine's cores went during a backlog run, in core-seconds."""

    cores: int
    wall: float
    busy: float  # the whole machine
    daemon: float
    preparer: float
    harness: float  # this benchmark process: SMTP sink, progress probe, memory sampler

    @property
    def other(self) -> float:
        """Dovecot, PostgreSQL, the kernel and anything else running."""
        return max(0.0, self.busy - self.daemon - self.preparer - self.harness)

    @property
    def idle(self) -> float:
        return max(0.0, self.cores * self.wall - self.busy)


@dataclass(frozen=True)
class CpuBase:
    """The daemon's CPU seconds (per role, and in all) before a burst: subtracted from its
    figures at the end, so that they count the burst's work and not the start-up's."""

    total: float = 0.0
    by_role: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, daemon: Daemon) -> CpuBase:
        memory = daemon.memory()
        return cls(memory.cpu_seconds, dict(memory.cpu_by_role))

    def since(self, by_role: dict[str, float]) -> dict[str, float]:
        return {role: round(s - self.by_role.get(role, 0.0), 2) for role, s in by_role.items()}
