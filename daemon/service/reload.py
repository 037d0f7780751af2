"""SIGHUP: re-read the configuration and reload the classifier, without stopping intake.

What a running daemon can take on: each mailbox's settings other than its IMAP connection
(policy, routes, templates, staff, signposting...), the classifier settings and model (a
fresh preparer child loads it), the log level. What needs a restart is kept as it was and
logged as such (`needs_restart`): the mailbox list, the database, SMTP, each mailbox's
IMAP connection, the state directory and preparer processes, and the schedules (reminders,
board reports, retention), which the scheduler read at start.

A configuration that fails validation is refused whole: the daemon keeps running on the one
it had. Watchers take the new settings between cycles, never within one (watcher.reload).

Log events: config.reload_refused, config.needs_restart, config.reloaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import structlog

from daemon import logs
from daemon.clock import Clock
from daemon.config import Config, ConfigError, MailboxConfig, load_config
from daemon.mailbox.preparer import make_preparer
from daemon.mailbox.watcher import MailboxWatcher
from daemon.triage.pipeline import Triage
from daemon.triage.prepare import Preparer
from models.database import Database

log = structlog.get_logger("candour.reload")

# Parts of a mailbox's table that only take effect at a restart.
MAILBOX_AT_RESTART = ("imap", "reminders", "board_reports", "retention")
DAEMON_AT_RESTART = ("state_dir", "prepare_processes", "secret_file", "batch_size")
REFUSED = "reload refused: the configuration is invalid (see the log); running on the old one"


def needs_restart(old: Config, new: Config) -> list[str]:
    """The changes from `old` to `new` that a reload cannot apply (config keys), in order."""
    changes = []
    if [m.name for m in old.mailbox] != [m.name for m in new.mailbox]:
        changes.append("mailbox (the list of mailboxes)")
    changes += [key for key in ("database", "smtp") if getattr(old, key) != getattr(new, key)]
    changes += [
        f"daemon.{key}"
        for key in DAEMON_AT_RESTART
        if getattr(old.daemon, key) != getattr(new.daemon, key)
    ]
    by_name = {m.name: m for m in new.mailbox}
    for mailbox in old.mailbox:
        other = by_name.get(mailbox.name)
        if other is not None:
            changes += [
                f"mailbox {mailbox.name}: {key}"
                for key in MAILBOX_AT_RESTART
                if getattr(mailbox, key) != getattr(other, key)
            ]
    return changes


def effective(old: Config, new: Config) -> Config:
    """The configuration to run on after a reload: `new`, but with whatever needs a restart
    (needs_restart) as in `old`. Mailboxes are those of `old`."""
    by_name = {m.name: m for m in new.mailbox}

    def mailbox(current: MailboxConfig) -> MailboxConfig:
        fresh = by_name.get(current.name)
        if fresh is None:
            return current
        return fresh.model_copy(update={k: getattr(current, k) for k in MAILBOX_AT_RESTART})

    daemon = new.daemon.model_copy(update={k: getattr(old.daemon, k) for k in DAEMON_AT_RESTART})
    return new.model_copy(
        update={
            "mailbox": tuple(mailbox(m) for m in old.mailbox),
            "database": old.database,
            "smtp": old.smtp,
            "daemon": daemon,
        }
    )


class Reloader:
    """Applies reloads to running watchers; owns the preparers they leave behind."""

    def __init__(
        self,
        config_path: Path | None,
        config: Config,
        db: Database,
        clock: Clock,
        watchers: Sequence[MailboxWatcher],
        preparer: Preparer,
    ) -> None:
        self.config_path = config_path
        self.config = config
        self.db = db
        self.clock = clock
        self.watchers = watchers
        self.preparer = preparer
        self._retired: list[Preparer] = []

    def reload(self) -> str:
        """Re-read the file and hand the watchers new settings and a new preparer. Blocking
        (run it in a thread). Returns a line for systemd's STATUS; never raises for a bad
        configuration."""
        if self.config_path is None:
            return "reload ignored: no configuration file"
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            log.error("config.reload_refused", error=str(exc))
            return REFUSED
        restart = needs_restart(self.config, new)
        if restart:
            log.warning("config.needs_restart", changes=restart)
        applied = effective(self.config, new)
        try:
            preparer = make_preparer(applied)  # a fresh child: loads the model again
        except ConfigError as exc:
            log.error("config.reload_refused", error=str(exc))
            return REFUSED
        try:
            triages = [self._triage(w, applied, preparer) for w in self.watchers]
        except ConfigError as exc:  # an unreadable registry or service-user list
            preparer.close()
            log.error("config.reload_refused", error=str(exc))
            return REFUSED
        logs.configure(applied.daemon.log_level)
        for watcher, triage in zip(self.watchers, triages, strict=True):
            watcher.reload(triage)
        self._retired.append(self.preparer)
        self.preparer, self.config = preparer, applied
        log.info("config.reloaded", needs_restart=restart)
        if restart:
            return f"reloaded; needs a restart to apply: {', '.join(restart)}"
        return "reloaded"

    def _triage(self, watcher: MailboxWatcher, config: Config, preparer: Preparer) -> Triage:
        mailbox = config.mailbox_named(watcher.mailbox.name)
        return Triage(
            mailbox,
            self.db,
            preparer,
            self.clock,
            secret=watcher.triage.desk.secret,
            screening=config.classifier,
        )

    def close_retired(self, force: bool = False) -> None:
        """Close the preparers every watcher has stopped using (all, when `force`)."""
        if self._retired and (force or not any(w.reload_pending for w in self.watchers)):
            retired, self._retired = self._retired, []
            for preparer in retired:
                preparer.close()
