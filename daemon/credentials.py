"""Secrets the service manager hands over: systemd credentials (LoadCredential=).

systemd copies each credential into a private, read-only directory only the service can
read and names it in $CREDENTIALS_DIRECTORY (systemd.exec(5), "Credentials"). Unlike an
environment variable the value is not inherited by child processes or shown by
`systemctl show`, and unlike a file in /etc it need not be readable by the service user.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from daemon.policy import ConfigError


def read_credential(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The value of credential `name`, surrounding whitespace removed.

    Raises ConfigError, saying what to do, when $CREDENTIALS_DIRECTORY is unset or the
    credential cannot be read.
    """
    directory = (os.environ if environ is None else environ).get("CREDENTIALS_DIRECTORY")
    if not directory:
        raise ConfigError(
            f"password_credential {name!r}: $CREDENTIALS_DIRECTORY is not set (run under "
            f"systemd with LoadCredential={name}:/path/to/file, or use password_file)"
        )
    path = Path(directory) / name
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"password_credential {name!r}: {path} cannot be read ({exc.strerror}); "
            f"is there a LoadCredential={name}:... line in the unit?"
        ) from exc
