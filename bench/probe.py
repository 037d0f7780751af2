"""The benchmark's view of a run in progress: the daemon's rows, read from its database.

`DatabaseProbe` counts rows in `message` and `outbox` (SQLite or PostgreSQL) with its own
connection; `poll_interval` says how often, so that reading does not take the cores the
daemon is measured on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

# How often the probe reads the daemon's database: see poll_interval.
POLL_SECONDS = 0.1
POLL_SECONDS_MAX = 2.0
POLL_SHARE = 0.1  # of the time the backlog is expected still to take
_PROGRESS = text(
    "SELECT (SELECT count(*) FROM message), (SELECT count(*) FROM outbox), "
    "(SELECT count(*) FROM outbox WHERE status = 'sent'), "
    "(SELECT count(*) FROM outbox WHERE sent_copy = 'done')"
)


@dataclass(frozen=True)
class Progress:
    messages: int = 0
    outbox: int = 0
    sent: int = 0
    sent_copies: int = 0


class DatabaseProbe:
    """Reads the daemon's progress straight from its database (SQLite or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None

    def _connect(self) -> Engine | None:
        if self._engine is None:
            # Do not create an SQLite file before the daemon does (and runs its migrations).
            sqlite_file = self.url.removeprefix("sqlite:///")
            if self.url.startswith("sqlite:///") and not Path(sqlite_file).exists():
                return None
            self._engine = create_engine(self.url, pool_size=1, pool_pre_ping=False)
        return self._engine

    def progress(self) -> Progress:
        engine = self._connect()
        if engine is None:
            return Progress()
        try:
            with engine.connect() as conn:
                row = conn.execute(_PROGRESS).one()
        except DBAPIError:  # tables not created yet
            return Progress()
        return Progress(*(int(v) for v in row))

    def breakdown(self) -> dict[str, dict[str, int]]:
        """Messages by outcome and outbox rows by status, at the end of a run."""
        engine = self._connect()
        if engine is None:
            return {}
        out: dict[str, dict[str, int]] = {}
        with engine.connect() as conn:
            for name, query in (
                ("outcomes", "SELECT outcome, count(*) FROM message GROUP BY outcome"),
                ("outbox", "SELECT status, count(*) FROM outbox GROUP BY status"),
            ):
                out[name] = {str(k): int(v) for k, v in conn.execute(text(query)).all()}
        return out

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def poll_interval(recorded: int, total: int, working: float) -> float:
    """Seconds until the probe reads the database again.

    Every read counts whole tables: with 100,000 messages and 70,000 acknowledgements one
    read takes PostgreSQL ~65 ms (measured on tables of that size). Reading every 0.5 s,
    and every 0.1 s through the last 5 %, as before the eighth round, is ~720 reads in a
    100,000-message run on PostgreSQL: ~30 core-seconds (estimated), ~5 % of the two
    cores the daemon is measured on. So: POLL_SECONDS until the first row and once every
    row is in (the moments that are timed), and in between a tenth of the time the rest
    of the backlog should take at the rate so far, within [POLL_SECONDS,
    POLL_SECONDS_MAX]. The end is still seen within POLL_SECONDS.
    """
    if recorded <= 0 or working <= 0 or recorded >= total:
        return POLL_SECONDS
    remaining = (total - recorded) * working / recorded
    return min(POLL_SECONDS_MAX, max(POLL_SECONDS, POLL_SHARE * remaining))
