"""Fixtures: one private Dovecot and one SMTP sink per test session, a fresh mailbox per test."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import imapclient
import pytest
from hypothesis import settings
from sqlalchemy.orm import Session

from daemon.config import Config, MailboxConfig, load_config, parse_config
from tests.mailstack import Dovecot, Received, SmtpSink, write_config

REPO = Path(__file__).resolve().parent.parent
# The shared corpus of real-world edge-case emails (../shared/corpus, read its README).
CORPUS = Path(os.environ.get("CANDOUR_CORPUS", REPO.parent / "shared" / "corpus"))

# Property tests check answers, not speed (bench/ measures that): no per-example deadline,
# which a CI machine busy with other work once broke (a 200 ms limit on a regex test).
settings.register_profile("candour", deadline=None)
settings.load_profile("candour")


def need_corpus() -> None:
    """Skip a test that reads the shared corpus when it is absent; in CI (CI set), fail:
    CI puts shared/ beside the checkout, and a missing corpus there is a broken set-up."""
    if CORPUS.exists():
        return
    message = f"{CORPUS} not present (set CANDOUR_CORPUS to its path)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def corpus() -> Path:
    """The shared corpus (see need_corpus)."""
    need_corpus()
    return CORPUS


def corpus_catalog() -> list[tuple[Path, str]]:
    """Every file in the corpus's catalogue, with its category (auto_reply, bounce...)."""
    with (CORPUS / "public" / "CATALOG.tsv").open(newline="") as handle:
        return [
            (CORPUS / row["path"], row["category"])
            for row in csv.DictReader(handle, delimiter="\t")
        ]


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    # Not under pytest's 0700 temp base: Dovecot's auth process (user dovecot) must read it.
    root = Path(tempfile.mkdtemp(prefix="candour-dovecot-"))
    server = Dovecot(root).start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@dataclass
class Setup:
    """One test's mailbox, config file and helpers to drive it."""

    dovecot: Dovecot
    sink: SmtpSink
    user: str
    address: str
    config_path: Path
    db_path: Path

    @property
    def config(self) -> Config:
        return load_config(self.config_path)

    def imap(self) -> imapclient.IMAPClient:
        client = imapclient.IMAPClient("127.0.0.1", port=self.dovecot.port, ssl=False, timeout=10)
        client.login(self.user, "secret")
        return client

    def append(self, raw: bytes, folder: str = "INBOX", when: datetime | None = None) -> None:
        """APPEND `raw`; `when` sets its INTERNALDATE (when it reached the mailbox)."""
        client = self.imap()
        try:
            client.append(folder, raw, msg_time=when)
        finally:
            client.logout()

    def flags(self, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        client = self.imap()
        try:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            data = client.fetch(uids, ["FLAGS"]) if uids else {}
            return {uid: tuple(v[b"FLAGS"]) for uid, v in data.items()}
        finally:
            client.logout()

    def folder_count(self, folder: str) -> int:
        client = self.imap()
        try:
            return int(client.folder_status(folder, ["MESSAGES"])[b"MESSAGES"])
        finally:
            client.logout()

    def outgoing(self) -> list[Received]:
        """Everything this test's mailbox has sent to the SMTP sink."""
        return [m for m in self.sink.messages if m.mail_from == self.address]

    def wait_outgoing(self, count: int, timeout: float = 20.0) -> list[Received]:
        self.sink.wait_for(
            lambda msgs: sum(m.mail_from == self.address for m in msgs) >= count, timeout
        )
        return self.outgoing()

    def cases(self) -> list[dict[str, object]]:
        out = self.cli("cases", "list", "--json").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "daemon", *args, "--config", str(self.config_path)],
            capture_output=True,
            text=True,
            check=check,
            cwd=REPO,
            timeout=120,
        )

    def start_daemon(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", "--config", str(self.config_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )


@pytest.fixture
def setup(
    dovecot: Dovecot, smtp_sink: SmtpSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Setup:
    user = dovecot.new_user()
    address = f"complaints-{user}@example.org"
    monkeypatch.setenv("CANDOUR_TEST_IMAP_PASSWORD", "secret")
    db_path = tmp_path / "candour.db"
    config_path = tmp_path / "candour.toml"
    write_config(
        config_path,
        imap_port=dovecot.port,
        user=user,
        address=address,
        smtp_port=smtp_sink.port,
        db_url=f"sqlite:///{db_path}",
    )
    return Setup(dovecot, smtp_sink, user, address, config_path, db_path)


def queue_reply(
    session: Session,
    *,
    recipient: str,
    message_id: str,
    now: datetime,
    kind: str = "acknowledgement",
    case_id: int | None = None,
    once_key: str | None = None,
    raw: bytes = b"Subject: x\r\n\r\nx\r\n",
) -> None:
    """Queue one outbox row from the tests' mailbox "main" (complaints@example.org)."""
    from models import outbox
    from replies.compose import OutgoingMail

    mail = OutgoingMail(kind, message_id, "complaints@example.org", recipient, "x", raw)
    outbox.queue(session, mailbox="main", case_id=case_id, mail=mail, now=now, once_key=once_key)


def make_mail(
    *,
    sender: str = "Jane Citizen <jane.citizen@example.net>",
    to: str = "complaints@example.org",
    subject: str = "Complaint about my appointment",
    body: str = "I waited three hours and nobody told me why. I want a formal response.",
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
) -> tuple[bytes, str]:
    """A realistic message and its Message-ID (without brackets)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    mid = message_id or make_msgid(domain="example.net").strip("<>")
    msg["Message-ID"] = f"<{mid}>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes(), mid


def wait_until(
    condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not met after {timeout} s")


@pytest.fixture(autouse=True)
def _no_proxy_env() -> None:
    os.environ.pop("NOTIFY_SOCKET", None)


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the local server, dropped afterwards."""
    import uuid

    import psycopg

    name = f"candour_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("CANDOUR_SKIP_POSTGRES") == "1":
            pytest.skip(f"PostgreSQL unavailable and CANDOUR_SKIP_POSTGRES=1: {exc}")
        raise
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_mailbox(**fields: Any) -> MailboxConfig:
    """One mailbox's configuration as the daemon parses it, with `fields` on top."""
    config = parse_config(
        {
            "smtp": {"host": "127.0.0.1"},
            "mailbox": [
                {
                    "name": "main",
                    "address": "complaints@example.org",
                    "organisation": "Example Trust",
                    "imap": {"host": "127.0.0.1", "username": "u"},
                    **fields,
                }
            ],
        },
        "test",
    )
    return config.mailbox[0]
