"""Records under UK GDPR (issue 22): `candour export` answers a subject-access request,
`candour erase` an erasure request. Both are audited (models.records.audit) with the
operating-system user, and neither audit line names the subject."""

from __future__ import annotations

import json
import os
import zipfile
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from daemon.cli.support import config_option, database, fail, load_or_fail
from daemon.cli.views import case_record, iso

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from models.records import Subject

STAFF_ONLY = ("note", "staff.reply_rejected", "screened", "classified", "relay.withheld")


def _events(session: Session, subject: Subject) -> dict[str, list[dict[str, Any]]]:
    from models import records

    return {
        case.reference: [
            {
                "at": iso(e.at),
                "kind": e.kind,
                "by": e.actor,
                "detail": e.detail,
                "staff_only": e.kind in STAFF_ONLY,  # for the DPO to review before release
            }
            for e in records.events(session, case)
        ]
        for case in subject.cases
    }


def _summary(who: str, cases: list[dict[str, Any]], made: str) -> str:
    rows = "".join(
        f"<h2>{escape(c['reference'])}</h2><p>{escape(str(c['label']))}, {escape(c['status'])},"
        f" received {escape(str(c['received']))}</p><ul>"
        + "".join(
            f"<li{' class=staff' if e['staff_only'] else ''}>{escape(str(e['at']))} "
            f"{escape(e['kind'])}: {escape(e['detail'])}"
            f"{' <b>(staff only: review before release)</b>' if e['staff_only'] else ''}</li>"
            for e in c["history"]
        )
        + "</ul>"
        for c in cases
    )
    return (
        "<!doctype html><meta charset=utf-8><title>Subject access export</title>"
        "<style>body{font:15px system-ui;max-width:50rem;margin:auto}.staff{color:#8a4b00}"
        f"</style><h1>Records held about {escape(who)}</h1><p>Made {escape(made)}.</p>{rows}"
    )


@click.command("export")
@config_option
@click.option("--subject", "who", required=True, help="ADDRESS, or pseudonym:USERNAME.")
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
def export(config_path: Path, who: str, output: Path) -> None:
    """A subject-access export: every message from and to the person (.eml), their cases
    with history and outcomes (JSON, and a readable HTML summary), staff-only entries marked
    for the data protection officer's review."""
    from models import records

    config = load_or_fail(config_path)
    now = datetime.now(UTC)
    with database(config) as db, db.transaction() as session:
        subject = records.find(session, who)
        if not (subject.cases or subject.messages or subject.mail):
            fail(f"nothing is held about {who}")
        history = _events(session, subject)
        cases = [
            {**case_record(session, c), "history": history[c.reference]} for c in subject.cases
        ]
        # A person's whole file: readable by whoever runs the export, nobody else.
        handle = os.fdopen(os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
        os.fchmod(handle.fileno(), 0o600)  # also when the file existed
        with handle, zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for m in subject.messages:
                archive.writestr(f"received/{m.id:06d}.eml", m.raw)
            for o in subject.mail:
                archive.writestr(f"sent/{o.id:06d}.eml", o.raw)
            archive.writestr("cases.json", json.dumps(cases, indent=2))
            archive.writestr("summary.html", _summary(who, cases, now.isoformat()))
        counts = f"{len(cases)} cases, {len(subject.messages)} messages, {len(subject.mail)} sent"
        records.audit(session, now, "export", f"subject access export: {counts}")
    click.echo(f"{output}: {counts}")


@click.command("erase")
@config_option
@click.option("--subject", "who", required=True, help="ADDRESS, or pseudonym:USERNAME.")
@click.option("--reason", required=True, help="Why (recorded in the audit trail).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Erase even while a case is open.")
def erase(config_path: Path, who: str, reason: str, yes: bool, force: bool) -> None:
    """Erase a person's messages, mail, identifiers and free text everywhere in the
    database, keeping each case's figures (label, dates, stages, outcome) for the reports;
    then rewrite the database files so the bytes are gone. Audited without identifiers."""
    from models import records

    config = load_or_fail(config_path)
    now = datetime.now(UTC)
    with database(config) as db:
        with db.transaction() as session:
            subject = records.find(session, who)
            if not (subject.cases or subject.messages or subject.mail):
                fail(f"nothing is held about {who}")
            if subject.open_cases and not force:
                still = ", ".join(subject.open_cases)
                fail(
                    f"{len(subject.open_cases)} case(s) still open ({still}): close them"
                    " first, or give --force if the erasure cannot wait"
                )
            if not yes:
                click.confirm(
                    f"Erase {len(subject.cases)} case(s), {len(subject.messages)} message(s) and "
                    f"{len(subject.mail)} sent mail of this person?",
                    abort=True,
                )
            counts = records.erase(session, subject)
            said = ", ".join(f"{n} {what}" for what, n in counts.items())
            records.audit(session, now, "erase", f"{reason} ({said})")
        db.compact()
    click.echo(f"erased: {said}. The IMAP mailbox keeps its own copy: delete it there too.")


@click.command("retention")
@config_option
@click.option("--dry-run", is_flag=True, help="Say what would be purged; change nothing.")
def retention_command(config_path: Path, dry_run: bool) -> None:
    """Purge the content of cases kept past their label's retention period
    ([mailbox.retention]), keeping their figures; the daemon does this daily too."""
    from daemon.casework import retention

    config = load_or_fail(config_path)
    now = datetime.now(UTC)
    total = 0
    with database(config) as db:
        with db.reader() if dry_run else db.transaction() as session:
            for mailbox in config.mailbox:
                if dry_run:
                    found = retention.due(session, mailbox, now)
                    counts = {label: len(cases) for label, cases in found.items()}
                else:
                    counts = retention.purge(session, mailbox, now)
                for label, n in counts.items():
                    verb = "would purge" if dry_run else "purged"
                    click.echo(f"{mailbox.name}: {verb} {n} {label} case(s)")
                total += sum(counts.values())
        if total and not dry_run:
            db.compact()
    if not total:
        click.echo("nothing is past its retention period")
