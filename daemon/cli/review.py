"""`candour review`: the cases waiting for a person to check what the model said.

`candour review [--mailbox NAME] [--json]` lists them, oldest first, with why they are
there; `candour review done REFERENCE LABEL` settles one from the command line as `#label`
does from a mail client: a full re-triage when the label changes (route, stage clock, an
owed acknowledgement), and the case leaves the queue either way.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import click

from classifiers.types import LABELS
from daemon.cli.support import EXIT_PROBLEM, config_option, database, fail, load_or_fail


@click.group("review", invoke_without_command=True)
@config_option
@click.option("--mailbox", default=None, help="Only this mailbox.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def review_group(ctx: click.Context, config_path: Path, mailbox: str | None, as_json: bool) -> None:
    """List the review queue (or settle one case: `candour review done REF LABEL`)."""
    if ctx.invoked_subcommand is not None:
        return
    from daemon.cli.views import case_summary
    from models import cases

    config = load_or_fail(config_path)
    with database(config) as db, db.reader() as session:
        waiting = cases.list_cases(session, mailbox, cases.OPEN_STATUSES, needs_review=True)
        for case in waiting:
            why = cases.last_event_detail(session, case.id, "screened") or "doubtful label"
            if as_json:
                click.echo(json.dumps({**case_summary(case), "why": why}))
            else:
                click.echo(
                    f"{case.reference}  {case.mailbox:<10} {case.label:<16} "
                    f"{case.confidence:.2f}  {case.status:<16} {why}"
                )
        if not waiting and not as_json:
            click.echo("nothing waiting for review")


@review_group.command("done")
@config_option
@click.argument("reference")
@click.argument("label", type=click.Choice(LABELS))
def review_done(config_path: Path, reference: str, label: str) -> None:
    """Settle REFERENCE as LABEL (re-triaged when the label changes)."""
    from daemon.casework.relabel import retriage
    from daemon.clock import SystemClock
    from daemon.service.scheduler import desks_for
    from models import cases

    config = load_or_fail(config_path)
    desks = {desk.mailbox.name: desk for desk in desks_for(config)}
    actor = f"{getpass.getuser()} (candour review)"
    now = SystemClock().now()
    with database(config) as db, db.transaction() as session:
        case = cases.case_by_reference(session, reference)
        if case is None or case.mailbox not in desks:
            fail(f"no case {reference}", EXIT_PROBLEM)
        changed = retriage(
            session, desks[case.mailbox], case, label, source="cli", actor=actor, now=now
        )
        case.needs_review = False
        cases.add_event(session, case, now, "review.done", f"as {label}", actor=actor)
    click.echo(f"{reference}: {'relabelled ' if changed else ''}{label}, out of the review queue")
