"""Staff corrections become training examples with no address or phone number left in them."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner

from classifiers.store import ModelStore
from classifiers.train import packaged_data, read_examples
from classifiers.types import LABELS
from daemon.cli.corrections import training_examples
from daemon.cli.main import main
from models.database import Database
from models.schema import Case, Correction, Message

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SENDER = "jo.bloggs@mail.example"
PHONES = ["07700 900123", "+44 20 7946 0000", "(01632) 960 001"]


@pytest.fixture(autouse=True)
def isolated_logging() -> Iterator[None]:
    """The CLI configures structlog and the root logger for the process; undo it after."""
    saved, root = structlog.get_config(), logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


def _raw_message() -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Jo Bloggs <{SENDER}>"
    mail["Reply-To"] = "jb.private@other.example"
    mail["To"] = "complaints@example.org"
    mail["Subject"] = f"Complaint from {SENDER}, call {PHONES[0]}"
    mail["Message-ID"] = "<abc123@mail.example>"
    mail.set_content(
        "I am writing about the care my mother received on Ward 5.\n"
        "I have made two complaints before.\n"
        f"Please call me on {PHONES[0]} or {PHONES[1]}, or write to {SENDER}.\n"
        f"My sister (jb.private@other.example, {PHONES[2]}) saw it too.\n"
        "My username here is jo.bloggs.\n\n"
        "On Mon, 2 Mar 2026 at 09:00, Complaints <complaints@example.org> wrote:\n"
        f"> Dear Jo, we have your email {SENDER}.\n"
    )
    return bytes(mail)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'candour.db'}")
    db.upgrade()
    yield db
    db.dispose()


def _case_and_message(db: Database, reference: str, uid: int) -> tuple[int, int]:
    with db.transaction() as session:
        case = Case(
            reference=reference,
            mailbox="main",
            label="complaint",
            confidence=0.8,
            model_version="test",
            complainant=SENDER,
            subject="Complaint",
            received_at=NOW,
            created_at=NOW,
        )
        session.add(case)
        session.flush()
        message = Message(
            mailbox="main",
            uidvalidity=1,
            uid=uid,
            dedupe_key=f"uid:{uid}",
            content_sha256="0" * 64,
            case_id=case.id,
            outcome="created",
            sender=SENDER,
            subject="Complaint",
            received_at=NOW,
            recorded_at=NOW,
            raw=_raw_message(),
        )
        session.add(message)
        session.flush()
        return case.id, message.id


def _correct(
    db: Database, case_id: int, message_id: int | None, label: str, minutes: int = 0
) -> None:
    with db.transaction() as session:
        session.add(
            Correction(
                case_id=case_id,
                message_id=message_id,
                old_label="complaint",
                new_label=label,
                source="cli",
                at=NOW + timedelta(minutes=minutes),
            )
        )


def test_corrections_are_exported_without_any_address_or_phone(database: Database) -> None:
    case_id, message_id = _case_and_message(database, "CMP-2026-00001", 1)
    _correct(database, case_id, message_id, "safeguarding")
    with database.reader() as session:
        (example,) = training_examples(session)
    assert example["label"] == "safeguarding"
    text = example["subject"] + "\n" + example["body"]
    assert "care my mother received on Ward 5" in example["body"]
    assert "two complaints before" in example["body"]  # the mailbox's own name is not scrubbed
    assert "@" not in text
    for secret in ("jo.bloggs", "jb.private", "mail.example", "other.example"):
        assert secret not in text.lower()
    digits = "".join(re.findall(r"\d", text))
    for phone in PHONES:
        assert "".join(re.findall(r"\d", phone))[-6:] not in digits
    assert "we have your email" not in text  # quoted history is not what the sender wrote


def test_latest_correction_wins_and_a_case_level_correction_uses_its_message(
    database: Database,
) -> None:
    first_case, first_message = _case_and_message(database, "CMP-2026-00002", 2)
    _correct(database, first_case, first_message, "hr", minutes=0)
    _correct(database, first_case, first_message, "data_protection", minutes=5)
    second_case, _ = _case_and_message(database, "CMP-2026-00003", 3)
    _correct(database, second_case, None, "feedback")
    with database.reader() as session:
        labels = sorted(e["label"] for e in training_examples(session))
    assert labels == ["data_protection", "feedback"]
    assert set(labels) <= set(LABELS)


def test_train_include_corrections_reads_the_configured_database(
    tmp_path: Path, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CANDOUR_CONFIG", raising=False)
    case_id, message_id = _case_and_message(database, "CMP-2026-00004", 4)
    _correct(database, case_id, message_id, "feedback")
    secret = tmp_path / "imap-password"
    secret.write_text("x")
    config = tmp_path / "candour.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n\n'
        f'[database]\nurl = "{database.url}"\n\n'
        '[smtp]\nhost = "127.0.0.1"\n\n'
        '[[mailbox]]\nname = "main"\naddress = "complaints@example.org"\n'
        'organisation = "Example Trust"\n[mailbox.imap]\nhost = "127.0.0.1"\n'
        f'username = "complaints"\npassword_file = "{secret}"\n'
    )
    small = tmp_path / "small.jsonl"
    examples = read_examples(packaged_data("train"))
    small.write_text(
        "".join(
            json.dumps({"label": e.label, "subject": e.subject, "body": e.body}) + "\n"
            for label in LABELS
            for e in [x for x in examples if x.label == label][:6]
        )
    )
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--config",
            str(config),
            "--data",
            str(small),
            "--heldout",
            str(small),
            "--include-corrections",
            "--force",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    assert "adding 1 staff correction(s)" in result.stdout
    ((_, info),) = ModelStore(tmp_path / "state").versions()
    assert info is not None
    assert info.training_examples == 6 * len(LABELS) + 1
