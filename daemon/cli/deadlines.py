"""The `candour deadline` and `candour sla` commands: check the counting rule, list what is due."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click

from daemon.casework.workdays import TimeLimit, WorkingCalendar

if TYPE_CHECKING:
    from models.lifecycle import Procedure
    from models.schema import Case

REGIONS = ("ENG", "WLS", "SCT", "NIR")


def parse_instant(text: str, zone: ZoneInfo) -> datetime:
    """An ISO 8601 date-time; without a UTC offset it is local time in `zone`.

    Raises ValueError when `text` is not ISO 8601.
    """
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _calendar(
    config_path: Path | None, mailbox_name: str | None, region: str | None
) -> WorkingCalendar:
    """The mailbox's calendar from the config, or the default (Europe/London) calendar."""
    from daemon.casework.deadlines import calendar_for
    from daemon.cli.support import DEFAULT_CONFIG
    from daemon.cli.support import fail as _fail
    from daemon.cli.support import load_or_fail as _config

    if config_path is None and mailbox_name is None:
        return WorkingCalendar(region=region or "ENG")
    config = _config(config_path or DEFAULT_CONFIG)
    if mailbox_name is None:
        if len(config.mailbox) > 1:
            names = ", ".join(m.name for m in config.mailbox)
            _fail(f"the configuration has several mailboxes; name one with --mailbox ({names})", 1)
        mailbox = config.mailbox[0]
    else:
        found = next((m for m in config.mailbox if m.name == mailbox_name), None)
        if found is None:
            _fail(f"no [[mailbox]] named {mailbox_name!r}", 1)
        mailbox = found
    calendar = calendar_for(mailbox)
    return replace(calendar, region=region) if region else calendar


@click.command("deadline")
@click.option(
    "--received",
    required=True,
    metavar="ISO8601",
    help="When the message arrived, e.g. 2026-12-24T10:00. Without a UTC offset it is read "
    "as local time in the mailbox's time zone (Europe/London without --mailbox).",
)
@click.option("--working-days", type=click.IntRange(min=0), help="A limit in working days.")
@click.option("--hours", type=click.IntRange(min=0), help="A limit in hours, on the clock.")
@click.option(
    "--region",
    type=click.Choice(REGIONS, case_sensitive=False),
    metavar="[ENG|WLS|SCT|NIR]",
    help="Bank holidays of this nation (default ENG, or the mailbox's region).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Configuration file, to use a mailbox's calendar (hours, days, closures, zone).",
)
@click.option("--mailbox", "mailbox_name", default=None, help="The mailbox whose calendar counts.")
def deadline(
    received: str,
    working_days: int | None,
    hours: int | None,
    region: str | None,
    config_path: Path | None,
    mailbox_name: str | None,
) -> None:
    """Print when a time limit counted from --received runs out, by the counting rule.

    The answer is ISO 8601 local time with its UTC offset, e.g. 2026-12-29T17:00:00+00:00.
    A message received outside working hours counts from the next opening; day 0 is the
    day it counts as received; N working days end at closing time on the Nth working day
    after day 0. Hours run on the clock from the moment of receipt.
    """
    if (working_days is None) == (hours is None):
        raise click.UsageError("give exactly one of --working-days N or --hours N")
    calendar = _calendar(config_path, mailbox_name, region.upper() if region else None)
    try:
        moment = parse_instant(received, calendar.zone)
    except ValueError as exc:
        raise click.BadParameter(
            f"{received!r} is not ISO 8601 like 2026-12-24T10:00 or 2026-12-24T10:00+00:00",
            param_hint="--received",
        ) from exc
    limit = (
        TimeLimit(hours, "hours")
        if hours is not None
        else TimeLimit(working_days or 0, "working_days")
    )
    click.echo(calendar.due(moment, limit).astimezone(calendar.zone).isoformat())


@click.command("sla")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per case per line.")
@click.option("--mailbox", "mailbox_name", default=None, help="Only this mailbox.")
@click.option(
    "--now",
    "now_text",
    default=None,
    metavar="ISO8601",
    help="Count working days from this moment instead of now (local time without offset).",
)
def sla(config_path: Path, as_json: bool, mailbox_name: str | None, now_text: str | None) -> None:
    """Open cases per mailbox: stage, what is due when, working days left or overdue."""
    from daemon.casework.deadlines import calendar_for, procedure_for
    from daemon.cli.support import database as _database
    from daemon.cli.support import fail as _fail
    from daemon.cli.support import load_or_fail as _config
    from daemon.clock import SystemClock
    from models.cases import open_cases

    config = _config(config_path)
    mailboxes = [m for m in config.mailbox if mailbox_name in (None, m.name)]
    if not mailboxes:
        _fail(f"no [[mailbox]] named {mailbox_name!r}", 1)
    with _database(config) as database, database.reader() as session:
        for mailbox in mailboxes:
            calendar = calendar_for(mailbox)
            procedure = procedure_for(mailbox, calendar)
            now = SystemClock().now()
            if now_text is not None:
                try:
                    now = parse_instant(now_text, calendar.zone)
                except ValueError as exc:
                    raise click.BadParameter(
                        f"{now_text!r} is not ISO 8601", param_hint="--now"
                    ) from exc
            rows = _sla_rows(
                open_cases(session, mailbox.name), mailbox.name, procedure, calendar, now
            )
            if as_json:
                for row in rows:
                    click.echo(json.dumps(row))
            else:
                _print_table(mailbox.name, calendar, now, rows)


def _sla_rows(
    cases: list[Case], mailbox: str, procedure: Procedure, calendar: WorkingCalendar, now: datetime
) -> list[dict[str, Any]]:
    """A row per running deadline of each case (one with no deadline when it has none)."""
    from daemon.casework.reminders import running_deadlines

    rows: list[dict[str, Any]] = []
    for case in cases:
        base: dict[str, Any] = {
            "mailbox": mailbox,
            "reference": case.reference,
            "label": case.label,
            "status": case.status,
            "stage": case.stage,
            "stage_name": procedure.stage_name(case.stage),
            "request_due": _local(case.request_due_at, calendar),
        }
        deadlines = running_deadlines(case, procedure, calendar, now)
        if not deadlines:
            rows.append(
                {**base, "deadline": None, "due": None, "working_days_left": None, "overdue": False}
            )
        rows.extend(
            {
                **base,
                "deadline": item.description,
                "due": _local(item.due_at, calendar),
                "working_days_left": item.working_days_left,
                "overdue": item.overdue,
                "standing": item.standing,
            }
            for item in deadlines
        )
    return rows


def _local(moment: datetime | None, calendar: WorkingCalendar) -> str | None:
    return moment.astimezone(calendar.zone).isoformat() if moment is not None else None


def _short(iso: str) -> str:
    return iso[:16].replace("T", " ")


def _print_table(
    name: str, calendar: WorkingCalendar, now: datetime, rows: list[dict[str, Any]]
) -> None:
    local_now = now.astimezone(calendar.zone).strftime("%a %d %b %Y %H:%M")
    click.echo(f"mailbox {name} ({calendar.region}, {calendar.timezone}) at {local_now}")
    if not rows:
        click.echo("  no open cases")
    for row in rows:
        stage = f"stage {row['stage']}" if row["stage"] else "no stage"
        if row["deadline"] is None:
            waiting = (
                f"complainant may ask for the next stage until {_short(row['request_due'])}"
                if row["request_due"]
                else "nothing due"
            )
            click.echo(
                f"  {row['reference']}  {row['label']:<16} {row['status']:<12} {stage:<9} {waiting}"
            )
            continue
        click.echo(
            f"  {row['reference']}  {row['label']:<16} {row['status']:<12} {stage:<9} "
            f"{row['deadline']} due {_short(row['due'])}: {row['standing']}"
        )


def register(main: click.Group) -> None:
    """Add `deadline` and `sla` to the `candour` command group."""
    from daemon.cli.support import config_option

    main.add_command(deadline)
    main.add_command(config_option(sla))
