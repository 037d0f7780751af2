"""The one owner of the database engine: connections, transactions and schema upgrades.

SQLite (WAL, foreign keys on) is the default; PostgreSQL is used by URL. Every write
happens inside `Database.transaction()`, so a crash leaves either all of a decision
or none of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import structlog
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration in MIGRATIONS (tests/test_migrations.py checks it against Alembic).
# A database already at this revision is opened without importing Alembic at all: that
# is every start but the first after an upgrade, and Alembic costs 0.2 s and 11 MB.
SCHEMA_HEAD = "0018"
MIGRATION_LOCK = 0x43414E44  # "CAND": the advisory lock migrations hold on PostgreSQL


class DatabaseError(Exception):
    """The database cannot be reached or its schema is not what this version needs."""


T = TypeVar("T")
RECONNECT_ATTEMPTS = 3


def reconnecting(work: Callable[[], T], event: str, **fields: Any) -> T:
    """Run `work` (one idempotent transaction), again on a fresh connection when the
    database dropped the one in use (a restart, a failover, pg_terminate_backend), and
    again when PostgreSQL chose it to break a deadlock or a serialization conflict (it
    was rolled back whole); each retry is logged as `event` with `fields`. Other errors,
    and a third failure, are raised."""
    for attempt in range(1, RECONNECT_ATTEMPTS + 1):
        try:
            return work()
        except DBAPIError as exc:
            if not _retryable(exc) or attempt == RECONNECT_ATTEMPTS:
                raise
            structlog.get_logger("candour.database").warning(event, attempt=attempt, **fields)
            # A pause for a restarting server; a sleep across a wall-clock change can fail
            # (EINVAL under libfaketime, which the fault suite uses): then go on at once.
            with contextlib.suppress(OSError):
                time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


# PostgreSQL's SQLSTATEs for a transaction rolled back to break a deadlock, and for one
# that lost a serialization conflict: running it again is the documented answer.
RETRY_SQLSTATES = frozenset({"40P01", "40001"})


def _retryable(exc: DBAPIError) -> bool:
    return bool(exc.connection_invalidated) or (
        getattr(exc.orig, "sqlstate", None) in RETRY_SQLSTATES
    )


def private_dir(path: Path) -> None:
    """Create `path` and its missing parents 0700 whatever the umask: the state directory
    holds complaints, the reply secret and the worker lock. One that exists is left as the
    admin made it (`candour check-config` warns when others can read it). Raises OSError."""
    missing: list[Path] = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:  # another worker made it first
            continue
        os.chmod(directory, 0o700)


def private_file(path: Path) -> None:
    """Create `path` empty and 0600 whatever the umask, unless it exists. SQLite gives its
    -wal, -shm and -journal files the mode of the database file. Raises OSError."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # We issue BEGIN ourselves (see _sqlite_begin): the driver's implicit BEGIN is off.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Freed content is overwritten with zeros: purged personal data leaves the file.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # WAL + NORMAL is durable against process crashes; only an OS crash may lose the tail.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    """Writers take SQLite's write lock up front (BEGIN IMMEDIATE).

    A deferred transaction that reads and then writes cannot wait for another writer in
    WAL mode: it fails at once with "database is locked". Starting write transactions as
    IMMEDIATE makes them queue on the busy timeout instead; readers stay deferred.
    """
    mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def _normalise_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def _stamped_revision(connection: Connection) -> str | None:
    """The revision Alembic recorded in the database; None for an empty database."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    revisions = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    return str(revisions[0][0]) if len(revisions) == 1 else None


class WorkerLocked(DatabaseError):
    """Another worker holds the SQLite database."""


_held: list[IO[str]] = []  # the locks this process holds, open for its whole life


def claim_single_worker(url: str) -> None:
    """SQLite takes one worker: hold an exclusive lock beside the database file for the rest
    of this process's life (the kernel drops it when the process ends, however it ends).
    Raises WorkerLocked, naming the holder, when another worker has it. PostgreSQL takes
    several workers: nothing to do."""
    url = _normalise_url(url)
    if not url.startswith("sqlite:///") or url.startswith("sqlite:///:memory:"):
        return
    path = Path(url.removeprefix("sqlite:///") + ".worker-lock")
    private_dir(path.parent)
    private_file(path)
    handle = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise WorkerLocked(
            f"another candour worker (pid {holder}) is using {path.with_suffix('')}: SQLite "
            "takes one worker; use PostgreSQL to run several"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    _held.append(handle)


class Database:
    """Engine, sessions and migrations for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = _normalise_url(url)
        if self.url.startswith("sqlite:///") and not self.url.startswith("sqlite:///:memory:"):
            path = Path(self.url.removeprefix("sqlite:///"))
            try:
                private_dir(path.parent)
                private_file(path)  # SQLite would make it 0644; an empty file is a new database
            except OSError:
                pass  # SQLite says what is wrong when it connects
        self.engine: Engine = create_engine(self.url, future=True, pool_pre_ping=True)
        writer: Engine = self.engine
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
            writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writers = sessionmaker(writer, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on any exception."""
        with self._writers() as session, session.begin():
            yield session

    @contextmanager
    def reader(self) -> Iterator[Session]:
        """A session for reads only."""
        with self._sessions() as session:
            yield session

    def _alembic(self) -> AlembicConfig:
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        return cfg

    def upgrade(self, to: str = "head") -> None:
        """Bring the schema to the newest revision (or revision `to`). Raises DatabaseError."""
        try:
            with self.engine.connect() as connection:
                if _stamped_revision(connection) == SCHEMA_HEAD:
                    return
        except OperationalError as exc:
            raise DatabaseError(f"cannot open the database at {self.safe_url}: {exc.orig}") from exc
        from alembic import command

        cfg = self._alembic()
        try:
            with self.engine.execution_options(sqlite_begin="IMMEDIATE").begin() as connection:
                if self.dialect == "postgresql":
                    # Workers starting together: one migrates, the others wait here and
                    # then find the schema current (SQLite's IMMEDIATE does the same).
                    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
                    if to == "head" and _stamped_revision(connection) == SCHEMA_HEAD:
                        return
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, to)
        except OperationalError as exc:
            raise DatabaseError(
                f"cannot upgrade the database at {self.safe_url}: {exc.orig}"
            ) from exc

    def revision(self) -> tuple[str | None, str | None]:
        """Return (current revision in the database, newest revision this version ships)."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(self._alembic()).get_current_head()
        with self.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
        return current, head

    def refresh_statistics(self) -> None:
        """Have PostgreSQL re-read the size and spread of the tables (ANALYZE).

        Without statistics its planner guesses that a mailbox holds a dozen messages and
        answers the per-batch lookups from the (mailbox, message_id) index, filtering every
        row of the mailbox: 50 ms a batch at 40,000 messages, 1 s at 90,000. autovacuum
        normally does this; the daemon does it too while it works through a backlog,
        because autovacuum may be off, or behind a table that grew from nothing in
        minutes. SQLite's planner does not need it. Raises DatabaseError.
        """
        if self.dialect != "postgresql":
            return
        try:
            with self.engine.connect() as connection:
                # The columns the daemon looks rows up by; not the raw message bytes,
                # which would make ANALYZE read every sampled message in full.
                connection.exec_driver_sql(
                    "ANALYZE message (mailbox, uidvalidity, uid, dedupe_key, message_id,"
                    " case_id), outbox (mailbox, case_id, status, not_before,"
                    ' recipient, created_at, message_id, once_key, sent_copy), "case",'
                    " case_event (case_id)"
                )
                connection.commit()
        except OperationalError as exc:
            raise DatabaseError(f"cannot ANALYZE {self.safe_url}: {exc.orig}") from exc

    def compact(self) -> None:
        """Rewrite the database so that erased data is gone from its files, not only from
        its rows: SQLite VACUUM, then the write-ahead log truncated; PostgreSQL VACUUM FULL
        of the tables that hold personal data (their TOAST tables included). Raises
        DatabaseError."""
        sqlite = self.dialect == "sqlite"
        statements = (
            ("VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)")
            if sqlite
            else ('VACUUM FULL message, outbox, case_event, "case", correction, restriction',)
        )
        try:
            raw = self.engine.raw_connection()  # outside any transaction: VACUUM needs that
            try:
                if not sqlite:
                    raw.driver_connection.autocommit = True  # type: ignore[union-attr]
                cursor = raw.cursor()
                for statement in statements:
                    cursor.execute(statement)
                cursor.close()
            finally:
                raw.close()
        except self.engine.dialect.loaded_dbapi.Error as exc:
            raise DatabaseError(f"cannot compact {self.safe_url}: {exc}") from exc

    @property
    def safe_url(self) -> str:
        """The URL with any password masked, for messages and logs."""
        return self.engine.url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()
