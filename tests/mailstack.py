"""A private mail stack on 127.0.0.1 for tests, the demo and benchmarks.

Dovecot (Debian's dovecot-imapd) runs from a config in a temporary directory on a free
port; an aiosmtpd controller is the SMTP sink that records everything Candour sends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session

DOVECOT_CONF = """\
protocols = imap
listen = 127.0.0.1
instance_name = candour-test-{port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
first_valid_uid = 1
mail_uid = 65534
mail_gid = 65534
mail_location = maildir:{root}/mail/%u/Maildir
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users
  default_fields = home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
protocol imap {{
  mail_max_userip_connections = 200
}}
# Dovecot wakes an IDLE session through inotify, and the kernel allows 128 inotify
# instances per user (fs.inotify.max_user_instances); every session here runs as one uid
# (65534). Past 128 sessions Dovecot logs "Inotify instance limit ... exceeded" and checks
# the mailbox only every mailbox_idle_check_interval (30 s by default): with 200 watched
# mailboxes, a quarter of them answered ~28 s late (bench/mailboxes.py). A production
# Dovecot needs the sysctl raised (README, Operations); this private one checks every second.
mailbox_idle_check_interval = 1 secs
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def ensure_dovecot() -> str:
    """Path of the dovecot binary; `make test` installs dovecot-imapd when it is missing."""
    path = shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
    )
    if path is None:
        raise RuntimeError(
            "dovecot is not installed: run `make deps` (apt-get install dovecot-imapd)"
        )
    return path


class Dovecot:
    """A private Dovecot instance; users are added on the fly (passwd-file is re-read)."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.conf = root / "dovecot.conf"
        self.binary = ensure_dovecot()
        self._lock = threading.Lock()
        self._next_user = 0

    def start(self) -> Dovecot:
        root = self.root
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o755)  # the auth process runs as user dovecot
        (root / "mail").mkdir(exist_ok=True)
        os.chown(root / "mail", 65534, 65534)
        users = root / "users"
        if not users.exists():
            # Accounts exist from the start: Dovecot may not notice a passwd-file changed
            # within the same second, so adding users on the fly is unreliable.
            users.write_text("".join(f"user{n}:{{PLAIN}}secret::::::\n" for n in range(1, 401)))
        self.conf.write_text(DOVECOT_CONF.format(root=root, port=self.port))
        subprocess.run([self.binary, "-c", str(self.conf)], check=True)
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        """Stop as `systemctl stop dovecot` does: the master, then every session left.

        `doveadm stop` alone leaves running sessions serving their clients; systemd then
        sends SIGTERM to the rest of the unit, and each session says BYE and closes.
        """
        subprocess.run(
            ["doveadm", "-c", str(self.conf), "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    time.sleep(0.1)
            except OSError:
                break
        subprocess.run(["pkill", "-TERM", "-f", f"candour-test-{self.port}/"], check=False)
        while time.monotonic() < deadline:
            alive = subprocess.run(
                ["pgrep", "-f", f"candour-test-{self.port}/"], capture_output=True
            )
            if alive.returncode != 0:
                return
            time.sleep(0.05)

    def kill(self) -> None:
        """Kill the instance and every session it serves, as a crash would."""
        subprocess.run(["pkill", "-KILL", "-f", f"dovecot -c {self.conf}"], check=False)
        subprocess.run(["pkill", "-KILL", "-f", f"dovecot-candour-test-{self.port}/"], check=False)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            alive = subprocess.run(
                ["pgrep", "-f", f"candour-test-{self.port}/"], capture_output=True
            )
            if alive.returncode != 0:
                break
            time.sleep(0.05)
        for stale in (self.root / "run").glob("*"):
            if stale.name in {"master.pid"}:
                stale.unlink()

    def new_user(self) -> str:
        """A fresh, empty account (user1 ... user400, password "secret")."""
        with self._lock:
            self._next_user += 1
            if self._next_user > 400:
                raise RuntimeError("the private Dovecot has no unused accounts left")
            return f"user{self._next_user}"

    def set_uidvalidity(self, user: str, value: int, folder: str = "INBOX") -> None:
        subprocess.run(
            [
                "doveadm",
                "-c",
                str(self.conf),
                "mailbox",
                "update",
                "-u",
                user,
                "--uid-validity",
                str(value),
                folder,
            ],
            check=True,
        )


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    at: float

    @property
    def message(self) -> Message:
        return message_from_bytes(self.data)


@dataclass
class _Handler:
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        item = Received(
            str(envelope.mail_from),
            [str(r) for r in envelope.rcpt_tos],
            bytes(envelope.original_content or envelope.content or b""),  # type: ignore[arg-type]
            time.time(),
        )
        with self.arrived:
            self.received.append(item)
            self.arrived.notify_all()
        return "250 OK"


class SmtpSink:
    """An aiosmtpd server on loopback that keeps every message it is given."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._handler = _Handler()
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def messages(self) -> list[Received]:
        with self._handler.lock:
            return list(self._handler.received)

    @property
    def count(self) -> int:
        with self._handler.lock:
            return len(self._handler.received)

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.rcpt_tos]

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> list[Received]:
        """Wait until predicate(messages) is true; returns the messages."""
        deadline = time.monotonic() + timeout
        with self._handler.arrived:
            while True:
                found = list(self._handler.received)
                if predicate(found):
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"SMTP sink: condition not met after {timeout} s ({len(found)} messages)"
                    )
                self._handler.arrived.wait(remaining)


def write_config(
    path: Path,
    *,
    imap_port: int,
    user: str,
    address: str,
    smtp_port: int,
    db_url: str,
    extra_mailbox: str = "",
    state_dir: Path | None = None,
    log_level: str = "debug",
    password_env: str = "CANDOUR_TEST_IMAP_PASSWORD",
    password_file: Path | None = None,
    idle_renew_seconds: int = 60,
    imap_timeout: int = 10,
    reminders: bool = False,
) -> Path:
    """A daemon configuration for one mailbox on the private stack (tests, demo, bench).

    The daily digests are off unless `reminders`: they go out from 08:30 on working days,
    so with them on, what a run sends would depend on the time of day (digests are
    tested with a settable clock in tests/test_reminders.py).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""
[daemon]
state_dir = "{state_dir or path.parent / "state"}"
log_level = "{log_level}"

[database]
url = "{db_url}"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"

[[mailbox]]
name = "main"
address = "{address}"
organisation = "Example Trust"
ack_within_working_days = 1
region = "ENG"
{extra_mailbox}
[mailbox.imap]
host = "127.0.0.1"
port = {imap_port}
security = "none"
username = "{user}"
{f'password_file = "{password_file}"' if password_file else f'password_env = "{password_env}"'}
idle_renew_seconds = {idle_renew_seconds}
poll_seconds = 1
timeout = {imap_timeout}

[mailbox.reminders]
enabled = {"true" if reminders else "false"}
"""
    )
    return path
