"""Secrets and personal data: what the logs may say, and who may read Candour's files.

The real daemon runs at debug level through a session with failures (an SMTP server that
refuses the complainant quoting her address, an unparseable message, a mailbox whose IMAP
login is refused) and no password, reply secret, body text or complainant's address may
appear in anything it wrote. Its state, database, lock and model files are private
whatever the umask, and check-config says when others can read them.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from sqlalchemy.exc import IntegrityError

from daemon import logs
from daemon.cli.checks import exposure_warnings
from daemon.config import load_config
from tests.conftest import REPO, make_mail, wait_until
from tests.mailstack import Dovecot, free_port

COMPLAINANT = "priya.k.confidential@example.net"
BODY_MARK = "tangerine-ward-nine"
SMTP_PASSWORD = "Smtp-Pa55word-c0ffee-7d1e"
WRONG_IMAP_PASSWORD = "Imap-Wr0ng-Pa55word-81f2"


@dataclass
class _RefusingHandler:
    """Accepts mail for everyone but the complainant, whose address it quotes in its 550
    (as Postfix does: "<x@y>: Recipient address rejected")."""

    delivered: list[Envelope] = field(default_factory=list)

    async def handle_RCPT(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address == COMPLAINANT:
            return f"550 5.1.1 <{address}>: Recipient address rejected: {address} unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.delivered.append(envelope)
        return "250 OK"


def _authenticate(
    server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok)


@pytest.fixture
def refusing_smtp() -> Iterator[tuple[int, _RefusingHandler]]:
    handler = _RefusingHandler()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticate,
        auth_required=False,  # offered, and the daemon logs in (with the right password)
        auth_require_tls=False,
    )
    controller.start()
    yield port, handler
    controller.stop()


def _mailbox(name: str, user: str, port: int, password: str) -> str:
    return f"""
[[mailbox]]
name = "{name}"
address = "complaints-{user}@example.org"
organisation = "Example Trust"
staff_domains = ["example.org"]
[mailbox.routes]
complaint = "team@example.org"
review = "team@example.org"
[mailbox.reminders]
enabled = false
[mailbox.imap]
host = "127.0.0.1"
port = {port}
security = "none"
username = "{user}"
password_file = "{password}"
poll_seconds = 1
timeout = 10
"""


def _secret_file(path: Path, value: str) -> Path:
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The group-writable umask of many distributions: files are made 0664 unless asked."""
    previous = os.umask(0o002)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_failing_session_leaves_no_secret_or_personal_data_in_the_logs(
    dovecot: Dovecot,
    refusing_smtp: tuple[int, _RefusingHandler],
    tmp_path: Path,
    permissive_umask: None,
) -> None:
    smtp_port, handler = refusing_smtp
    good, bad = dovecot.new_user(), dovecot.new_user()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    state = tmp_path / "state"  # made by the daemon
    config_path = tmp_path / "candour.toml"
    config_path.write_text(
        f"""
[daemon]
state_dir = "{state}"
log_level = "debug"
[database]
url = "sqlite:///{state}/candour.db"
[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
username = "candour"
password_file = "{_secret_file(secrets / "smtp", SMTP_PASSWORD)}"
"""
        + _mailbox("main", good, dovecot.port, str(_secret_file(secrets / "imap", "secret")))
        + _mailbox(
            "broken", bad, dovecot.port, str(_secret_file(secrets / "wrong", WRONG_IMAP_PASSWORD))
        )
    )
    config = load_config(config_path)
    complaint, _ = make_mail(
        sender=f"Priya Kaur <{COMPLAINANT}>",
        to=config.mailbox[0].address,
        subject="Complaint about the discharge",
        body=f"I am making a formal complaint. On {BODY_MARK} my father was sent home "
        "without his medication and nobody called us. I want an explanation.",
    )
    client = _imap(dovecot, good)
    try:
        client.append("INBOX", complaint)
        client.append("INBOX", b"\r\n\r\n")  # not mail at all: quarantined
    finally:
        client.logout()

    daemon = subprocess.Popen(
        [sys.executable, "-m", "daemon", "run", "--config", str(config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        wait_until(lambda: len(handler.delivered) >= 1, 60, "the staff copy")
        wait_until(lambda: _outbox_failed(state / "candour.db"), 30, "the refused ack")
    finally:
        daemon.terminate()
        out, err = daemon.communicate(timeout=60)
    written = out + err
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    names = {e["event"] for e in events}
    assert {"message.quarantined", "outbox.failed"} <= names, sorted(names)
    assert any(e["level"] == "debug" for e in events)  # debug really was on
    refused = [e for e in events if e["event"] == "outbox.failed"]
    assert "<address>" in refused[0]["detail"]  # the server's words, the address redacted
    login = [e for e in events if e.get("mailbox") == "broken" and e["level"] != "debug"]
    assert login, "the refused IMAP login was not logged"
    reply_secret = (state / "reply-secret").read_text().strip()
    for private in (
        SMTP_PASSWORD,
        WRONG_IMAP_PASSWORD,
        reply_secret,
        BODY_MARK,
        COMPLAINANT,
        "priya.k.confidential",
        "Priya",
    ):
        assert private not in written, private

    # Nothing it made is open to other accounts, whatever the umask said.
    assert _mode(state) == 0o700
    for name in ("reply-secret", "candour.db", "candour.db.worker-lock"):
        assert _mode(state / name) == 0o600, name
    for name in ("candour.db-wal", "candour.db-shm"):
        if (state / name).exists():
            assert _mode(state / name) == 0o600, name
    assert exposure_warnings(config) == []


def _imap(dovecot: Dovecot, user: str) -> Any:
    import imapclient

    client = imapclient.IMAPClient("127.0.0.1", port=dovecot.port, ssl=False, timeout=10)
    client.login(user, "secret")
    return client


def _outbox_failed(database: Path) -> bool:
    import sqlite3

    if not database.exists():
        return False
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        try:
            rows = connection.execute("SELECT count(*) FROM outbox WHERE status = 'failed'")
        except sqlite3.OperationalError:
            return False
        return bool(rows.fetchone()[0])


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    logs.configure("debug", file=stream)
    yield stream
    logs.configure("info")


def test_tracebacks_and_library_records_are_redacted(captured: io.StringIO) -> None:
    token = "reply-secret-3b7f0c2d9e"
    logs.never_log(token)
    log = structlog.get_logger("candour.test")
    try:
        complainant = "sam.private@example.net"
        raise ValueError(f"no case for {complainant} signed with {token}")
    except ValueError:
        log.exception("stage.failed", mailbox="main")
        logging.getLogger("some.library").error("sending to %s failed", "x.y@example.com")
        logging.getLogger("some.library").exception("again")
    try:  # a database error quotes the values of the statement that failed
        with sqlite3.connect(":memory:") as connection:
            connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
            sql = "INSERT INTO notes (id, text) VALUES (?, ?)"
            for _ in range(2):
                connection.execute(sql, (1, "My father on Ward 9 was left alone"))
    except sqlite3.IntegrityError as exc:
        wrapped = IntegrityError(sql, (1, "My father on Ward 9 was left alone"), exc)
        log.error("batch.failed", error=str(wrapped))
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert [line["event"] for line in lines] == [
        "stage.failed",
        "sending to <address> failed",
        "again",
        "batch.failed",
    ]
    assert "UNIQUE constraint failed: notes.id" in lines[3]["error"]
    assert "[parameters: <hidden>]" in lines[3]["error"]
    text = captured.getvalue()
    assert "Traceback" in lines[0]["exception"]  # still useful: where it failed
    assert "ValueError: no case for <address> signed with <secret>" in lines[0]["exception"]
    assert "ValueError" in lines[2]["exception"]
    for leaked in ("sam.private", "example.net", token, "x.y@", "Ward 9"):
        assert leaked not in text, leaked
    assert "complainant =" not in text  # no local variables in tracebacks


def test_model_versions_are_private_whatever_the_umask(
    tmp_path: Path, permissive_umask: None
) -> None:
    from classifiers.model import ModelClassifier
    from classifiers.safety import SafetyNet, shipped_rules
    from classifiers.store import ModelStore
    from classifiers.train import build_info, evaluate, fit, packaged_data, read_examples
    from classifiers.types import LABELS

    def first(name: str, per_label: int) -> list[Any]:
        examples = read_examples(packaged_data(name))
        return [
            e for label in LABELS for e in [x for x in examples if x.label == label][:per_label]
        ]

    chosen = first("train", 6)
    pipeline = fit(chosen)
    safety = SafetyNet(shipped_rules())
    metrics = evaluate(ModelClassifier(pipeline, "v1", safety, 0.5), first("heldout", 2))
    store = ModelStore(tmp_path / "state")
    info = build_info(pipeline, "svm-sigmoid", chosen, metrics).model_copy(update={"version": "v1"})
    store.save(pipeline, info)
    store.promote("v1")
    assert _mode(tmp_path / "state") == 0o700
    assert _mode(store.root) == 0o700
    assert _mode(store.root / "v1") == 0o700
    files = [p for p in store.root.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"model.skops", "model.json", "CURRENT", "history.jsonl"}
    assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}


def test_check_config_says_who_else_can_read_secrets_and_state(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    password = tmp_path / "smtp-password"
    password.write_text("x" * 20)
    password.chmod(0o640)
    secret = state / "reply-secret"
    secret.write_text("y" * 64)
    secret.chmod(0o644)
    config_path = tmp_path / "candour.toml"
    config_path.write_text(
        f"""
[daemon]
state_dir = "{state}"
[database]
url = "sqlite:///{state}/candour.db"
[smtp]
host = "127.0.0.1"
username = "candour"
password_file = "{password}"
"""
        + _mailbox("main", "user1", 993, str(password)).replace(
            'staff_domains = ["example.org"]\n', ""
        )
    )
    said = exposure_warnings(load_config(config_path))
    assert said == [
        f"smtp: password_file {password} is readable by its group (chmod 600)",
        f"mailbox main: imap: password_file {password} is readable by its group (chmod 600)",
        f"daemon.state_dir {state} can be read by others (chmod 700)",
        f"reply secret {secret} can be read by others (chmod 600)",
    ]
    password.chmod(0o600)
    state.chmod(0o700)
    secret.chmod(0o600)
    assert exposure_warnings(load_config(config_path)) == []
