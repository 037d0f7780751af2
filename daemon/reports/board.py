"""The board report as a periodic job (issue 22): after each month or quarter closes, the
mailbox's `[mailbox.board_reports]` recipients get that period's report once, as a mail
with its headline figures, the HTML report and its PDF attached. `last_period` is pure;
`send_due` is the JOBS row's work."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from daemon.casework.desk import Desk, queue_staff_mail
from daemon.reports.render import as_html, as_pdf, last_day
from daemon.reports.report import Period, build
from models import outbox
from replies.compose import FileAttachment


def last_period(today: date, every: str, zone: ZoneInfo) -> Period:
    """The last whole month or quarter before `today` (local days)."""
    months = 3 if every == "quarter" else 1
    first_of_this = (today.month - 1) // months * months + 1
    end = date(today.year, first_of_this, 1)
    start_month = end.month - months
    start = date(end.year + (start_month - 1) // 12, (start_month - 1) % 12 + 1, 1)
    return Period(
        datetime.combine(start, time(0), tzinfo=zone), datetime.combine(end, time(0), tzinfo=zone)
    )


def send_due(session: Session, desk: Desk, now: datetime) -> int:
    """Queue the last period's report to each recipient who has not had it; returns how
    many were queued. Once per period and recipient, whatever the restarts."""
    settings, zone = desk.mailbox.board_reports, desk.calendar.zone
    if not settings.to:
        return 0
    period = last_period(now.astimezone(zone).date(), settings.every, zone)
    keys = {a: f"board:{desk.mailbox.name}:{period.start.date()}:{a}"[:200] for a in settings.to}
    waiting = [a for a, key in keys.items() if not outbox.once_key_queued(session, key)]
    if not waiting:
        return 0
    report = build(session, desk.calendar, period, now, desk.mailbox.name)
    title = f"{desk.mailbox.organisation}: complaints report"
    html = as_html(report, title, now.astimezone(zone).strftime("%d %B %Y %H:%M"))
    name = f"complaints-report-{period.start.date()}"
    files = (
        FileAttachment(f"{name}.html", "text/html", html.encode()),
        FileAttachment(f"{name}.pdf", "application/pdf", as_pdf(html)),
    )
    for address in waiting:
        queue_staff_mail(
            session,
            desk,
            "board_report",
            case=None,
            recipient=address,
            context=_headlines(report),
            now=now,
            attachments=files,
            once_key=keys[address],
        )
    return len(waiting)


def _headlines(report: dict[str, Any]) -> dict[str, Any]:
    period = report["period"]
    return {
        "start": period["from"][:10],
        "end": last_day(period["to"]),
        "cases": report["cases"]["total"],
        "on_time": report["acknowledgements"]["on_time_percent"],
        "escalations": report["escalations"],
        "open": report["open_at_end"]["open"],
        "overdue": report["open_at_end"]["overdue"],
        "themes": [", ".join(t["terms"][:3]) for t in report["themes"][:3]],
    }
