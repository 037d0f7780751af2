"""`candour cases import FILE --by STAFF`: see daemon.triage.imports."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from daemon.cli.support import EXIT_CONFIG, config_option, fail, load_or_fail, one_mailbox
from daemon.config import ConfigError


@click.command("import")
@config_option
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--by", "by", required=True, help="The member of staff importing (their address).")
@click.option("--mailbox", "mailbox_name", default=None, help="The mailbox (default: the first).")
def import_cases(config_path: Path, path: Path, by: str, mailbox_name: str | None) -> None:
    """Import complaints from a web form's CSV, JSON or JSON Lines export (fields: channel,
    name, email, received, post, subject, text). Each row goes to the mailbox's IMAP folder
    as a logged complaint; the daemon opens the cases. Nothing is imported if a row is wrong."""
    from daemon.mailbox.imap import ImapError, ImapSession
    from daemon.service.secrets import reply_secret
    from daemon.triage import imports
    from replies.addresses import new_case_address

    config = load_or_fail(config_path)
    mailbox = one_mailbox(config, mailbox_name)
    if not mailbox.is_staff(by):
        fail(f"--by {by}: not staff of mailbox {mailbox.name} (staff_domains, staff_addresses)")
    try:
        rows = imports.read_rows(path.name, path.read_text(encoding="utf-8-sig"))
        secret, password = reply_secret(config), mailbox.imap.password() or ""
    except imports.ImportProblem as exc:
        fail(f"{path}: {exc}")
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    problems = imports.check(rows, ZoneInfo(mailbox.timezone))
    if problems:
        fail(f"{path}: nothing imported:\n  " + "\n  ".join(problems))
    to, now = new_case_address(mailbox.address, secret), datetime.now(UTC)
    session = ImapSession(mailbox.imap, password)
    try:
        session.connect()
        mail = [imports.as_mail(r, to, by, now, secret) for r in rows]
        session.append_many(mailbox.imap.folder, mail)
    except ImapError as exc:
        fail(f"mailbox {mailbox.name}: {exc}", 75)
    finally:
        session.close()
    click.echo(f"{len(rows)} complaint(s) queued in {mailbox.name}; the daemon opens the cases")
