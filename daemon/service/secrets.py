"""The secret that signs per-case reply addresses: configured, or made once and kept."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from daemon import logs
from daemon.config import Config, ConfigError
from models.database import private_dir


def reply_secret(config: Config) -> bytes:
    """The reply-signing secret (see _reply_secret), kept out of the logs from now on."""
    value = _reply_secret(config)
    logs.never_log(value)
    return value


def _reply_secret(config: Config) -> bytes:
    """Read `daemon.secret_file`, or create `<state_dir>/reply-secret` (0600) on first use.

    Raises ConfigError when the configured file cannot be read or the state directory
    cannot be written.
    """
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
