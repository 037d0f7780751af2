"""Training examples from staff corrections: the sender's text, relabelled, with every
email address and phone number removed, so no complainant's contact details ever reach a
training set."""

from __future__ import annotations

import re

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from classifiers.text import scrub_contacts, sender_text
from classifiers.types import LABELS
from daemon.mail.parse import ParseError, parse_message
from models.schema import Correction, Message

log = structlog.get_logger("candour.classifier")

# A local part like "jo.bloggs" or "jb88" identifies someone even without its domain, so
# it is removed wherever it appears; plain words ("mark", "info") are left alone.
_IDENTIFIER_LIKE = re.compile(r"^(?=.*[._\-\d])[\w.\-+]{4,}$")


def _known_addresses(headers: dict[str, tuple[str, ...]], *addresses: str | None) -> set[str]:
    """The sender's addresses (From, Reply-To, Sender, Return-Path and those given),
    lower-cased. The mailbox's own addresses (To, Cc) are not the complainant's."""
    found = {a.lower() for a in addresses if a}
    for name in ("from", "reply-to", "sender", "return-path"):
        for value in headers.get(name, ()):
            found.update(m.lower() for m in re.findall(r"[^\s<>,;\"']+@[^\s<>,;\"']+", value))
    return found


def scrub(text: str, addresses: set[str]) -> str:
    """Return `text` without the given addresses (and their local parts), then without any
    other email address, URL or phone number (text.scrub_contacts)."""
    for address in sorted(addresses, key=len, reverse=True):
        text = re.sub(re.escape(address), "[email]", text, flags=re.IGNORECASE)
        local = address.split("@", 1)[0]
        if _IDENTIFIER_LIKE.match(local):
            text = re.sub(rf"(?<!\w){re.escape(local)}(?!\w)", "[email]", text, flags=re.I)
    return scrub_contacts(text)


def _message_for(session: Session, correction: Correction) -> Message | None:
    """The corrected message: the one named, else the first message of the case."""
    if correction.message_id is not None:
        return session.get(Message, correction.message_id)
    return session.scalars(
        select(Message).where(Message.case_id == correction.case_id).order_by(Message.id)
    ).first()


def training_examples(session: Session) -> list[dict[str, str]]:
    """Return one {label, subject, body} per corrected message, labelled with the latest
    correction, text prepared as the model reads it, contacts scrubbed.

    Messages that no longer parse, or corrections to unknown labels, are skipped (logged as
    corrections.skipped with the correction id only).
    """
    latest: dict[int, tuple[Correction, Message]] = {}
    for correction in session.scalars(select(Correction).order_by(Correction.at, Correction.id)):
        if correction.new_label not in LABELS:
            log.warning("corrections.skipped", correction=correction.id, reason="unknown label")
            continue
        message = _message_for(session, correction)
        if message is None:
            log.warning("corrections.skipped", correction=correction.id, reason="no message")
            continue
        latest[message.id] = (correction, message)
    examples = []
    for correction, message in latest.values():
        try:
            parsed = parse_message(message.raw)
        except ParseError:
            log.warning("corrections.skipped", correction=correction.id, reason="unparseable")
            continue
        addresses = _known_addresses(parsed.headers, parsed.sender, parsed.reply_to, message.sender)
        examples.append(
            {
                "label": correction.new_label,
                "subject": scrub(parsed.subject, addresses),
                "body": scrub(sender_text(parsed.text), addresses),
            }
        )
    return examples
