"""The `candour` command line: run the daemon, check configuration, inspect cases.

Exit codes: 0 success; 1 usage or not found; 2 configuration error; 3 database error;
75 a mailbox could not be processed (try again later); 78 no mailbox is usable.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from daemon import logs
from daemon.cli.support import (
    EXIT_CONFIG,
    EXIT_DATABASE,
    EXIT_TEMPFAIL,
    LazyGroup,
    config_option,
    database,
    fail,
    load_or_fail,
)
from daemon.cli.views import case_record, case_summary, iso
from daemon.config import ConfigError

# The database layer (SQLAlchemy, ~0.4 s to import) is imported inside the commands that
# use it: `candour run` starts its preparer children first, so that they import and load
# the model while the daemon imports the rest.


@click.group(
    cls=LazyGroup,
    # Imported when used: they load scikit-learn (~1 s and ~100 MB), which `candour run`
    # must not pay for (the classifier runs in its preparer process).
    lazy_subcommands={
        "train": "daemon.cli.classifier:train_command",
        "model": "daemon.cli.classifier:model_group",
        "evaluate": "daemon.cli.classifier:evaluate_command",
        "classify": "daemon.cli.classifier:classify_command",
    },
)
@click.version_option(package_name="candour-triage")
def main() -> None:
    """Candour: a complaints-inbox daemon."""


@main.command()
@config_option
@click.option("--once", is_flag=True, help="Process what is waiting, deliver, and exit.")
def run(config_path: Path, once: bool) -> None:
    """Run the daemon (JSON log lines on stderr)."""
    from daemon.mailbox.preparer import make_preparer
    from models.database import WorkerLocked, claim_single_worker

    config = load_or_fail(config_path)
    logs.configure(config.daemon.log_level)
    try:
        claim_single_worker(config.database.url)
    except WorkerLocked as exc:
        fail(str(exc), EXIT_TEMPFAIL)
    try:
        preparer = make_preparer(config)  # the children start now, in parallel
    except ConfigError as exc:
        fail(f"configuration error:\n{exc}", EXIT_CONFIG)
    from daemon.service.worker import Worker
    from models.database import DatabaseError

    try:
        worker = Worker.build(config, preparer=preparer)
    except ConfigError as exc:
        fail(f"configuration error:\n{exc}", EXIT_CONFIG)
    except DatabaseError as exc:
        fail(str(exc), EXIT_DATABASE)
    status = asyncio.run(worker.run_once() if once else worker.run_forever(config_path))
    sys.exit(status)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@config_option
def db_upgrade(config_path: Path) -> None:
    """Create or upgrade the schema to this version (also done at every start)."""
    config = load_or_fail(config_path)
    with database(config) as db:
        current, head = db.revision()
        click.echo(f"database at revision {current} (newest {head}): {db.safe_url}")


@main.group("cases")
def cases_group() -> None:
    """Inspect cases."""


@cases_group.command("list")
@config_option
@click.option("--mailbox", default=None, help="Only this mailbox.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    help="Only cases in this status (repeatable): new, acknowledged, in_stage, responded, "
    "referral_pending, closed, withdrawn, referred.",
)
@click.option("--review", is_flag=True, help="Only cases waiting for a person to check them.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def cases_list(
    config_path: Path, mailbox: str | None, statuses: tuple[str, ...], review: bool, as_json: bool
) -> None:
    """List cases, oldest first."""
    from models import cases

    config = load_or_fail(config_path)
    with database(config) as db, db.reader() as session:
        found = cases.list_cases(session, mailbox, statuses, needs_review=review)
        for case in found:
            summary = case_summary(case)
            if as_json:
                click.echo(json.dumps(summary))
            else:
                ack = (
                    f"{summary['acknowledged_at']} (due {summary['ack_due_at']})"
                    if summary["acknowledged_at"]
                    else f"not yet (due {summary['ack_due_at']})"
                )
                click.echo(
                    f"{case.reference}  {case.mailbox:<10} {case.label:<16} {case.status:<16} "
                    f"received {summary['received']}  acknowledged {ack}"
                )
        if not found and not as_json:
            click.echo("no cases")


@cases_group.command("show")
@config_option
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, history included.")
def cases_show(config_path: Path, reference: str, as_json: bool) -> None:
    """Show one case: what the procedure recorded, and its history (who did what, when).
    Every showing is audited (the operating-system user, the reference)."""
    from datetime import UTC, datetime

    from models import cases, records

    config = load_or_fail(config_path)
    with database(config) as db, db.transaction() as session:
        case = cases.case_by_reference(session, reference)
        if case is None:
            fail(f"no case {reference}", 1)
        records.audit(session, datetime.now(UTC), "cases show", case.reference)
        record = case_record(session, case)
        events = cases.case_events(session, case.id)
        if as_json:
            history = [
                {"at": iso(e.at), "kind": e.kind, "actor": e.actor, "detail": e.detail}
                for e in events
            ]
            click.echo(json.dumps({**record, "subject": case.subject, "history": history}))
            return
        for key, value in record.items():
            click.echo(f"{key:>16}: {value}")
        click.echo(f"{'subject':>16}: {case.subject}")
        click.echo("\nhistory:")
        for event in events:
            click.echo(
                f"  {event.at.isoformat()}  {event.kind:<26} {event.actor:<12} {event.detail}"
            )


@main.group("outbox")
def outbox_group() -> None:
    """Inspect and retry outgoing mail."""


@outbox_group.command("list")
@config_option
@click.option(
    "--status",
    type=click.Choice(["pending", "claimed", "sending", "sent", "failed", "in_doubt"]),
    default=None,
    help="Only rows in this delivery state.",
)
def outbox_list(config_path: Path, status: str | None) -> None:
    """List outgoing mail: to whom, its delivery state, and when it is tried next."""
    from models import outbox

    config = load_or_fail(config_path)
    with database(config) as db, db.reader() as session:
        rows = outbox.rows(session, status)
        for row in rows:
            when = (
                f"sent {iso(row.sent_at)}"
                if row.sent_at
                else f"next try {iso(row.not_before)}"
                if row.status == "pending"
                else "not retried automatically"
            )
            click.echo(
                f"{row.id:>6}  {row.mailbox:<10} {row.kind:<16} {row.status:<9} "
                f"to {row.recipient}  attempts {row.attempts}  {when}  {row.last_error or ''}"
            )
        if not rows:
            click.echo("no outgoing mail" + (f" in status {status}" if status else ""))


@outbox_group.command("retry")
@config_option
@click.argument("outbox_id", type=int)
def outbox_retry(config_path: Path, outbox_id: int) -> None:
    """Send an in-doubt or failed message again (you have checked it was not delivered)."""
    from daemon.clock import SystemClock
    from models import outbox

    config = load_or_fail(config_path)
    with database(config) as db, db.transaction() as session:
        if not outbox.retry(session, outbox_id, SystemClock().now()):
            fail(f"outbox {outbox_id} is not in_doubt or failed", 1)
    click.echo(f"outbox {outbox_id} queued again")


@main.command("quarantine")
@config_option
def quarantine(config_path: Path) -> None:
    """List messages that could not be processed (kept, flagged in IMAP, never dropped)."""
    from models import cases

    config = load_or_fail(config_path)
    with database(config) as db, db.reader() as session:
        rows = cases.quarantined(session)
        for message in rows:
            click.echo(
                f"{message.id:>6}  {message.mailbox:<10} uid {message.uid:<7} "
                f"{message.recorded_at.isoformat()}  {message.reason}"
            )
        if not rows:
            click.echo("nothing quarantined")


@main.command("addresses")
@config_option
def addresses(config_path: Path) -> None:
    """Each mailbox's new-case address: staff write to it to log a complaint made by phone,
    letter, web form or in person (see README, "Complaints made another way")."""
    from daemon.service.secrets import reply_secret
    from daemon.triage.other_channels import HELP
    from replies.addresses import new_case_address

    config = load_or_fail(config_path)
    try:
        if config.database.url.startswith("postgresql"):  # the secret the workers share
            with database(config) as db:
                secret = reply_secret(config, db)
        else:
            secret = reply_secret(config)
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    for mailbox in config.mailbox:
        click.echo(f"{mailbox.name}: {new_case_address(mailbox.address, secret)}")
    click.echo(HELP)


from daemon.cli.checks import check_config  # noqa: E402
from daemon.cli.deadlines import register as _register_deadline_commands  # noqa: E402
from daemon.cli.imports import import_cases  # noqa: E402
from daemon.cli.records import erase, export, retention_command  # noqa: E402
from daemon.cli.report import report  # noqa: E402
from daemon.cli.review import review_group  # noqa: E402
from daemon.cli.status import status  # noqa: E402

main.add_command(check_config)
main.add_command(review_group)
main.add_command(report)
main.add_command(status)
main.add_command(export)
main.add_command(erase)
main.add_command(retention_command)
cases_group.add_command(import_cases)
_register_deadline_commands(main)
