"""The directory of service users (issue 21): an optional file listing the addresses of the
people a mailbox serves, so that complaints from others are flagged `non_service_user` and
handled as the mailbox says (`non_service_users`): logged and acknowledged but not
investigated, as the homelessness charity's procedure has it."""

from __future__ import annotations

import csv
from pathlib import Path

from daemon.config import ConfigError


class DirectoryError(ConfigError):
    """The service-user directory cannot be read."""


def load_service_users(path: Path) -> frozenset[str]:
    """The addresses in `path`: one per line, or the first column of a CSV (a header row
    and lines starting with # are skipped)."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise DirectoryError(f"service_users {path}: cannot be read ({exc.strerror})") from exc
    found = set()
    for number, row in enumerate(rows, start=1):
        first = row[0].strip().lower() if row else ""
        if not first or first.startswith("#") or first in {"address", "email"}:
            continue
        if "@" not in first:
            raise DirectoryError(f"service_users {path}: line {number} is not an address")
        found.add(first)
    return frozenset(found)
