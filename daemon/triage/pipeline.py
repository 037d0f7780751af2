"""The triage pipeline: the stages every incoming message goes through, in order.

Prepare (pure; in a preparer child, a batch at a time: daemon.triage.prepare):
    1. parse         prepare.parse_stage       raw bytes -> ParsedMessage, or why not
    2. automatic     prepare.automatic_stage   written by a machine? (never answered)
    3. classify      prepare.classify_batch    label, confidence, safety-net flags

Record (one database transaction per batch: `Triage.record_batch`):
    4. dedupe        the same UID or the same message already recorded: a duplicate
    then `RECORD_STAGES`, in order; the first stage that returns a Result ends the message:
    5. quarantine_unparseable   kept with the reason, for a human
    6. quarantine_unauthenticated_staff   a staff From our receiving server did not vouch for
    7. continue_thread          threading.find_case -> casework.correspondence.continue_case
    8. record_automatic         machine mail that threads to no case: recorded, no reply
    9. open_new_case            intake.decide -> opening.open_case

If anything in a batch fails, the transaction is rolled back and the batch recorded again
with each message in its own savepoint, so that the message at fault alone is
quarantined (raw bytes kept, reason recorded): never dropped, and it never stops the batch.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from classifiers.config import ClassifierConfig
from daemon.casework.correspondence import continue_case
from daemon.casework.desk import Desk, Incoming, record_message
from daemon.casework.workdays import WorkingCalendar
from daemon.clock import Clock
from daemon.config import MailboxConfig
from daemon.mail import authentication
from daemon.mail.values import Outcome, RawMessage, Result
from daemon.triage import imports, intake
from daemon.triage.logging_stage import open_logged
from daemon.triage.opening import open_case
from daemon.triage.prepare import UNCLASSIFIED, Prepared, Preparer
from daemon.triage.threading import SessionFinder, ThreadKeys, find_case, thread_keys
from models import bulk, cases, restrictions
from models.database import Database
from replies.templates import Templates

log = structlog.get_logger("candour.pipeline")


@dataclass(frozen=True)
class Arrival:
    """One new message in the record stages, with what they share."""

    session: Session
    desk: Desk
    uidvalidity: int
    item: Prepared
    keys: ThreadKeys | None  # None when it could not be parsed
    now: datetime
    replies_today: dict[str, int]  # automatic replies per address in the last 24 hours
    restricted: frozenset[str] = frozenset()  # complainants under a contact restriction
    opened_recently: dict[str, int] | None = None  # cases per address, repeat-contact window

    @property
    def incoming(self) -> Incoming:
        assert self.item.parsed is not None
        return Incoming(self.uidvalidity, self.item.raw, self.item.dedupe_key, self.item.parsed)


RecordStage = Callable[[Arrival], Result | None]


def quarantine(arrival: Arrival, reason: str, check: bool = False) -> Result:
    """Keep the message with the reason it could not be processed.

    With `check`, first look whether it was recorded meanwhile (say by another worker):
    then the failure was the unique key, and it is a duplicate, not a problem.
    """
    item, mailbox = arrival.item, arrival.desk.mailbox
    if check and cases.already_recorded(
        arrival.session, mailbox.name, arrival.uidvalidity, item.raw.uid, item.dedupe_key
    ):
        return Result(item.raw.uid, Outcome.DUPLICATE, None, "already recorded")
    record_message(
        arrival.session,
        mailbox,
        arrival.uidvalidity,
        item.raw,
        item.dedupe_key,
        item.parsed,
        Outcome.QUARANTINED,
        None,
        reason[:2000],
        arrival.now,
    )
    return Result(item.raw.uid, Outcome.QUARANTINED, None, reason[:200])


def quarantine_unparseable(arrival: Arrival) -> Result | None:
    if arrival.item.parsed is None:
        return quarantine(arrival, f"unparseable: {arrival.item.parse_error}")
    return None


def quarantine_unauthenticated_staff(arrival: Arrival) -> Result | None:
    """Mail from a staff address that the mailbox's receiving server does not vouch for
    (daemon.mail.authentication) is kept for a human: no command runs, nothing is relayed,
    nobody is answered (the address may well be forged)."""
    parsed, mailbox = arrival.item.parsed, arrival.desk.mailbox
    check = mailbox.staff_authentication
    if parsed is None or not check.authserv_id or not mailbox.is_staff(parsed.sender):
        return None
    seal = parsed.header(imports.SEAL_HEADER)
    if seal and imports.sealed(arrival.desk.secret, parsed.message_id, seal):
        return None  # put into IMAP by `candour cases import`, not through a mail server
    results = parsed.header("authentication-results")
    verdict = authentication.verify(results, parsed.sender, check.authserv_id, check.require)
    if verdict.authenticated:
        return None
    uid = arrival.item.raw.uid
    log.warning("staff.unauthenticated", mailbox=mailbox.name, uid=uid, reason=verdict.reason)
    return quarantine(arrival, f"from a staff address, not authenticated: {verdict.reason}")


def log_other_channel(arrival: Arrival) -> Result | None:
    """Staff writing to the new-case address log a complaint made by phone, letter, web form
    or in person (daemon.triage.logging_stage)."""
    parsed, keys = arrival.item.parsed, arrival.keys
    if keys is None or not keys.new_case or parsed is None:
        return None
    if not arrival.desk.mailbox.is_staff(parsed.sender):
        return None  # anyone else's mail to that address is just mail
    return open_logged(
        arrival.session,
        arrival.desk,
        arrival.uidvalidity,
        arrival.item,
        arrival.now,
        arrival.replies_today,
    )


def continue_thread(arrival: Arrival) -> Result | None:
    assert arrival.keys is not None
    assert arrival.item.parsed is not None
    desk, keys = arrival.desk, arrival.keys
    if keys.forged:
        log.warning("message.forged_case_address", mailbox=desk.mailbox.name)
    finder = SessionFinder(arrival.session, desk.mailbox.name)
    thread = find_case(keys, finder, desk.mailbox, arrival.item.parsed.sender)
    if thread.case is None:
        return None
    return continue_case(
        arrival.session,
        desk,
        arrival.incoming,
        arrival.item.automatic,
        thread.case,
        thread.via_case_address,
        arrival.now,
        arrival.item.classification,
    )


def record_restricted_repeat(arrival: Arrival) -> Result | None:
    """A restricted complainant writing again about a matter they have an open case on:
    recorded on it and its handler told, with no acknowledgement. A new matter (another
    subject) opens a case as usual, flagged `restricted`."""
    if not arrival.restricted:
        return None
    incoming, desk = arrival.incoming, arrival.desk
    complainant = intake.reply_address(
        incoming.parsed, desk.mailbox.own_addresses, desk.mailbox.form_email_field
    )
    if complainant not in arrival.restricted:
        return None
    case = restrictions.open_case_about(
        arrival.session, desk.mailbox.name, complainant, incoming.parsed.subject
    )
    if case is None:
        return None
    cases.add_event(arrival.session, case, arrival.now, "restricted.repeat", "not acknowledged")
    return continue_case(
        arrival.session, desk, incoming, None, case, False, arrival.now, arrival.item.classification
    )


def record_automatic(arrival: Arrival) -> Result | None:
    reason = arrival.item.automatic
    if reason is None:
        return None
    arrival.desk.record(
        arrival.session, arrival.incoming, Outcome.AUTOMATIC, None, reason, arrival.now
    )
    return Result(arrival.item.raw.uid, Outcome.AUTOMATIC, None, reason)


def open_new_case(arrival: Arrival) -> Result:
    incoming, desk = arrival.incoming, arrival.desk
    classification = arrival.item.classification or UNCLASSIFIED
    decision = intake.decide(
        incoming.parsed,
        classification,
        desk.mailbox,
        settings=desk.screening,
        registry=desk.registry,
        replies_today=arrival.replies_today,
        age=arrival.now - incoming.raw.received_at,
        received=incoming.raw.received_at,
        opened_recently=arrival.opened_recently,
        restricted=arrival.restricted,
        service_users=desk.service_users,
        latest_event=arrival.item.latest_event,
    )
    result = open_case(
        arrival.session,
        desk,
        incoming,
        classification,
        decision,
        arrival.now,
        arrival.replies_today,
    )
    if arrival.opened_recently is not None and decision.complainant:
        opened = arrival.opened_recently
        opened[decision.complainant] = opened.get(decision.complainant, 0) + 1
    return result


RECORD_STAGES: tuple[RecordStage, ...] = (
    quarantine_unparseable,
    quarantine_unauthenticated_staff,
    log_other_channel,
    continue_thread,
    record_automatic,
    record_restricted_repeat,
    open_new_case,
)


def record(arrival: Arrival) -> Result:
    """Run RECORD_STAGES on one message not yet recorded, until one gives its Result."""
    for stage in RECORD_STAGES:
        result = stage(arrival)
        if result is not None:
            return result
    raise AssertionError("the last record stage always gives a result")


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
        screening: ClassifierConfig | None = None,
    ) -> None:
        self.mailbox = mailbox
        self.db = db
        self.preparer = preparer
        self.clock = clock
        self.desk = Desk.for_mailbox(
            mailbox,
            templates or Templates(mailbox.templates_dir),
            secret if secret is not None else secrets.token_bytes(32),
            calendar,
            screening,
        )

    def process_batch(self, uidvalidity: int, raws: Sequence[RawMessage]) -> list[Result]:
        """Run every stage for a batch and commit it; returns one Result per message.

        The watcher does the same in two steps, so that the next batch is prepared in the
        child process while this one is recorded."""
        if not raws:
            return []
        batch = self.preparer.submit(raws, self.mailbox.own_addresses)
        return self.record_batch(uidvalidity, self.preparer.result(batch))

    def record_batch(
        self, uidvalidity: int, prepared: Sequence[Prepared], advance: bool = True
    ) -> list[Result]:
        """The database stages for a prepared batch, committed; one Result per message.

        `advance=False` records fresh mail ahead of a backlog (mailbox/watcher.py) without
        moving the cursor past the backlog below it (a crash then loses nothing).

        First the whole batch in one transaction with one flush at the end (fast). If
        anything in it fails, the transaction is rolled back and the batch is recorded
        again with each message in its own savepoint, so that the failing message alone is
        quarantined. Losing the database itself is not a message's fault: that is raised.
        """
        if not prepared:
            return []
        try:
            results = self._record_all(uidvalidity, prepared, isolate=False, advance=advance)
        except (OperationalError, InterfaceError):
            raise
        except Exception as exc:  # noqa: BLE001 - find the message at fault, one by one
            log.warning(
                "batch.isolating",
                mailbox=self.mailbox.name,
                count=len(prepared),
                error=type(exc).__name__,
            )
            results = self._record_all(uidvalidity, prepared, isolate=True, advance=advance)
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

    def _keys(self, item: Prepared) -> ThreadKeys | None:
        if item.parsed is None:
            return None
        return thread_keys(item.parsed, self.mailbox.address, self.desk.secret)

    def _record_all(
        self, uidvalidity: int, prepared: Sequence[Prepared], isolate: bool, advance: bool
    ) -> list[Result]:
        name, now = self.mailbox.name, self.clock.now()
        keys = [self._keys(item) for item in prepared]
        results: list[Result] = []
        with self.db.transaction() as session, bulk.buffered(session):
            senders = [
                intake.reply_address(
                    p.parsed, self.mailbox.own_addresses, self.mailbox.form_email_field
                )
                for p in prepared
                if p.parsed is not None
            ]
            replies_today = cases.replies_sent_since_many(
                session, name, senders, now - timedelta(days=1)
            )
            window = now - timedelta(days=self.mailbox.repeat_contact_days)
            opened = restrictions.cases_opened_since(session, name, senders, window)
            restricted = restrictions.restricted(session, name)
            if not isolate:  # the batch's threads in one query (not with savepoints)
                found = [k for k in keys if k is not None]
                mids = [m for k in found for m in k.message_ids]
                cases.index_threads(session, name, mids, [r for k in found for r in k.references])
            seen_uids, seen_keys = cases.recorded_keys(
                session,
                name,
                uidvalidity,
                [p.raw.uid for p in prepared],
                [p.dedupe_key for p in prepared],
            )
            for item, item_keys in zip(prepared, keys, strict=True):
                if item.raw.uid in seen_uids or item.dedupe_key in seen_keys:
                    results.append(
                        Result(item.raw.uid, Outcome.DUPLICATE, None, "already recorded")
                    )
                    continue
                arrival = Arrival(
                    session,
                    self.desk,
                    uidvalidity,
                    item,
                    item_keys,
                    now,
                    replies_today,
                    restricted,
                    opened,
                )
                results.append(_isolated(arrival) if isolate else record(arrival))
                seen_uids.add(item.raw.uid)
                seen_keys.add(item.dedupe_key)
            if advance:
                last = max(p.raw.uid for p in prepared)
                cases.advance_cursor(session, name, uidvalidity, last)
        return results


def _isolated(arrival: Arrival) -> Result:
    """`record` in a savepoint of its own: a message that fails is quarantined alone."""
    session = arrival.session
    bulk.write(session)  # a savepoint starts with nothing buffered
    try:
        with session.begin_nested():
            return record(arrival)
    except Exception as exc:  # noqa: BLE001 - quarantine, never drop
        bulk.discard(session)  # the message's rows went with its savepoint
        with session.begin_nested():
            return quarantine(arrival, f"{type(exc).__name__}: {exc}", check=True)
