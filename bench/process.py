"""The daemon as a child process, and the sampler that records its memory.

`Daemon` starts `python -m daemon run --config X [--once]` with its JSON log on a file
(a pipe nobody reads would block it), and always stops it: SIGTERM, then SIGKILL after
a deadline. `RssSampler` reads the resident set size of the process and its children
every 200 ms on a thread and keeps the peak, the latest value and CPU time; each process's
own peak is the kernel's high-water mark (VmHWM), so a spike between samples is not missed.
The sampler is part of the benchmark's own load on the machine: it lists the process tree
once a second, not at every sample (reading /proc for every process costs ~3 ms).
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import psutil  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
# The line of a traceback that names the exception, e.g. "sqlite3.OperationalError: ...".
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Timeout)\w*\b.*")


@dataclass
class MemoryFigures:
    peak_mb: float = 0.0
    last_mb: float = 0.0
    samples: int = 0
    cpu_seconds: float = 0.0  # user + system CPU of the process tree at the last sample
    # Peak RSS (the kernel's high-water mark) of each kind of process in the tree: the
    # daemon, its preparer child(ren), multiprocessing's resource tracker. The tree's
    # peak (sampled, of the sum) is what the target is about.
    peak_by_role: dict[str, float] = field(default_factory=dict)
    cpu_by_role: dict[str, float] = field(default_factory=dict)  # user + system, per role


def _role(proc: psutil.Process, root: psutil.Process) -> str:
    if proc.pid == root.pid:
        return "daemon"
    command = " ".join(proc.cmdline())
    if "resource_tracker" in command:
        return "resource tracker"
    return "preparer" if "spawn_main" in command else "other"


def _high_water_mark(pid: int) -> int:
    """The process's peak RSS in bytes, as the kernel counts it (0 when unreadable)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


class RssSampler:
    """Samples RSS of a process tree until stopped; thread-safe figures when done."""

    TREE_SECONDS = 1.0  # how often the list of child processes is read again

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.figures = MemoryFigures()
        self._pid = pid
        self._interval = interval
        self._tree: list[tuple[psutil.Process, str]] = []
        self._tree_read = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> MemoryFigures:
        self._stop.set()
        self._thread.join(5.0)
        return self.figures

    def _processes(self, process: psutil.Process) -> list[tuple[psutil.Process, str]]:
        """The tree with each process's role, re-read every TREE_SECONDS."""
        now = time.monotonic()
        if now - self._tree_read >= self.TREE_SECONDS:
            known = {proc.pid: (proc, role) for proc, role in self._tree}
            tree = []
            for proc in [process, *process.children(recursive=True)]:
                if proc.pid in known:
                    tree.append(known[proc.pid])
                    continue
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    tree.append((proc, _role(proc, process)))
            self._tree, self._tree_read = tree, now
        return self._tree

    def _sample(self, process: psutil.Process) -> tuple[float, float]:
        """(RSS in MB, CPU seconds) of the process and its children."""
        rss, cpu = 0, 0.0
        by_role: dict[str, float] = {}
        cpu_by_role: dict[str, float] = {}
        for proc, role in self._processes(process):
            try:
                with proc.oneshot():
                    one = proc.memory_info().rss
                    times = proc.cpu_times()
                peak = _high_water_mark(proc.pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                if proc.pid == process.pid:
                    raise psutil.NoSuchProcess(proc.pid) from None
                continue
            rss += one
            by_role[role] = by_role.get(role, 0.0) + max(one, peak) / MB
            cpu += times.user + times.system
            cpu_by_role[role] = cpu_by_role.get(role, 0.0) + times.user + times.system
        totals = self.figures.cpu_by_role  # kept after a child has exited
        for role, seconds in cpu_by_role.items():
            totals[role] = max(totals.get(role, 0.0), round(seconds, 2))
        peaks = self.figures.peak_by_role
        for role, mb in by_role.items():
            peaks[role] = max(peaks.get(role, 0.0), round(mb, 1))
        return rss / MB, cpu

    def _run(self) -> None:
        try:
            process = psutil.Process(self._pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            try:
                rss, cpu = self._sample(process)
            except psutil.NoSuchProcess:
                return
            figures = self.figures
            figures.samples += 1
            figures.cpu_seconds = max(figures.cpu_seconds, cpu)
            figures.last_mb = rss
            figures.peak_mb = max(figures.peak_mb, rss)
            self._stop.wait(self._interval)


class Daemon:
    """`python -m daemon run` as a child process, measured and always cleaned up."""

    def __init__(self, config: Path, log: Path, *, once: bool = False) -> None:
        self.config = config
        self.log = log
        self.once = once
        self.process: subprocess.Popen[bytes] | None = None
        self.sampler: RssSampler | None = None
        self.started_at = 0.0

    def __enter__(self) -> Daemon:
        args = [sys.executable, "-m", "daemon", "run", "--config", str(self.config)]
        if self.once:
            args.append("--once")
        with self.log.open("wb") as log:
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                args,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: Ctrl-C reaches the benchmark, which stops it in order.
                start_new_session=True,
            )
        self.sampler = RssSampler(self.process.pid).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def exit_status(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, deadline: float = 60.0) -> int | None:
        """SIGTERM (the daemon drains for up to 20 s), SIGKILL after `deadline`. Idempotent."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(deadline)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self.sampler is not None:
            self.sampler.stop()
        return process.returncode

    def memory(self) -> MemoryFigures:
        return self.sampler.figures if self.sampler is not None else MemoryFigures()

    def log_problems(self) -> dict[str, int]:
        """Warning and error events in the daemon's log, by event name (and exception)."""
        found: dict[str, int] = {}
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return found
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                key = "non-json line"
            else:
                if not isinstance(event, dict) or event.get("level") not in {"warning", "error"}:
                    continue
                key = str(event.get("event"))
                trace = str(event.get("exception") or "").splitlines()
                named = [line for line in trace if _EXCEPTION_LINE.match(line)]
                if named:
                    key += f" ({named[-1][:90]})"
            found[key] = found.get(key, 0) + 1
        return found

    def log_tail(self, lines: int = 5) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
