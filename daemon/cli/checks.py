"""`candour check-config [--connect]`: is this configuration ready to run?

Without `--connect` nothing is contacted: the file is validated, the secrets it names are
read, the state directory must be writable, and what would surprise an admin later is
said as a warning (a mailbox with no routes sends no staff copy; without staff addresses
nobody can answer from a mail client; password files, the state directory, the reply
secret or the database readable by other accounts). With `--connect` it also opens the
database, logs in to each mailbox's IMAP server and to SMTP, one line each. Exit 2 on any
problem.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import click

from daemon.cli.support import EXIT_CONFIG, config_option, fail, load_or_fail
from daemon.config import Config, ConfigError, MailboxConfig


def state_dir_problem(path: Path) -> str | None:
    """Why the daemon could not keep its state in `path`, or None. It is created at start
    when missing, so the nearest existing directory must be writable then."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"daemon.state_dir {path}: {existing} is not a directory"
    try:  # a real write, gone at once: os.access says yes to root even on /proc
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        return f"daemon.state_dir {path}: {existing} is not writable ({exc.strerror})"
    return None


def warnings(config: Config) -> list[str]:
    """What is valid but would surprise an admin once mail arrives."""
    found = []
    for mailbox in config.mailbox:
        routes = mailbox.routes.model_dump()
        if not any(routes.values()):
            found.append(f"mailbox {mailbox.name}: no [mailbox.routes]: no staff copy is sent")
        elif not routes["review"]:
            found.append(
                f"mailbox {mailbox.name}: no routes.review: doubtful mail goes to routes.complaint"
            )
        if not (mailbox.staff_domains or mailbox.staff_addresses):
            found.append(
                f"mailbox {mailbox.name}: no staff_domains or staff_addresses: staff "
                "replies to case addresses are treated as the public's"
            )
        elif not mailbox.staff_authentication.authserv_id:
            found.append(
                f"mailbox {mailbox.name}: staff addresses without "
                "[mailbox.staff_authentication]: anyone who forges a staff From can act as staff"
            )
    return found


def _readable(path: Path, by: int) -> str | None:
    """Who besides the owner can read `path` ("others", "its group"), given the mode bits
    `by` asked about; None when nobody else can, or it does not exist."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & by & 0o007:
        return "others"
    if mode & by & 0o070:
        return "its group"
    return None


def exposure_warnings(config: Config) -> list[str]:
    """Secrets and personal data that other accounts on this machine can read: password
    files (group or others), the state directory, the reply secret and the SQLite
    database (others)."""
    found = []
    for where, secret in [("smtp", config.smtp)] + [
        (f"mailbox {m.name}: imap", m.imap) for m in config.mailbox
    ]:
        path = secret.password_file
        who = _readable(path, 0o044) if path is not None else None
        if path is not None and who:
            found.append(f"{where}: password_file {path} is readable by {who} (chmod 600)")
    state = config.daemon.state_dir
    places = [
        ("daemon.state_dir", state, 0o005, "chmod 700"),
        ("reply secret", config.daemon.secret_file or state / "reply-secret", 0o004, "chmod 600"),
    ]
    if config.database.url.startswith("sqlite:///"):
        database = Path(config.database.url.removeprefix("sqlite:///").split("?", 1)[0])
        places.append(("database", database, 0o004, "chmod 600"))
    for name, path, by, fix in places:
        who = _readable(path, by)
        if who:
            found.append(f"{name} {path} can be read by {who} ({fix})")
    return found


def _explain(mailbox: MailboxConfig) -> list[str]:
    """The mailbox's complaints procedure in words, as check-config --explain prints it."""
    policy = mailbox.policy
    lines = [
        f"mailbox {mailbox.name}" + (f" (preset {policy.preset})" if policy.preset else "") + ":",
        f"  acknowledge within {mailbox.acknowledge_limit}",
    ]
    if policy.early_resolution:
        lines.append(
            f"  early resolution (#early): within {policy.early_resolution.respond_within}"
        )
    start = "from receipt" if policy.clock_starts == "receipt" else "from #accept"
    for number, stage in enumerate(policy.stages, start=1):
        asked = f", asked for within {stage.request_within}" if stage.request_within else ""
        who = f", answered by {stage.handler}" if stage.handler else ""
        since = f" {start}" if number == 1 else " from the request"
        lines.append(f"  {stage.name}: respond within {stage.respond_within}{since}{asked}{who}")
    lines.append(
        f"  extensions: {policy.max_extensions_per_stage} per stage, at most "
        f"{policy.max_extension_working_days} working days each"
    )
    lines.append(f"  after the last stage: {policy.final_rights}")
    lines.append(f"  complaints normally made within {policy.time_limit_months} months")
    return lines


def problems(config: Config) -> list[str]:
    """Secrets that cannot be read, a state directory that cannot be written."""
    found = []
    for where, secret in [("smtp", config.smtp)] + [
        (f"mailbox {m.name}: imap", m.imap) for m in config.mailbox
    ]:
        try:
            secret.password()
        except ConfigError as exc:
            found.append(f"{where}: {exc}")
    state = state_dir_problem(config.daemon.state_dir)
    if state:
        found.append(state)
    return found


def connections(config: Config) -> list[tuple[bool, str]]:
    """(ok, line) for the database, each mailbox's IMAP login and the SMTP login."""
    from daemon.mailbox.imap import ImapError, ImapSession
    from models.database import Database, DatabaseError
    from replies.smtp import Mailer, SmtpUnavailable

    lines: list[tuple[bool, str]] = []
    database = Database(config.database.url)
    try:
        current, head = database.revision()
        lines.append(
            (True, f"database {database.safe_url}: schema {current or 'none'} (newest {head})")
        )
    except DatabaseError as exc:
        lines.append((False, f"database: {exc}"))
    finally:
        database.dispose()
    for mailbox in config.mailbox:
        session = ImapSession(mailbox.imap, mailbox.imap.password() or "")
        try:
            state = session.connect()
            server = f"IMAP {mailbox.imap.host}:{mailbox.imap.port}"
            idle = "yes" if state.supports_idle else "no"
            done = f"logged in, {mailbox.imap.folder} selected (IDLE {idle})"
            lines.append((True, f"mailbox {mailbox.name}: {server} {done}"))
        except ImapError as exc:
            lines.append((False, f"mailbox {mailbox.name}: {exc}"))
        finally:
            session.close()
    try:
        asyncio.run(Mailer(config.smtp, config.smtp.password()).check())
        lines.append((True, f"SMTP {config.smtp.host}:{config.smtp.port}: connected and logged in"))
    except SmtpUnavailable as exc:
        lines.append((False, str(exc)))
    return lines


@click.command("check-config")
@config_option
@click.option("--connect", is_flag=True, help="Also open the database and log in to IMAP and SMTP.")
@click.option("--explain", is_flag=True, help="Also say each mailbox's procedure in words.")
def check_config(config_path: Path, connect: bool, explain: bool) -> None:
    """Validate the configuration, the secrets it names and the state directory."""
    config = load_or_fail(config_path)
    found = problems(config)
    if found:
        fail(
            "configuration error:\n" + "\n".join(f"{config_path}: {p}" for p in found), EXIT_CONFIG
        )
    for warning in warnings(config) + exposure_warnings(config):
        click.echo(f"{config_path}: warning: {warning}")
    for mailbox in config.mailbox if explain else ():
        click.echo("\n".join(_explain(mailbox)))
    failed = False
    if connect:
        for ok, line in connections(config):
            click.echo(f"{'ok  ' if ok else 'FAIL'} {line}")
            failed = failed or not ok
    if failed:
        fail("could not connect (see FAIL above)", EXIT_CONFIG)
    names = ", ".join(m.name for m in config.mailbox)
    click.echo(f"{config_path}: OK ({len(config.mailbox)} mailbox(es): {names})")
