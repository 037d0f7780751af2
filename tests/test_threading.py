"""Threading keys and case finding, from a table of .eml files (tests/mail/) and a table of
cases: no database, no server."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from daemon.mail.parse import parse_message
from daemon.triage.threading import ThreadKeys, find_case, thread_keys
from models.schema import Case
from tests.conftest import make_mailbox

MAIL = Path(__file__).parent / "mail"
SECRET = b"table-test-secret-0123"  # tests/mail/*-signed.eml carry addresses signed with it
MAILBOX = make_mailbox(staff_domains=["example.org"])


def keys(name: str) -> ThreadKeys:
    parsed = parse_message((MAIL / name).read_bytes())
    return thread_keys(parsed, MAILBOX.address, SECRET)


@pytest.mark.parametrize(
    ("name", "signed", "forged", "message_ids", "in_subject"),
    [
        ("plain-complaint.eml", None, False, (), ()),
        (
            "staff-reply-signed.eml",
            "CMP-2026-00042",
            False,
            ("copy-1@example.org", "plain-1@example.net"),
            ("CMP-2026-00042",),
        ),
        ("bcc-signed.eml", "CMP-2026-00042", False, (), ()),
        ("forged-case-address.eml", None, True, (), ("CMP-2026-00042",)),
        (
            "reply-by-references.eml",
            None,
            False,
            ("ack-1@example.org", "older-1@example.net"),
            (),
        ),
        ("subject-reference.eml", None, False, (), ("cmp-2026-00042",)),
    ],
)
def test_thread_keys(
    name: str,
    signed: str | None,
    forged: bool,
    message_ids: tuple[str, ...],
    in_subject: tuple[str, ...],
) -> None:
    found = keys(name)
    assert found.signed_reference == signed
    assert found.forged is forged
    assert found.message_ids == message_ids
    assert found.subject_references == in_subject


@dataclass
class Table:
    """A CaseFinder over a list of cases and the Message-IDs that belong to them."""

    cases: list[Case]
    message_ids: dict[str, Case] = field(default_factory=dict)

    def by_reference(self, reference: str) -> Case | None:
        return next((c for c in self.cases if c.reference == reference.upper()), None)

    def by_message_ids(self, ids: Sequence[str]) -> Case | None:
        return next((self.message_ids[m] for m in ids if m in self.message_ids), None)


def a_case(mailbox: str = "main") -> Case:
    return Case(reference="CMP-2026-00042", mailbox=mailbox, complainant="jane.citizen@example.net")


@pytest.mark.parametrize(
    ("name", "sender", "mailbox", "by_id", "threads", "via_address"),
    [
        ("plain-complaint.eml", "jane.citizen@example.net", "main", False, False, False),
        ("staff-reply-signed.eml", "pat.officer@example.org", "main", False, True, True),
        ("bcc-signed.eml", "pat.officer@example.org", "main", False, True, True),
        # another mailbox's case: the signed address is not enough
        ("staff-reply-signed.eml", "pat.officer@example.org", "other", False, False, False),
        # a forged address threads nothing; a stranger's subject reference neither
        ("forged-case-address.eml", "mallory@example.com", "main", False, False, False),
        ("reply-by-references.eml", "someone.else@example.net", "main", True, True, False),
        ("subject-reference.eml", "jane.citizen@example.net", "main", False, True, False),
        ("subject-reference.eml", "stranger@example.net", "main", False, False, False),
    ],
)
def test_find_case(
    name: str, sender: str, mailbox: str, by_id: bool, threads: bool, via_address: bool
) -> None:
    case = a_case(mailbox)
    table = Table([case], {"ack-1@example.org": case} if by_id else {})
    thread = find_case(keys(name), table, MAILBOX, sender)
    assert (thread.case is case) is threads
    assert thread.via_case_address is via_address


def test_staff_may_name_a_case_in_the_subject() -> None:
    case = a_case()
    thread = find_case(keys("subject-reference.eml"), Table([case]), MAILBOX, "pat@example.org")
    assert thread.case is case
