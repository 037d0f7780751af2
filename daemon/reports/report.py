"""A board report for a period: its figures, the previous period's of equal length with the
change, and the complaints' themes. `build` reads through models.reporting and returns the
report as plain data (the JSON form, keys stable); daemon.reports.render writes it out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from classifiers.text import sender_text
from classifiers.themes import themes
from daemon.casework.workdays import WorkingCalendar
from daemon.mail.parse import parse_message
from daemon.reports import figures
from models import reporting
from models.reporting import CaseFacts

EXAMPLES = 3  # example case references per theme


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime  # exclusive

    @property
    def previous(self) -> Period:
        return Period(self.start - (self.end - self.start), self.start)


def build(
    session: Session,
    calendar: WorkingCalendar,
    period: Period,
    now: datetime,
    mailbox: str | None = None,
) -> dict[str, Any]:
    """The report of `period` (and of the one before it, under "previous")."""
    current = reporting.case_facts(session, period.start, period.end, mailbox)
    before = reporting.case_facts(session, period.previous.start, period.previous.end, mailbox)
    report = _figures(session, calendar, period, current, now, mailbox)
    previous = _figures(session, calendar, period.previous, before, now, mailbox)
    report["themes"] = _themes(session, current, before)
    report["previous"] = previous
    report["change"] = figures.change(report, previous)
    return report


def _figures(
    session: Session,
    calendar: WorkingCalendar,
    period: Period,
    facts: list[CaseFacts],
    now: datetime,
    mailbox: str | None,
) -> dict[str, Any]:
    zone = calendar.zone
    moment = min(now, period.end)
    still_open = reporting.open_at(session, period.end, mailbox)
    overdue = [c for c in still_open if c.stage_due_at is not None and c.stage_due_at < moment]
    recorded, done = reporting.lessons_between(session, period.start, period.end)
    return {
        "period": {"from": period.start.isoformat(), "to": period.end.isoformat()},
        "cases": figures.cases(facts, lambda at: at.astimezone(zone).strftime("%Y-%m")),
        "acknowledgements": figures.acknowledgements(facts, moment),
        "stages": figures.stages(facts, moment, calendar.working_days_between),
        "escalations": figures.escalations(facts),
        "outcomes": figures.outcomes(facts),
        "referrals": figures.referrals(facts),
        "flags": figures.flags(facts),
        "open_at_end": {"open": len(still_open), "overdue": len(overdue)},
        "lessons": {"recorded": recorded, "done": done},
    }


def _themes(
    session: Session, current: list[CaseFacts], before: list[CaseFacts]
) -> list[dict[str, Any]]:
    """Themes of both periods' complaints, fitted together so that each has a trend."""
    complaints = [f for f in (*current, *before) if f.label == "complaint"]
    raws = reporting.first_messages(session, [f.case_id for f in complaints])
    texts, owners = [], []
    for fact in complaints:
        raw = raws.get(fact.case_id)
        if raw:  # b"" once erased
            parsed = parse_message(raw)
            texts.append(f"{parsed.subject}\n{sender_text(parsed.text)}")
            owners.append(fact)
    now_refs = {f.reference for f in current}
    found = []
    for theme in themes(texts):
        mine = [owners[i].reference for i in theme.members if owners[i].reference in now_refs]
        found.append(
            {
                "terms": list(theme.terms),
                "count": len(mine),
                "previous": len(theme.members) - len(mine),
                "examples": mine[:EXAMPLES],
            }
        )
    return sorted(found, key=lambda t: -t["count"])
