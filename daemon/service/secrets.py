"""The secret that signs per-case reply addresses: configured, or made once and kept;
on PostgreSQL, one secret shared by every worker through the database."""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

import structlog

from daemon import logs
from daemon.config import Config, ConfigError
from models import leases
from models.database import Database, private_dir

log = structlog.get_logger("candour.secrets")

SHARED_NAME = "reply"


def reply_secret(config: Config, db: Database | None = None) -> bytes:
    """The reply-signing secret (see _reply_secret), kept out of the logs from now on."""
    value = _reply_secret(config, db)
    logs.never_log(value)
    return value


def _reply_secret(config: Config, db: Database | None = None) -> bytes:
    """The reply-signing secret. On SQLite (or without `db`): `daemon.secret_file`, or
    `<state_dir>/reply-secret` (0600) created on first use. On PostgreSQL the database
    holds the one secret all workers use: the first worker stores its own (the configured
    file, the state file, or a new one); later workers use the stored one.

    Raises ConfigError when the configured file cannot be read, the state directory
    cannot be written, or `daemon.secret_file` disagrees with the stored secret (reply
    addresses one worker made would not be recognised by another).
    """
    if db is None or db.dialect != "postgresql":
        return _local_secret(config)
    with db.reader() as session:
        stored = leases.shared_secret(session, SHARED_NAME)
    configured = config.daemon.secret_file
    if stored is None:
        value = _shareable(config)
        with db.transaction() as session:
            stored = leases.store_secret(session, SHARED_NAME, value, datetime.now(UTC))
        if stored == value:
            log.info("reply_secret.shared", source="file" if configured else "state_dir")
    if configured is not None and _shareable(config) != stored:
        raise ConfigError(
            f"daemon.secret_file {configured}: differs from the reply secret the other "
            "workers on this database share (stored in its shared_secret table). Give every "
            "worker the same secret file (copy the first worker's), or remove "
            "daemon.secret_file to use the stored secret"
        )
    return stored.encode()


def _shareable(config: Config) -> str:
    """This worker's own secret as the database keeps it: printable ASCII, 16-200 long."""
    value = _local_secret(config)
    if len(value) > 200 or not value.isascii() or not value.decode().isprintable():
        raise ConfigError(
            "reply secret: to share it through the database it must be 16 to 200 printable "
            "ASCII characters (`openssl rand -hex 32` makes one)"
        )
    return value.decode()


def _local_secret(config: Config) -> bytes:
    """Read `daemon.secret_file`, or create `<state_dir>/reply-secret` (0600) on first use."""
    path = config.daemon.secret_file or config.daemon.state_dir / "reply-secret"
    try:
        value = path.read_bytes().strip()
    except FileNotFoundError:
        if config.daemon.secret_file is not None:
            raise ConfigError(f"daemon.secret_file {path}: does not exist") from None
        return _create(path)
    except OSError as exc:
        raise ConfigError(f"reply secret {path}: cannot be read ({exc.strerror})") from exc
    if len(value) < 16:
        raise ConfigError(f"reply secret {path}: too short (at least 16 characters)")
    return value


def _create(path: Path) -> bytes:
    value = secrets.token_hex(32).encode()
    try:
        private_dir(path.parent)  # the state directory: 0700
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker made it first
        return path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"reply secret {path}: cannot be created ({exc.strerror})") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(value)
    return value
