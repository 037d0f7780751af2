"""Threading: which existing case a message continues, if any.

`thread_keys` reads a parsed message's keys (pure): a signed case reply address among its
recipients or delivery headers, the Message-IDs it answers, case references in its subject.
`find_case` decides from those keys, asking a `CaseFinder` for the cases they name, in
this order: a validly signed case address; In-Reply-To or References naming a message of
a case (received or sent); a reference in the subject, only from the case's own
complainant or staff (anyone can type a reference). A forged case address (our shape, a
bad signature) threads nothing by itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from daemon.config import MailboxConfig
from daemon.mail.parse import ParsedMessage
from models import cases
from models.schema import Case
from replies.addresses import is_new_case_address, signed_reference

_REFERENCE = re.compile(r"\b([A-Z]{2,6}-\d{4}-\d{5})\b", re.IGNORECASE)
_DELIVERY_HEADERS = ("delivered-to", "x-original-to", "envelope-to")


@dataclass(frozen=True)
class ThreadKeys:
    """What in a message can name the case it belongs to."""

    signed_reference: str | None  # from a validly signed case reply address
    forged: bool  # an address had our case-address shape but a bad signature
    message_ids: tuple[str, ...]  # the Message-IDs it answers, nearest first
    subject_references: tuple[str, ...]
    new_case: bool = False  # sent to the signed new-case address (staff logging a complaint)

    @property
    def references(self) -> tuple[str, ...]:
        """Every case reference named, signed first."""
        signed = (self.signed_reference,) if self.signed_reference else ()
        return (*signed, *self.subject_references)


def delivery_addresses(parsed: ParsedMessage) -> list[str]:
    """Envelope recipients that MTAs record in headers (a Bcc'd case address shows here)."""
    found: list[str] = []
    for header in _DELIVERY_HEADERS:
        for value in parsed.header(header):
            found.extend(a.strip("<> ").lower() for a in value.split(",") if "@" in a)
    return found


def thread_keys(parsed: ParsedMessage, mailbox_address: str, secret: bytes) -> ThreadKeys:
    """The threading keys of `parsed` for the mailbox at `mailbox_address`. Pure."""
    addressed = (*parsed.recipients, *delivery_addresses(parsed))
    reference, forged = signed_reference(addressed, mailbox_address, secret)
    return ThreadKeys(
        reference,
        forged,
        parsed.thread_ids,
        tuple(_REFERENCE.findall(parsed.subject)),
        is_new_case_address(addressed, mailbox_address, secret),
    )


class CaseFinder(Protocol):
    """Looks cases up by the keys a message carries (a database session, or a table)."""

    def by_reference(self, reference: str) -> Case | None: ...

    def by_message_ids(self, ids: Sequence[str]) -> Case | None: ...


@dataclass(frozen=True)
class Thread:
    case: Case | None
    via_case_address: bool  # reached by its signed reply address: staff replies count


NO_THREAD = Thread(None, False)


def find_case(keys: ThreadKeys, finder: CaseFinder, mailbox: MailboxConfig, sender: str) -> Thread:
    """The case this message continues (see the module's docstring for the order)."""
    if keys.signed_reference is not None:
        case = finder.by_reference(keys.signed_reference)
        if case is not None and case.mailbox == mailbox.name:
            return Thread(case, True)
    case = finder.by_message_ids(keys.message_ids)
    if case is not None:
        return Thread(case, False)
    for reference in keys.subject_references:
        found = finder.by_reference(reference)
        if (
            found is not None
            and found.mailbox == mailbox.name
            and (found.complainant == sender or mailbox.is_staff(sender))
        ):
            return Thread(found, False)
    return NO_THREAD


@dataclass(frozen=True)
class SessionFinder:
    """A CaseFinder on the database, in the caller's session (see models.cases.index_threads)."""

    session: Session
    mailbox: str

    def by_reference(self, reference: str) -> Case | None:
        return cases.case_by_reference(self.session, reference)

    def by_message_ids(self, ids: Sequence[str]) -> Case | None:
        return cases.case_for_message_ids(self.session, self.mailbox, ids)
