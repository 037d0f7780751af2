"""`candour status [--json]`: what a monitoring check (Nagios, Icinga, a cron mail) needs,
with the plugin convention's exit code: 0 OK, 1 warning, 2 critical."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from daemon.cli.support import config_option, database, load_or_fail

OK, WARNING, CRITICAL = 0, 1, 2


def verdict(
    report: dict[str, Any], pending_minutes: float, sync_minutes: float = 30.0
) -> tuple[int, list[str]]:
    """The exit code and why, from the status report. Pure.

    Critical: no worker alive; mail waiting longer than `pending_minutes`; an
    acknowledgement overdue. Warning: mail in doubt or failed; messages quarantined; a
    stage response overdue; a mailbox not seen through for `sync_minutes` (a watcher in
    IDLE passes at least every idle_renew_seconds, 10 minutes by default).
    """
    critical, warning = [], []
    if not report["workers"]:
        critical.append("no worker is running (no heartbeat in the last 2 minutes)")
    age = report["outbox"]["oldest_pending_minutes"]
    if age is not None and age > pending_minutes:
        critical.append(f"mail has waited {age:.0f} minutes to be sent")
    outbox = report["outbox"]["by_status"]
    for status in ("in_doubt", "failed"):
        if outbox.get(status):
            warning.append(f"{outbox[status]} outgoing mail {status}")
    for box in report["mailboxes"]:
        if box["overdue_acknowledgements"]:
            critical.append(f"{box['name']}: {box['overdue_acknowledgements']} overdue acks")
        if box["overdue_stages"]:
            warning.append(f"{box['name']}: {box['overdue_stages']} overdue stage responses")
        if box["quarantined"]:
            warning.append(f"{box['name']}: {box['quarantined']} quarantined messages")
        since = box.get("sync_minutes_ago")
        if since is None or since > sync_minutes:
            when = f"not seen through for {since:.0f} min" if since else "never seen through"
            warning.append(f"{box['name']}: {when} ({box.get('backlog', 0)} waiting)")
    if critical:
        return CRITICAL, critical + warning
    return (WARNING, warning) if warning else (OK, [])


def _mailbox(box: Any, now: datetime) -> dict[str, Any]:
    out = asdict(box)
    for key in ("last_recorded", "last_sync"):
        out[key] = out[key].isoformat() if out[key] else None
    out["sync_minutes_ago"] = (now - box.last_sync).total_seconds() / 60 if box.last_sync else None
    return out


@click.command("status")
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.option(
    "--pending-minutes",
    type=float,
    default=15.0,
    show_default=True,
    help="Critical when outgoing mail has waited longer than this.",
)
@click.option(
    "--sync-minutes",
    type=float,
    default=30.0,
    show_default=True,
    help="Warning when a mailbox has not been seen through for longer than this.",
)
def status(config_path: Path, as_json: bool, pending_minutes: float, sync_minutes: float) -> None:
    """Workers alive, outbox depth, and per mailbox the last message recorded, open and
    overdue cases, quarantined messages; exit 0 OK, 1 warning, 2 critical."""
    from classifiers.store import ModelStore
    from models import status as reading
    from replies.deliver import is_gone

    config = load_or_fail(config_path)
    now = datetime.now(UTC)
    with database(config) as db, db.reader() as session:
        boxes = [reading.mailbox_status(session, m.name, now) for m in config.mailbox]
        outbox = reading.outbox_status(session)
        recent = reading.recent_workers(session, now, timedelta(minutes=2))
    workers = sorted(w for w, seen in recent.items() if not is_gone(w, seen, now, me=""))
    oldest = outbox.oldest_pending
    report = {
        "at": now.isoformat(),
        "workers": workers,
        "model": ModelStore(config.daemon.state_dir).current() or "shipped",
        "outbox": {
            "by_status": outbox.by_status,
            "oldest_pending_minutes": (now - oldest).total_seconds() / 60 if oldest else None,
        },
        "mailboxes": [_mailbox(b, now) for b in boxes],
    }
    code, why = verdict(report, pending_minutes, sync_minutes)
    report["status"] = ("OK", "WARNING", "CRITICAL")[code]
    report["problems"] = why
    if as_json:
        click.echo(json.dumps(report))
    else:
        click.echo(f"CANDOUR {report['status']}" + (f": {'; '.join(why)}" if why else ""))
        click.echo(f"  workers: {len(workers)}, model {report['model']}, outbox {outbox.by_status}")
        for b in boxes:
            click.echo(
                f"  {b.name}: last recorded {b.last_recorded or 'never'}, {b.open_cases} open, "
                f"{b.overdue_acknowledgements} acks overdue, {b.overdue_stages} stages overdue, "
                f"{b.quarantined} quarantined, seen through {b.last_sync or 'never'} "
                f"({b.backlog} waiting then)"
            )
    sys.exit(code)
