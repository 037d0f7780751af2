"""The triage pipeline: the ordered stages every incoming message goes through.

    parse -> detect automatic mail -> classify -> dedupe -> thread -> open or continue
    a case -> decide and queue the automatic reply -> record

The first three stages are pure and run on the whole batch (classification is batched
for speed). The rest run in one database transaction per batch, each message inside its
own savepoint: a message that fails is rolled back alone and quarantined (raw bytes kept,
reason recorded), never dropped, and never stops the batch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.orm import Session

from classifiers.types import Classification, Classifier, ClassifierInput
from daemon.automatic import automatic_reason
from daemon.clock import Clock
from daemon.config import MailboxConfig
from daemon.parse import ParsedMessage, ParseError, parse_message
from daemon.values import Outcome, RawMessage, Result
from daemon.deadlines import acknowledgement_limit, calendar_for
from daemon.workdays import WorkingCalendar
from models import cases, outbox
from models.database import Database
from models.schema import Case, Message
from replies import compose
from replies.policy import automatic_reply_decision
from replies.templates import Templates

log = structlog.get_logger("candour.pipeline")

_REFERENCE = re.compile(r"\b([A-Z]{2,6}-\d{4}-\d{5})\b", re.IGNORECASE)


@dataclass(frozen=True)
class Prepared:
    """A message after the pure stages."""

    raw: RawMessage
    parsed: ParsedMessage | None
    parse_error: str | None
    automatic: str | None
    classification: Classification | None = None

    @property
    def dedupe_key(self) -> str:
        if self.parsed is not None and self.parsed.message_id:
            return f"mid:{self.parsed.message_id}"[:400]
        return f"sha256:{self.raw.sha256}"


def prepare(raw: RawMessage, own_addresses: frozenset[str]) -> Prepared:
    """Stages 1-2: parse, and recognise machine-written mail. Pure."""
    try:
        parsed = parse_message(raw.raw)
    except ParseError as exc:
        return Prepared(raw, None, str(exc), None)
    return Prepared(raw, parsed, None, automatic_reason(parsed, own_addresses))


def classify_batch(classifier: Classifier, items: Sequence[Prepared]) -> list[Prepared]:
    """Stage 3: label every message a person wrote; a classifier failure sends it to review."""
    wanted = [i for i, p in enumerate(items) if p.parsed is not None and p.automatic is None]
    inputs = [
        ClassifierInput(items[i].parsed.subject, items[i].parsed.text, items[i].parsed.sender)  # type: ignore[union-attr]
        for i in wanted
    ]
    try:
        labels = classifier.classify(inputs) if inputs else []
    except Exception as exc:  # noqa: BLE001 - never lose mail because a model failed
        log.error("classifier.failed", error=type(exc).__name__, count=len(inputs))
        labels = [
            Classification(
                "complaint", 0.0, True, classifier.version, reasons=("classifier-error",)
            )
            for _ in inputs
        ]
    out = list(items)
    for index, label in zip(wanted, labels, strict=True):
        out[index] = Prepared(
            items[index].raw, items[index].parsed, None, items[index].automatic, label
        )
    return out


def reply_address(parsed: ParsedMessage, own: frozenset[str]) -> str:
    """Where replies to this sender go: Reply-To when it is someone else, else From."""
    if parsed.reply_to and parsed.reply_to not in own:
        return parsed.reply_to
    return parsed.sender


class Triage:
    """Runs the pipeline for one mailbox."""

    def __init__(
        self,
        mailbox: MailboxConfig,
        db: Database,
        classifier: Classifier,
        clock: Clock,
        templates: Templates | None = None,
        calendar: WorkingCalendar | None = None,
    ) -> None:
        self.mailbox = mailbox
        self.db = db
        self.classifier = classifier
        self.clock = clock
        self.templates = templates or Templates(mailbox.templates_dir)
        self.calendar = calendar or calendar_for(mailbox)
        self.ack_limit = acknowledgement_limit(mailbox)

    def process_batch(self, uidvalidity: int, raws: Sequence[RawMessage]) -> list[Result]:
        """Run every stage for a batch and commit it; returns one Result per message."""
        if not raws:
            return []
        own = self.mailbox.own_addresses
        prepared = classify_batch(self.classifier, [prepare(r, own) for r in raws])
        results: list[Result] = []
        with self.db.transaction() as session:
            for item in prepared:
                try:
                    with session.begin_nested():
                        results.append(self._record(session, uidvalidity, item))
                except Exception as exc:  # noqa: BLE001 - quarantine, never drop
                    with session.begin_nested():
                        results.append(
                            self._quarantine(
                                session, uidvalidity, item, f"{type(exc).__name__}: {exc}"
                            )
                        )
            cases.advance_cursor(session, self.mailbox.name, uidvalidity, max(r.uid for r in raws))
        for result in results:
            emit = log.error if result.outcome == Outcome.QUARANTINED else log.info
            emit(
                f"message.{result.outcome.value}",
                mailbox=self.mailbox.name,
                uid=result.uid,
                case=result.reference,
                reason=result.reason,
            )
        return results

    # -- the database stages -------------------------------------------------------------

    def _message_row(
        self,
        uidvalidity: int,
        item: Prepared,
        outcome: Outcome,
        case: Case | None,
        reason: str | None,
    ) -> Message:
        parsed = item.parsed
        return Message(
            mailbox=self.mailbox.name,
            uidvalidity=uidvalidity,
            uid=item.raw.uid,
            dedupe_key=item.dedupe_key,
            message_id=parsed.message_id[:400] if parsed and parsed.message_id else None,
            content_sha256=item.raw.sha256,
            case_id=case.id if case is not None else None,
            outcome=outcome.value,
            reason=reason,
            sender=parsed.sender[:320] if parsed else "",
            subject=parsed.subject if parsed else "",
            received_at=item.raw.received_at,
            recorded_at=self.clock.now(),
            raw=item.raw.raw,
            flagged=False,
        )

    def _quarantine(
        self, session: Session, uidvalidity: int, item: Prepared, reason: str
    ) -> Result:
        if cases.already_recorded(
            session, self.mailbox.name, uidvalidity, item.raw.uid, item.dedupe_key
        ):
            return Result(item.raw.uid, Outcome.DUPLICATE, None, "already recorded")
        session.add(self._message_row(uidvalidity, item, Outcome.QUARANTINED, None, reason[:2000]))
        session.flush()
        return Result(item.raw.uid, Outcome.QUARANTINED, None, reason[:200])

    def _thread(self, session: Session, parsed: ParsedMessage) -> Case | None:
        """Stage 5: the existing case this message continues, if any."""
        case = cases.case_for_message_ids(session, self.mailbox.name, parsed.thread_ids)
        if case is not None:
            return case
        for reference in _REFERENCE.findall(parsed.subject):
            found = cases.case_by_reference(session, reference)
            # A reference in the subject only threads mail from the case's own complainant.
            if (
                found is not None
                and found.mailbox == self.mailbox.name
                and (found.complainant == parsed.sender)
            ):
                return found
        return None

    def _record(self, session: Session, uidvalidity: int, item: Prepared) -> Result:
        name = self.mailbox.name
        if cases.already_recorded(session, name, uidvalidity, item.raw.uid, item.dedupe_key):
            return Result(item.raw.uid, Outcome.DUPLICATE, None, "already recorded")
        if item.parsed is None:
            return self._quarantine(session, uidvalidity, item, f"unparseable: {item.parse_error}")
        parsed = item.parsed
        now = self.clock.now()
        case = self._thread(session, parsed)
        if case is not None:
            outcome = Outcome.AUTOMATIC if item.automatic else Outcome.FOLLOWUP
            session.add(self._message_row(uidvalidity, item, outcome, case, item.automatic))
            cases.add_event(
                session,
                case,
                now,
                f"{outcome.value}.received",
                item.automatic or "",
                actor="complainant" if not item.automatic else "system",
            )
            session.flush()
            return Result(item.raw.uid, outcome, case.reference, item.automatic)
        if item.automatic is not None:
            session.add(
                self._message_row(uidvalidity, item, Outcome.AUTOMATIC, None, item.automatic)
            )
            session.flush()
            return Result(item.raw.uid, Outcome.AUTOMATIC, None, item.automatic)
        return self._open_case(session, uidvalidity, item, parsed, now)

    def _open_case(
        self,
        session: Session,
        uidvalidity: int,
        item: Prepared,
        parsed: ParsedMessage,
        now: datetime,
    ) -> Result:
        """Stages 6-8: open the case, decide on the acknowledgement, queue it, record."""
        mailbox = self.mailbox
        label = item.classification or Classification("complaint", 0.0, True, "none")
        received = item.raw.received_at
        reference = cases.next_reference(session, mailbox.reference_prefix, received.year)
        case = Case(
            reference=reference,
            mailbox=mailbox.name,
            status="new",
            label=label.label,
            confidence=label.confidence,
            needs_review=label.needs_review,
            flags=",".join(label.flags),
            model_version=label.model_version,
            complainant=parsed.sender[:320],
            subject=parsed.subject,
            received_at=received,
            created_at=now,
            ack_due_at=self.calendar.due(received, self.ack_limit),
        )
        session.add(case)
        session.flush()
        session.add(self._message_row(uidvalidity, item, Outcome.CREATED, case, None))
        cases.add_event(session, case, now, "received", f"uid {item.raw.uid}")
        cases.add_event(
            session,
            case,
            now,
            "classified",
            f"{label.label} {label.confidence:.2f} {label.model_version} {' '.join(label.reasons)}",
        )
        recipient = reply_address(parsed, mailbox.own_addresses)
        decision = automatic_reply_decision(
            automatic=item.automatic,
            is_new_case=True,
            recipient=recipient,
            own_addresses=mailbox.own_addresses,
            replies_to_recipient_today=cases.replies_sent_since(
                session, mailbox.name, recipient, now - timedelta(days=1)
            ),
            max_per_day=mailbox.max_replies_per_sender_per_day,
            age=now - received,
            max_age=timedelta(days=mailbox.acknowledge_max_age_days),
        )
        if decision.send:
            mail = compose.acknowledgement(
                mailbox=mailbox,
                templates=self.templates,
                original=parsed,
                recipient=recipient,
                reference=reference,
                received_at=received,
                now=now,
            )
            outbox.queue(
                session,
                mailbox=mailbox.name,
                case_id=case.id,
                kind=mail.kind,
                envelope_from=mail.envelope_from,
                recipient=mail.recipient,
                message_id=mail.message_id,
                raw=mail.raw,
                now=now,
                once_key=f"ack:{case.id}",
            )
            cases.add_event(session, case, now, "acknowledgement.queued")
        else:
            case.no_ack_reason = decision.reason
            cases.add_event(session, case, now, "acknowledgement.withheld", decision.reason)
        session.flush()
        return Result(
            item.raw.uid, Outcome.CREATED, reference, None if decision.send else decision.reason
        )
