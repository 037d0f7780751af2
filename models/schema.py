"""The database schema: SQLAlchemy 2.x declarative models for cases, messages and the outbox.

Idempotency lives in the unique keys, not in code paths: a message is recorded once per
(mailbox, UIDVALIDITY, UID) and once per (mailbox, dedupe key); an acknowledgement is
queued once per case. Changes go through Alembic (models/migrations/versions).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (which keeps no zone) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use aware UTC times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)

    def __init__(self, **values: Any) -> None:
        """Column defaults apply at construction, not only at INSERT: a batch records many
        rows before one flush and reads them meanwhile (`case.stage`, `case.flags`)."""
        for column in self.__table__.columns:
            default = column.default
            if column.key not in values and default is not None and default.is_scalar:
                values[column.key] = default.arg
        cls = type(self)
        for key, value in values.items():
            if not hasattr(cls, key):
                raise TypeError(f"{key!r} is an invalid keyword argument for {cls.__name__}")
            setattr(self, key, value)


class ImapCursor(Base):
    """Per mailbox and UIDVALIDITY: the last UID fully recorded (where a restart resumes),
    and the last UID up to which every recorded message has its IMAP keyword."""

    __tablename__ = "imap_cursor"
    __table_args__ = (UniqueConstraint("mailbox", "uidvalidity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(64))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    # Every recorded message up to this UID has its IMAP keyword; those above it may not
    # yet (the keyword is set after the batch commits) and are set again after a crash.
    keyword_uid: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class ReferenceCounter(Base):
    """Per prefix and year, the last case number handed out (CMP-2026-00042)."""

    __tablename__ = "reference_counter"

    prefix: Mapped[str] = mapped_column(String(8), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Case(Base):
    __tablename__ = "case"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    mailbox: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(24), default="new")
    label: Mapped[str] = mapped_column(String(32))
    confidence: Mapped[float] = mapped_column(Float)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    flags: Mapped[str] = mapped_column(String(200), default="")
    model_version: Mapped[str] = mapped_column(String(64))
    complainant: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ack_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Why no acknowledgement is owed (automatic mail, rate limit...), when none is.
    no_ack_reason: Mapped[str | None] = mapped_column(String(64))
    ack_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    # The automatic reply the sender was sent: acknowledgement, thanks or signpost.
    automatic_reply: Mapped[str | None] = mapped_column(String(24))
    # A signposted case waits in `referral_pending` for staff to confirm it by this time.
    referral_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # How it ended (upheld, partly-upheld, not-upheld, resolved-early, withdrawn, referred)
    # and the summary staff gave; who answered the last stage (a different person answers
    # the next one).
    outcome: Mapped[str | None] = mapped_column(String(24))
    outcome_summary: Mapped[str | None] = mapped_column(Text)
    last_responder: Mapped[str | None] = mapped_column(String(320))
    # Early resolution before stage 1: when it is due, while the case is in it.
    early_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # How the complaint came: email, or logged by staff from phone, letter, web or in person.
    channel: Mapped[str] = mapped_column(String(16), default="email", server_default="email")
    # Someone acting for the complainant (advocate, family, solicitor, MP) and their
    # authority: pending (nothing personal goes to them), received (written consent), poa.
    representative: Mapped[str | None] = mapped_column(String(320))
    representative_name: Mapped[str | None] = mapped_column(String(200))
    representative_authority: Mapped[str | None] = mapped_column(String(16))
    # Routing and people.
    route: Mapped[str | None] = mapped_column(String(320))
    assigned_to: Mapped[str | None] = mapped_column(String(320))
    pseudonym: Mapped[str | None] = mapped_column(String(64))
    # The complaints procedure: current stage (0 = none) and its clock.
    stage: Mapped[int] = mapped_column(Integer, default=0)
    stage_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stage_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Until when the complainant may ask for the next stage (after a response).
    request_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    late_request: Mapped[bool] = mapped_column(Boolean, default=False)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    close_reason: Mapped[str | None] = mapped_column(String(24))

    @property
    def flag_names(self) -> list[str]:
        """`flags` as a list ("safeguarding", "no-pseudonym", ...)."""
        return [f for f in self.flags.split(",") if f]


class Message(Base):
    """An incoming message, raw bytes included: nothing the sender wrote is ever lost."""

    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("mailbox", "uidvalidity", "uid", name="uq_message_imap_uid"),
        UniqueConstraint("mailbox", "dedupe_key", name="uq_message_dedupe"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(64))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    dedupe_key: Mapped[str] = mapped_column(String(400))
    message_id: Mapped[str | None] = mapped_column(String(400))
    content_sha256: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), index=True)
    # Set instead of case_id when the case is new in this batch: the flush fills case_id.
    case: Mapped[Case | None] = relationship(lazy="raise_on_sql")
    # created | followup | automatic | quarantined
    outcome: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str | None] = mapped_column(Text)
    sender: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    # Whether its IMAP keyword is set yet: ImapCursor.keyword_uid.


class Outbox(Base):
    """Mail Candour sends, written in the same transaction as the decision to send it.

    status: pending -> claimed -> sending -> sent | failed. A row is `sending` only around
    its own SMTP transaction; when its worker is gone it becomes `in_doubt` (never resent
    automatically), and that worker's `claimed` rows go back to `pending`.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Indexed as the first column of ix_outbox_sent_copy and ix_outbox_rate (each index
    # costs an entry per row version: a row has four).
    mailbox: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), index=True)
    case: Mapped[Case | None] = relationship(lazy="raise_on_sql")
    kind: Mapped[str] = mapped_column(String(32))
    # Unique per case and kind for one-per-case mail (acknowledgement), else NULL.
    once_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    envelope_from: Mapped[str] = mapped_column(String(320))
    recipient: Mapped[str] = mapped_column(String(320))
    message_id: Mapped[str] = mapped_column(String(400), unique=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # in ix_outbox_due
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    # pending | done | none: whether the copy is in the mailbox's Sent folder yet.
    sent_copy: Mapped[str] = mapped_column(String(8), default="none")
    # The worker sending it (host:pid:start), while `sending`.
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    priority: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")


Index("ix_outbox_sent_copy", Outbox.mailbox, Outbox.sent_copy)
# Threading looks messages up by (mailbox, Message-ID); without this SQLite picks the
# (mailbox, dedupe_key) index and scans the whole mailbox (32 ms a lookup at 100,000).
Index("ix_message_thread", Message.mailbox, Message.message_id)
# The loop guard counts replies to one address in the last 24 hours, for every new case.
Index("ix_outbox_rate", Outbox.mailbox, Outbox.recipient, Outbox.created_at)
# The outbox sender looks for due pending rows all the time.
Index("ix_outbox_due", Outbox.status, Outbox.not_before)
# What the sender claims: priority first, then oldest first.
Index("ix_outbox_claim", Outbox.status, Outbox.priority, Outbox.id)


class CaseEvent(Base):
    """One line of a case's history: received, acknowledged, routed, replied..."""

    __tablename__ = "case_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    case: Mapped[Case] = relationship(lazy="raise_on_sql")
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(320), default="candour")
    detail: Mapped[str] = mapped_column(Text, default="")


class Correction(Base):
    """A label staff gave a case that differs from the classifier's: training material.

    Holds no address: the text for training is read from the message and scrubbed when a
    training set is exported (daemon.cli.corrections).
    """

    __tablename__ = "correction"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    old_label: Mapped[str] = mapped_column(String(32))
    new_label: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))  # "email-command" | "imap-folder" | "cli"
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class Extension(Base):
    """A stage's deadline moved, with the reason the complainant was given."""

    __tablename__ = "extension"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    stage: Mapped[int] = mapped_column(Integer)
    working_days: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    old_due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    new_due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(320))


class Remedy(Base):
    """What the organisation did to put things right: apology, explanation, payment..."""

    __tablename__ = "remedy"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(320))


class Lesson(Base):
    """A lesson or action learnt from a case, with an owner and a due date, chased until done."""

    __tablename__ = "lesson"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(320))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(320))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_by: Mapped[str | None] = mapped_column(String(320))


class Restriction(Base):
    """Contact restricted under the persistent or unacceptable contact procedure: the
    complainant's repeats are recorded without acknowledgement until the review date, when
    the manager is reminded and the restriction lapses unless renewed."""

    __tablename__ = "restriction"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(64))
    complainant: Mapped[str] = mapped_column(String(320), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"))
    reason: Mapped[str] = mapped_column(Text)
    review_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(320))
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Audit(Base):
    """Who read or erased personal data (cases show, export, erase), when and why; never the
    data subject's identifiers."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    os_user: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)


class Worker(Base):
    """A running `candour run`: its heartbeat, renewed by its outbox loop. A row in
    `sending` is only called in doubt once the worker that claimed it is gone."""

    __tablename__ = "worker"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MailboxSync(Base):
    """When its watcher last saw a mailbox through, and how much was waiting then."""

    __tablename__ = "mailbox_sync"

    mailbox: Mapped[str] = mapped_column(String(120), primary_key=True)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime())
    backlog: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str] = mapped_column(String(120), default="")


class MailboxLease(Base):
    """Which worker watches a mailbox, until when: on PostgreSQL several workers share the
    mailboxes, each watched by the one worker whose lease is unexpired (models.leases)."""

    __tablename__ = "mailbox_lease"

    mailbox: Mapped[str] = mapped_column(String(120), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LeaseWorker(Base):
    """A worker taking part in sharing the mailboxes, until when (renewed with its leases;
    deleted when it stops): the fair share is the mailboxes over these workers."""

    __tablename__ = "lease_worker"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    until: Mapped[datetime] = mapped_column(UTCDateTime())


class SharedSecret(Base):
    """A secret every worker on the database must agree on: `reply` signs per-case reply
    addresses, so a reply to an address one worker made is read by any other."""

    __tablename__ = "shared_secret"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
