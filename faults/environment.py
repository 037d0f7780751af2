"""Faults of the machine rather than of a peer: a full disk (the database on a small tmpfs
whose size the schedule shrinks to what is used, then restores) and a jump of the wall
clock (libfaketime, preloaded into `candour run`, reading its offset from a file that the
schedule rewrites while the daemon runs; the monotonic clock is left alone, as an NTP step
leaves it)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


class SmallDisk:
    """A tmpfs at `path` (root only); `fill()` leaves no free space, `free()` gives it back."""

    ROOMY = "256m"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mounted = False

    def mount(self) -> bool:
        """Mount it; False (and the disk fault is skipped) when this is not allowed."""
        self.path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.ROOMY}", "tmpfs", str(self.path)],
            capture_output=True,
        )
        self.mounted = done.returncode == 0
        return self.mounted

    def fill(self) -> None:
        """Shrink the filesystem to what its files use now: the next page written fails
        with ENOSPC."""
        used = shutil.disk_usage(self.path).used
        self._remount(f"{max(used, 4096) // 1024}k")

    def free(self) -> None:
        self._remount(self.ROOMY)

    def _remount(self, size: str) -> None:
        subprocess.run(
            ["mount", "-o", f"remount,size={size}", str(self.path)], check=True, capture_output=True
        )

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False, capture_output=True)
            self.mounted = False


class JumpingClock:
    """The wall clock of processes started with `env()`: moved forward by `jump(hours)`,
    also while they run (FAKETIME_NO_CACHE: every clock read looks at the file)."""

    def __init__(self, work: Path) -> None:
        self.file = work / "faketime"
        self.hours = 0
        self.file.write_text("+0h\n")

    @staticmethod
    def available() -> bool:
        return LIBFAKETIME.exists()

    def env(self) -> dict[str, str]:
        if not self.available():
            return {}
        return {
            "LD_PRELOAD": str(LIBFAKETIME),
            "FAKETIME_TIMESTAMP_FILE": str(self.file),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }

    def jump(self, hours: int) -> None:
        self.hours += hours
        tmp = self.file.with_suffix(".new")
        tmp.write_text(f"+{self.hours}h\n")
        os.replace(tmp, self.file)
