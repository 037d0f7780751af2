"""The triage pipeline: the ordered stages every incoming message goes through.

    parse -> detect automatic mail -> classify -> dedupe -> thread (signed case address,
    References, subject reference) -> either continue the case (daemon/correspondence.py:
    follow-ups, staff replies, relays, notes) or open one (daemon/intake.py: route, the one
    automatic reply, staff copies) -> record

The first three stages are pure and run on the whole batch (classification is batched
for speed). The rest run in one database transaction per batch, each message inside its
own savepoint: a message that fails is rolled back alone and quarantined (raw bytes kept,
reason recorded), never dropped, and never stops the batch.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import timedelta

import structlog
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from classifiers.types import Classification
from daemon.casework.correspondence import continue_case
from daemon.casework.deadlines import acknowledgement_limit, calendar_for
from daemon.casework.desk import Desk, Incoming, record_message
from daemon.casework.workdays import WorkingCalendar
from daemon.clock import Clock
from daemon.config import MailboxConfig
from daemon.mail.parse import ParsedMessage
from daemon.mail.values import Outcome, RawMessage, Result
from daemon.mailbox.preparer import Prepared, Preparer
from daemon.triage.intake import open_case, reply_address
from models import bulk, cases
from models.database import Database
from models.schema import Case
from replies.addresses import signed_reference
from replies.templates import Templates

log = structlog.get_logger("candour.pipeline")

_REFERENCE = re.compile(r"\b([A-Z]{2,6}-\d{4}-\d{5})\b", re.IGNORECASE)


class Triage:
    """Runs the pipeline for one mailbox."""

    def __init__(
        self,
        mailbox: MailboxConfig,
        db: Database,
        preparer: Preparer,
        clock: Clock,
        templates: Templates | None = None,
        calendar: WorkingCalendar | None = None,
        secret: bytes | None = None,
    ) -> None:
        self.mailbox = mailbox
        self.db = db
        self.preparer = preparer
        self.clock = clock
        self.templates = templates or Templates(mailbox.templates_dir)
        self.calendar = calendar or calendar_for(mailbox)
        self.ack_limit = acknowledgement_limit(mailbox)
        self.desk = Desk.for_mailbox(
            mailbox,
            self.templates,
            self.calendar,
            self.ack_limit,
            secret if secret is not None else secrets.token_bytes(32),
        )

    def process_batch(self, uidvalidity: int, raws: Sequence[RawMessage]) -> list[Result]:
        """Run every stage for a batch and commit it; returns one Result per message.

        The watcher does the same in two steps, so that the next batch is prepared in the
        child process while this one is recorded."""
        if not raws:
            return []
        batch = self.preparer.submit(raws, self.mailbox.own_addresses)
        return self.record_batch(uidvalidity, self.preparer.result(batch))

    def record_batch(self, uidvalidity: int, prepared: Sequence[Prepared]) -> list[Result]:
        """The database stages for a prepared batch, committed; one Result per message.

        First the whole batch in one transaction with one flush at the end (fast). If
        anything in it fails, the transaction is rolled back and the batch is recorded
        again with each message in its own savepoint, so that the failing message alone is
        quarantined. Losing the database itself is not a message's fault: that is raised.
        """
        if not prepared:
            return []
        try:
            results = self._record_all(uidvalidity, prepared, isolate=False)
        except (OperationalError, InterfaceError):
            raise
        except Exception as exc:  # noqa: BLE001 - find the message at fault, one by one
            log.warning(
                "batch.isolating",
                mailbox=self.mailbox.name,
                count=len(prepared),
                error=type(exc).__name__,
            )
            results = self._record_all(uidvalidity, prepared, isolate=True)
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

    def _record_all(
        self, uidvalidity: int, prepared: Sequence[Prepared], isolate: bool
    ) -> list[Result]:
        own = self.mailbox.own_addresses
        results: list[Result] = []
        with self.db.transaction() as session, bulk.buffered(session):
            replies_today = cases.replies_sent_since_many(
                session,
                self.mailbox.name,
                [reply_address(p.parsed, own) for p in prepared if p.parsed is not None],
                self.clock.now() - timedelta(days=1),
            )
            if not isolate:
                parsed = [p.parsed for p in prepared if p.parsed is not None]
                references: list[str] = []
                for one in parsed:
                    signed, _, in_subject = self._references(one)
                    references.extend([signed, *in_subject] if signed else in_subject)
                mids = [m for one in parsed for m in one.thread_ids]
                cases.index_threads(session, self.mailbox.name, mids, references)
            seen_uids, seen_keys = cases.recorded_keys(
                session,
                self.mailbox.name,
                uidvalidity,
                [p.raw.uid for p in prepared],
                [p.dedupe_key for p in prepared],
            )
            for item in prepared:
                if item.raw.uid in seen_uids or item.dedupe_key in seen_keys:
                    results.append(
                        Result(item.raw.uid, Outcome.DUPLICATE, None, "already recorded")
                    )
                    continue
                if not isolate:
                    results.append(self._record(session, uidvalidity, item, replies_today))
                else:
                    bulk.write(session)  # a savepoint starts with nothing buffered
                    try:
                        with session.begin_nested():
                            results.append(self._record(session, uidvalidity, item, replies_today))
                    except Exception as exc:  # noqa: BLE001 - quarantine, never drop
                        bulk.discard(session)  # the message's rows went with its savepoint
                        with session.begin_nested():
                            reason = f"{type(exc).__name__}: {exc}"
                            results.append(
                                self._quarantine(session, uidvalidity, item, reason, check=True)
                            )
                seen_uids.add(item.raw.uid)
                seen_keys.add(item.dedupe_key)
            last = max(p.raw.uid for p in prepared)
            cases.advance_cursor(session, self.mailbox.name, uidvalidity, last)
        return results

    # -- the database stages -------------------------------------------------------------

    def _quarantine(
        self, session: Session, uidvalidity: int, item: Prepared, reason: str, check: bool = False
    ) -> Result:
        """Keep the message with the reason it could not be processed.

        With `check`, first look whether it was recorded meanwhile (say by another worker):
        then the failure was the unique key, and it is a duplicate, not a problem.
        """
        name = self.mailbox.name
        if check and cases.already_recorded(
            session, name, uidvalidity, item.raw.uid, item.dedupe_key
        ):
            return Result(item.raw.uid, Outcome.DUPLICATE, None, "already recorded")
        record_message(
            session,
            self.mailbox,
            uidvalidity,
            item.raw,
            item.dedupe_key,
            item.parsed,
            Outcome.QUARANTINED,
            None,
            reason[:2000],
            self.clock.now(),
        )
        return Result(item.raw.uid, Outcome.QUARANTINED, None, reason[:200])

    def _references(self, parsed: ParsedMessage) -> tuple[str | None, bool, list[str]]:
        """(validly signed case address's reference, forged one seen, references in subject)."""
        addressed = (*parsed.recipients, *_delivery_addresses(parsed))
        reference, forged = signed_reference(addressed, self.mailbox.address, self.desk.secret)
        return reference, forged, _REFERENCE.findall(parsed.subject)

    def _thread(self, session: Session, parsed: ParsedMessage) -> tuple[Case | None, bool]:
        """Stage 5: (the case this message continues, whether via its signed address).

        In order: a signed case reply address among the recipients; In-Reply-To or
        References naming a message of the case; the case reference in the subject, only
        from the case's own complainant or staff.
        """
        reference, forged, in_subject = self._references(parsed)
        if forged:
            log.warning("message.forged_case_address", mailbox=self.mailbox.name)
        if reference is not None:
            case = cases.case_by_reference(session, reference)
            if case is not None and case.mailbox == self.mailbox.name:
                return case, True
        case = cases.case_for_message_ids(session, self.mailbox.name, parsed.thread_ids)
        if case is not None:
            return case, False
        for reference in in_subject:
            found = cases.case_by_reference(session, reference)
            if (
                found is not None
                and found.mailbox == self.mailbox.name
                and (found.complainant == parsed.sender or self.mailbox.is_staff(parsed.sender))
            ):
                return found, False
        return None, False

    def _record(
        self, session: Session, uidvalidity: int, item: Prepared, replies_today: dict[str, int]
    ) -> Result:
        """Record one message not yet seen (the batch checked UID and dedupe key)."""
        if item.parsed is None:
            return self._quarantine(session, uidvalidity, item, f"unparseable: {item.parse_error}")
        parsed = item.parsed
        now = self.clock.now()
        case, via_case_address = self._thread(session, parsed)
        if case is not None:
            incoming = Incoming(uidvalidity, item.raw, item.dedupe_key, parsed)
            return continue_case(
                session,
                self.desk,
                incoming,
                item.automatic,
                case,
                via_case_address,
                now,
                item.classification,
            )
        if item.automatic is not None:
            record_message(
                session,
                self.mailbox,
                uidvalidity,
                item.raw,
                item.dedupe_key,
                parsed,
                Outcome.AUTOMATIC,
                None,
                item.automatic,
                now,
            )
            return Result(item.raw.uid, Outcome.AUTOMATIC, None, item.automatic)
        classification = item.classification or Classification("complaint", 0.0, True, "none")
        incoming = Incoming(uidvalidity, item.raw, item.dedupe_key, parsed)
        return open_case(session, self.desk, incoming, classification, now, replies_today)


def _delivery_addresses(parsed: ParsedMessage) -> list[str]:
    """Envelope recipients that MTAs record in headers (a Bcc'd case address shows here)."""
    found: list[str] = []
    for header in ("delivered-to", "x-original-to", "envelope-to"):
        for value in parsed.header(header):
            found.extend(a.strip("<> ").lower() for a in value.split(",") if "@" in a)
    return found
