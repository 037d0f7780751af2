"""Typed values passed between the mailbox watcher and the pipeline."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Outcome(StrEnum):
    """What happened to one incoming message; the watcher maps it to IMAP keywords."""

    CREATED = "created"  # a new case was opened
    FOLLOWUP = "followup"  # joined an existing case
    AUTOMATIC = "automatic"  # machine-written mail (bounce, auto-reply, list): no reply
    STAFF = "staff"  # a staff reply or note on a case
    DUPLICATE = "duplicate"  # already recorded (same UID, Message-ID or content)
    QUARANTINED = "quarantined"  # kept but could not be processed: a human must look


@dataclass(frozen=True)
class RawMessage:
    """One message as fetched from IMAP."""

    uid: int
    raw: bytes = field(repr=False)
    received_at: datetime  # IMAP INTERNALDATE: when it reached the mailbox

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


@dataclass(frozen=True)
class Result:
    uid: int
    outcome: Outcome
    reference: str | None = None
    reason: str | None = None
