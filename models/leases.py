"""Mailbox leases and shared secrets in SQL: who watches which mailbox, and until when.

Each function is one or two statements inside the caller's transaction. Taking a lease is
a single INSERT ... ON CONFLICT DO UPDATE ... WHERE, atomic on SQLite and PostgreSQL alike:
of two workers racing for a free or expired lease exactly one gets it, and a live holder's
lease is never taken. Times come from the caller's clock (workers' hosts keep time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from models.schema import LeaseWorker, MailboxLease, SharedSecret


@dataclass(frozen=True)
class Lease:
    mailbox: str
    holder: str
    expires_at: datetime


def _insert(session: Session) -> Any:
    """The INSERT construct with ON CONFLICT for the session's database."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def acquire(session: Session, mailbox: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew `mailbox`'s lease for `holder` until `now + ttl`, in one statement.
    Returns True when `holder` has it: the lease was free, expired, or already its own;
    False when another holder's lease is still running."""
    insert = _insert(session)
    table = MailboxLease.__table__
    statement = insert(table).values(mailbox=mailbox, holder=holder, expires_at=now + ttl)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.mailbox],
        set_={"holder": statement.excluded.holder, "expires_at": statement.excluded.expires_at},
        where=(table.c.holder == holder) | (table.c.expires_at < now),
    )
    # RETURNING, not rowcount: a row comes back only when inserted or updated (SQLite has
    # had RETURNING since 3.35; the ORM session reports no rowcount for an INSERT).
    return session.execute(statement.returning(table.c.holder)).first() is not None


def release(session: Session, mailboxes: list[str], holder: str) -> int:
    """Give up `holder`'s leases on `mailboxes` (another worker may take them at once);
    returns how many it held."""
    if not mailboxes:
        return 0
    result = session.execute(
        delete(MailboxLease).where(
            MailboxLease.mailbox.in_(mailboxes), MailboxLease.holder == holder
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def leases(session: Session) -> dict[str, Lease]:
    """Every lease row, live or expired, by mailbox."""
    rows = session.execute(
        select(MailboxLease.mailbox, MailboxLease.holder, MailboxLease.expires_at)
    )
    return {mailbox: Lease(mailbox, holder, expires) for mailbox, holder, expires in rows}


def holder(session: Session, mailbox: str, now: datetime) -> str | None:
    """Who holds `mailbox`'s lease at `now`; None when nobody does (free or expired)."""
    found = session.get(MailboxLease, mailbox)
    return found.holder if found is not None and found.expires_at >= now else None


def present(session: Session, worker: str, now: datetime, ttl: timedelta) -> None:
    """`worker` takes part in sharing the mailboxes until `now + ttl`; rows of workers
    that vanished a day ago go (a killed worker never deletes its own)."""
    insert = _insert(session)
    statement = insert(LeaseWorker.__table__).values(id=worker, until=now + ttl)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["id"], set_={"until": statement.excluded.until}
        )
    )
    session.execute(delete(LeaseWorker).where(LeaseWorker.until < now - timedelta(days=1)))


def absent(session: Session, worker: str) -> None:
    """`worker` stops: it no longer counts when the others work out their fair share."""
    session.execute(delete(LeaseWorker).where(LeaseWorker.id == worker))


def live_workers(session: Session, now: datetime) -> int:
    """How many workers take part in sharing the mailboxes at `now`."""
    count = select(func.count()).select_from(LeaseWorker).where(LeaseWorker.until >= now)
    return int(session.scalar(count) or 0)


def shared_secret(session: Session, name: str) -> str | None:
    """The stored secret `name`, or None before any worker stored one."""
    found = session.get(SharedSecret, name)
    return found.value if found is not None else None


def store_secret(session: Session, name: str, value: str, now: datetime) -> str:
    """Store `value` as secret `name` unless a worker stored one first; returns the stored
    value, whichever worker's it is (INSERT ... ON CONFLICT DO NOTHING, then read)."""
    insert = _insert(session)
    statement = insert(SharedSecret.__table__).values(name=name, value=value, created_at=now)
    session.execute(statement.on_conflict_do_nothing(index_elements=["name"]))
    stored = shared_secret(session, name)
    assert stored is not None  # inserted now, or by another worker before us
    return stored
