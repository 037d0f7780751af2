"""The benchmark's servers: the tests' private Dovecot, an SMTP sink, mailboxes, databases.

Everything listens on 127.0.0.1 and everything started here is stopped by the context
managers, also on Ctrl-C. Mailboxes are fresh Dovecot accounts (one per measurement);
PostgreSQL databases are created per run and dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import imapclient
import psycopg
from psycopg import sql

from bench.sink import LeanSink
from tests import mailstack
from tests.mailstack import Dovecot, Received, SmtpSink

PASSWORD_ENV = "CANDOUR_BENCH_IMAP_PASSWORD"
PASSWORD = "secret"
POSTGRES_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=5"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


@dataclass(frozen=True)
class Mailbox:
    """One Dovecot account used for one measurement."""

    user: str
    address: str
    port: int

    def connect(self, timeout: float = 60.0) -> imapclient.IMAPClient:
        client = imapclient.IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=timeout)
        client.login(self.user, PASSWORD)
        return client


@dataclass(frozen=True)
class SeedStats:
    messages: int
    bytes: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def seed(mailbox: Mailbox, messages: Iterable[bytes], per_command: int = 100) -> SeedStats:
    """MULTIAPPEND `messages` to INBOX, `per_command` at a time (APPEND one by one is slow)."""
    client = mailbox.connect()
    count = size = 0
    started = time.perf_counter()
    try:
        batch: list[bytes] = []
        for raw in messages:
            batch.append(raw)
            if len(batch) == per_command:
                client.multiappend("INBOX", batch)
                count, size, batch = count + len(batch), size + sum(map(len, batch)), []
        if batch:
            client.multiappend("INBOX", batch)
            count, size = count + len(batch), size + sum(map(len, batch))
    finally:
        with contextlib.suppress(Exception):
            client.logout()
    return SeedStats(count, size, time.perf_counter() - started)


class Sink(Protocol):
    """What the benchmark reads from an SMTP sink (bench.sink.LeanSink or SmtpSink)."""

    port: int

    @property
    def messages(self) -> list[Received]: ...

    @property
    def count(self) -> int: ...

    def stop(self) -> None: ...


class Stack:
    """A private Dovecot for the whole benchmark; sinks and mailboxes made on demand."""

    def __init__(self) -> None:
        # Not a 0700 directory under pytest's base: Dovecot's auth process must traverse it.
        self.root = Path(tempfile.mkdtemp(prefix="candour-bench-dovecot-", dir="/tmp"))
        self.dovecot = Dovecot(self.root)
        self._started = False

    def __enter__(self) -> Stack:
        os.environ[PASSWORD_ENV] = PASSWORD  # read by the daemon's config (password_env)
        self.dovecot.start()
        self._started = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            self.dovecot.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def new_mailbox(self) -> Mailbox:
        user = self.dovecot.new_user()
        return Mailbox(user, f"complaints-{user}@example.org", self.dovecot.port)

    @staticmethod
    @contextlib.contextmanager
    def sink(kind: str = "lean") -> Iterator[Sink]:
        """A fresh SMTP sink, so each measurement counts only its own acknowledgements:
        bench.sink's lean receiver, or the tests' aiosmtpd one ("aiosmtpd")."""
        sink: Sink = LeanSink().start() if kind == "lean" else SmtpSink().start()
        try:
            yield sink
        finally:
            sink.stop()


def postgres_available() -> str | None:
    """None when PostgreSQL answers on 127.0.0.1:5432, else why not."""
    try:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


@contextlib.contextmanager
def postgres_database(label: str) -> Iterator[str]:
    """Create an empty database for one run; yields its SQLAlchemy URL; drops it after."""
    name = f"candour_bench_{os.getpid()}_{label}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield POSTGRES_URL.format(name=name)
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def write_config(
    path: Path, *, mailbox: Mailbox, smtp_port: int, db_url: str, log_level: str = "info"
) -> Path:
    """A daemon configuration for one measurement (the tests' settings, info logging)."""
    return mailstack.write_config(
        path,
        imap_port=mailbox.port,
        user=mailbox.user,
        address=mailbox.address,
        smtp_port=smtp_port,
        db_url=db_url,
        log_level=log_level,
        password_env=PASSWORD_ENV,
        idle_renew_seconds=600,
        imap_timeout=60,
    )
