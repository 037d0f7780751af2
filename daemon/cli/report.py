"""`candour report`: a period's figures and themes for a board (daemon.reports)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from daemon.cli.support import config_option, database, fail, load_or_fail, one_mailbox


@click.command("report")
@config_option
@click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option(
    "--to",
    "end",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="The last day of the period (included).",
)
@click.option("--mailbox", "mailbox_name", default=None, help="Only this mailbox.")
@click.option("--format", "form", type=click.Choice(["json", "csv", "html", "pdf"]), default="json")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write here (default: standard output).",
)
def report(
    config_path: Path,
    start: datetime,
    end: datetime,
    mailbox_name: str | None,
    form: str,
    output: Path | None,
) -> None:
    """Cases by label, month and channel; acknowledgements and stage responses on time;
    escalations, outcomes, referrals, flags (counts only), open and overdue at the end,
    lessons; the themes of the complaints; the previous period of equal length, and the
    change. Dates are the mailbox's local days."""
    from daemon.casework.deadlines import calendar_for
    from daemon.reports.render import as_pdf, render
    from daemon.reports.report import Period, build

    config = load_or_fail(config_path)
    mailbox = one_mailbox(config, mailbox_name)
    if end < start:
        fail("--to is before --from")
    calendar = calendar_for(mailbox)
    period = Period(
        _midnight(start.date(), calendar.zone),
        _midnight(end.date() + timedelta(days=1), calendar.zone),
    )
    with database(config) as db, db.reader() as session:
        found = build(session, calendar, period, datetime.now(UTC), mailbox_name)
    title = f"{mailbox.organisation}: complaints report"
    made = datetime.now(calendar.zone).strftime("%d %B %Y %H:%M")
    if form == "pdf":
        if output is None:
            fail("--format pdf needs --output FILE.pdf")
        output.write_bytes(as_pdf(render(found, "html", title, made)))
        click.echo(f"report written to {output}", err=True)
        return
    text = render(found, form, title, made)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"report written to {output}", err=True)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)
