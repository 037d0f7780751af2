"""The intake decision for a message that opens a case, as one pure function.

From the parsed message, its classification and the mailbox's configuration: who the
complainant is (Reply-To when it is someone else), their pseudonym in a pseudonymous
mailbox, the case's flags and whether it needs review, where the staff copy goes, which
automatic reply the sender gets and whether the loop and flood guards let it go.
daemon.triage.opening applies the decision; tests/test_intake.py checks it from a table
of .eml files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from classifiers.config import ClassifierConfig
from classifiers.types import Classification
from daemon.casework.pseudonyms import find_username
from daemon.casework.routing import Route, route_for
from daemon.casework.time_limits import stale_since
from daemon.config import MailboxConfig
from daemon.mail.automatic import is_no_reply
from daemon.mail.parse import ParsedMessage
from daemon.triage.gate import Screened, screen
from replies.addresses import is_plain_address
from replies.policy import ReplyDecision, automatic_reply_decision

ADDRESS_MAX = 320  # the complainant column's length
_ADDRESS = r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+"


@dataclass(frozen=True)
class IntakeDecision:
    complainant: str  # where replies go
    pseudonym: str | None
    label: str  # the case's label (daemon.triage.gate: the model's, or "complaint")
    needs_review: bool
    flags: tuple[str, ...]
    route: Route
    reply_template: str  # acknowledgement, thanks or signpost_<label>
    reply: ReplyDecision  # whether it is sent, and why (not)
    screened: Screened  # what the gate made of the classification, and why
    stale_since: date | None = None  # the latest event it names, when past the time limit
    staged: bool = True  # False: a non-service-user's complaint, kept without a stage clock


def reply_address(parsed: ParsedMessage, own: frozenset[str], form_field: str | None = None) -> str:
    """Where replies to this sender go: Reply-To when it is someone else, else the address
    a web form put in the body (`form_email_field`), else From; "" when From is a no-reply
    address and there is nothing else (an anonymous complaint: recorded, never answered)."""
    if parsed.reply_to and parsed.reply_to not in own and not is_no_reply(parsed.reply_to):
        return parsed.reply_to
    if form_field:
        match = re.search(rf"(?im)^\s*{re.escape(form_field)}\s*:\s*({_ADDRESS})\s*$", parsed.text)
        if match and is_plain_address(match.group(1).lower()):
            return match.group(1).lower()
    return "" if is_no_reply(parsed.sender) else parsed.sender


def pseudonym_of(
    parsed: ParsedMessage, mailbox: MailboxConfig, registry: Mapping[str, str]
) -> str | None:
    """The member's username in a pseudonymous mailbox: from the registry, else from the
    message itself; None elsewhere or when there is none."""
    if not mailbox.pseudonymous:
        return None
    return registry.get(parsed.sender) or find_username(parsed.text, mailbox.pseudonym_pattern)


def _stale(
    latest: date | None, screened: Screened, mailbox: MailboxConfig, received: datetime | None
) -> date | None:
    if received is None or screened.label != "complaint":
        return None
    return stale_since(latest, received, mailbox.policy.time_limit_months)


def _flags(
    *,
    no_pseudonym: bool,
    stale: bool,
    complainant: str,
    restricted: frozenset[str],
    opened: int,
    repeats: int,
) -> tuple[str, ...]:
    """What staff should know of the sender and the timing, beside the message's aspects."""
    found = {
        "no-pseudonym": no_pseudonym,
        "time_limit": stale,  # about events older than the policy's time limit
        "anonymous": not complainant,  # no address to answer
        "restricted": bool(complainant) and complainant in restricted,
        "repeat_contact": bool(complainant) and opened >= repeats,  # for staff to decide
    }
    return tuple(name for name, raised in found.items() if raised)


def decide(
    parsed: ParsedMessage,
    classification: Classification,
    mailbox: MailboxConfig,
    *,
    settings: ClassifierConfig,
    registry: Mapping[str, str],
    replies_today: Mapping[str, int],
    age: timedelta,
    received: datetime | None = None,
    opened_recently: Mapping[str, int] | None = None,
    restricted: frozenset[str] = frozenset(),
    service_users: frozenset[str] | None = None,
    latest_event: date | None = None,
) -> IntakeDecision:
    """How to open a case for `parsed`. `replies_today`: automatic replies sent to each
    address in 24 hours; `opened_recently`: cases each opened in the repeat-contact window;
    `age`: since the message arrived; `service_users`: the directory (None: all served);
    `latest_event`: the latest event the message dates (the preparer reads it)."""
    pseudonym = pseudonym_of(parsed, mailbox, registry)
    no_pseudonym = mailbox.pseudonymous and pseudonym is None
    complainant = reply_address(parsed, mailbox.own_addresses, mailbox.form_email_field)
    complainant = complainant[:ADDRESS_MAX]
    screened = screen(classification, settings, mailbox.language_set)
    stale = _stale(latest_event, screened, mailbox, received)
    outsider = _outsider(complainant, screened, service_users)
    handling = mailbox.non_service_users if outsider else "investigate"
    reply = _reply(complainant, mailbox, replies_today.get(complainant, 0), age, handling)
    return IntakeDecision(
        complainant=complainant,
        pseudonym=pseudonym,
        label=screened.label,
        needs_review=screened.needs_review or no_pseudonym,
        flags=(
            *screened.aspects,
            *_flags(
                no_pseudonym=no_pseudonym,
                stale=stale is not None,
                complainant=complainant,
                restricted=restricted,
                opened=(opened_recently or {}).get(complainant, 0),
                repeats=mailbox.repeat_contact_cases,
            ),
            *(("non_service_user",) if outsider else ()),
        ),
        route=route_for(
            screened.label,
            screened.needs_review,
            screened.aspects,
            mailbox.routes,
            no_pseudonym=no_pseudonym,
        ),
        reply_template=screened.reply,
        reply=reply,
        screened=screened,
        stale_since=stale,
        staged=handling == "investigate",
    )


def _reply(
    complainant: str, mailbox: MailboxConfig, sent_today: int, age: timedelta, handling: str
) -> ReplyDecision:
    reply = automatic_reply_decision(
        automatic=None,
        is_new_case=True,
        recipient=complainant,
        own_addresses=mailbox.own_addresses,
        replies_to_recipient_today=sent_today,
        max_per_day=mailbox.max_replies_per_sender_per_day,
        age=age,
        max_age=timedelta(days=mailbox.acknowledge_max_age_days),
    )
    if handling == "log" and reply.send:
        return ReplyDecision(False, "non_service_user: logged, not answered")
    return reply


def _outsider(complainant: str, screened: Screened, served: frozenset[str] | None) -> bool:
    """A complaint from someone the mailbox's directory does not list as a service user."""
    if served is None or not complainant or screened.label != "complaint":
        return False
    return complainant.lower() not in served
