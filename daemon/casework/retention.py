"""Retention (issue 22): each label's records are kept for the mailbox's configured period
after the case closes (`[mailbox.retention]`), then purged as an erasure purges them
(models.records.erase): the content goes, the figures stay. Run daily by the scheduler
(daemon.service.scheduler JOBS) and on demand by `candour retention [--dry-run]`."""

from __future__ import annotations

import re
from datetime import datetime

from dateutil.relativedelta import relativedelta
from sqlalchemy.orm import Session

from daemon.config import MailboxConfig
from models import records
from models.schema import Case

_PERIOD = re.compile(r"^\s*(\d+)\s+(year|month|day)s?\s*$")


def period(text: str) -> relativedelta:
    """ "6 years" -> relativedelta(years=6) (calendar arithmetic: leap days, month ends)."""
    match = _PERIOD.match(text)
    if match is None:
        raise ValueError(f"{text!r}: give a period like '6 years', '18 months', '400 days'")
    n, unit = int(match.group(1)), match.group(2)
    if unit == "year":
        return relativedelta(years=n)
    return relativedelta(months=n) if unit == "month" else relativedelta(days=n)


def due(session: Session, mailbox: MailboxConfig, now: datetime) -> dict[str, list[Case]]:
    """The cases whose retention period has run out, by label."""
    found: dict[str, list[Case]] = {}
    for label, kept in mailbox.retention.items():
        cases = records.closed_before(session, mailbox.name, label, now - period(kept))
        if cases:
            found[label] = cases
    return found


def purge(session: Session, mailbox: MailboxConfig, now: datetime) -> dict[str, int]:
    """Purge what `due` finds; returns how many cases of each label, and audits it."""
    purged = {}
    for label, cases in due(session, mailbox, now).items():
        counts = records.erase(session, records.of_cases(session, cases))
        purged[label] = counts["cases"]
    if purged:
        said = ", ".join(f"{n} {label}" for label, n in purged.items())
        records.audit(session, now, "retention", f"mailbox {mailbox.name}: purged {said}")
    return purged
