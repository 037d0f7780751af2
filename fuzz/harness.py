"""One message through the daemon's pure stages, with the daemon's own per-message boundary.

The stages and where the daemon catches a message's exceptions (so this harness catches
exactly there, and nowhere else):

    prepare   daemon.triage.prepare.prepare: parse, automatic mail, dated events. Only a
              ParseError is the message's (quarantined as unparseable); anything else
              raised here escapes the preparer and stops the mailbox's loop.
    classify  prepare.classify_batch with the shipped model: catches its own failures
              (the message goes to review as a complaint).
    keys      threading.thread_keys and intake.reply_address: run for the whole batch
              before the per-message savepoints, so nothing may escape them either.
    reply     intake.decide and replies.compose.automatic_reply: run inside the record
              stages, where pipeline._isolated quarantines a message that raises.

`process` returns a `Run`; it raises only when an exception escapes the boundary
(`Escaped`, naming the stage), which is a bug in the daemon.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from classifiers.config import ClassifierConfig
from classifiers.types import Classifier
from daemon.config import ImapConfig, MailboxConfig
from daemon.mail.values import RawMessage
from daemon.triage import intake
from daemon.triage.prepare import Prepared, classify_batch, prepare
from daemon.triage.threading import thread_keys
from fuzz.checks import problems_in
from replies import compose
from replies.compose import OutgoingMail
from replies.templates import Templates

MAILBOX = MailboxConfig(
    name="fuzz",
    address="complaints@example.org",
    organisation="Fuzz Community Trust",
    imap=ImapConfig(host="127.0.0.1", username="fuzz"),  # never connected to
)
SECRET = b"fuzz-secret-0123456789abcdef0123"
RECEIVED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
REFERENCE = "CMP-2026-00001"
T = TypeVar("T")
DAEMON_RECURSION_LIMIT = 1000  # CPython's default; the daemon does not change it


class Escaped(Exception):
    """An exception left a stage where the daemon has no per-message boundary."""

    def __init__(self, stage: str, error: BaseException) -> None:
        super().__init__(f"{stage}: {type(error).__name__}: {error}")
        self.stage = stage
        self.error = error


@dataclass(frozen=True)
class Run:
    """What became of one message."""

    outcome: str  # acknowledged | withheld:<why> | automatic:<why> | quarantined:<stage>
    size: int  # bytes in
    seconds: float
    caught: str | None = None  # "<stage>:<exception type>" caught at the boundary
    problems: tuple[str, ...] = ()  # what is wrong with the thread keys or acknowledgement
    reply: OutgoingMail | None = field(default=None, repr=False)


class Harness:
    """The stages with a classifier and templates loaded once."""

    def __init__(self, classifier: Classifier, templates: Templates | None = None) -> None:
        self.classifier = classifier
        self.templates = templates or Templates()

    def warm(self, raws: Sequence[bytes]) -> None:
        """Run `raws` once, so that lazy imports and caches do not count as a message's time."""
        for raw in raws:
            self.process(raw)

    def process(self, raw: bytes) -> Run:
        """Run `raw` through every stage. Raises Escaped (see the module's docstring)."""
        started = time.perf_counter()
        with daemon_stack():
            outcome, caught, reply, problems = self._stages(raw)
        seconds = time.perf_counter() - started
        return Run(outcome, len(raw), seconds, caught, problems, reply)

    def _stages(self, raw: bytes) -> tuple[str, str | None, OutgoingMail | None, tuple[str, ...]]:
        item = _guarded("prepare", lambda: prepare(_raw(raw), MAILBOX.own_addresses))
        if item.parsed is None:
            why = (item.parse_error or "").split(":")[0][:60]
            return "quarantined:parse", f"parse:{why}", None, ()
        [item] = _guarded("classify", lambda: classify_batch(self.classifier, [item]))
        # classify_batch's own boundary: the message goes on, as a complaint for review.
        label = item.classification
        caught = (
            "classify:classifier-error" if label and "classifier-error" in label.reasons else None
        )
        forged = _guarded("keys", lambda: _forged_thread(item))
        if item.automatic is not None:
            return f"automatic:{item.automatic}", caught, None, forged
        try:
            reply = self._reply(item)
        except Exception as exc:  # noqa: BLE001 - where pipeline._isolated quarantines
            return "quarantined:reply", f"reply:{type(exc).__name__}", None, forged
        if isinstance(reply, str):
            return f"withheld:{reply}", caught, None, forged
        assert item.parsed is not None
        problems = problems_in(reply, item.parsed, MAILBOX.own_addresses)
        return "acknowledged", caught, reply, (*forged, *problems)

    def _reply(self, item: Prepared) -> OutgoingMail | str:
        """The acknowledgement the daemon would queue, or why it would send none."""
        parsed, classification = item.parsed, item.classification
        assert parsed is not None
        assert classification is not None
        decision = intake.decide(
            parsed,
            classification,
            MAILBOX,
            settings=ClassifierConfig(),
            registry={},
            replies_today={},
            age=timedelta(0),
            received=RECEIVED,
            latest_event=item.latest_event,
        )
        if not decision.reply.send:
            return decision.reply.reason
        return compose.automatic_reply(
            decision.reply_template,
            letterhead=MAILBOX.letterhead,
            templates=self.templates,
            original=compose.Answering(
                parsed.message_id, parsed.references, parsed.subject, parsed.sender_name
            ),
            recipient=decision.complainant,
            reference=REFERENCE,
            received_at=RECEIVED,
            now=RECEIVED,
            name=decision.pseudonym,
        )


@contextmanager
def daemon_stack() -> Iterator[None]:
    """Python's default recursion limit, as in the preparer child. Hypothesis raises the
    limit while a test runs; deep MIME nesting would then parse here and not there."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(DAEMON_RECURSION_LIMIT)
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


def _raw(raw: bytes) -> RawMessage:
    return RawMessage(uid=1, raw=raw, received_at=RECEIVED)


def _forged_thread(item: Prepared) -> tuple[str, ...]:
    """The thread keys and reply address, as the pipeline reads them for a batch. No
    mutant knows SECRET, so none may carry a signed case or new-case address."""
    assert item.parsed is not None
    keys = thread_keys(item.parsed, MAILBOX.address, SECRET)
    intake.reply_address(item.parsed, MAILBOX.own_addresses, MAILBOX.form_email_field)
    signed = ("signed-reference-without-the-secret",) if keys.signed_reference else ()
    return (*signed, *(("new-case-without-the-secret",) if keys.new_case else ()))


def _guarded(stage: str, work: Callable[[], T]) -> T:
    try:
        return work()
    except Exception as exc:
        raise Escaped(stage, exc) from exc
