"""Label folders: staff relabel a case by moving its message into `Candour/Label/<label>`.

The watcher scans the folders at most every LABEL_SCAN_SECONDS; each message found there
relabels its case (daemon.casework.relabel) and gets a keyword so it is read once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from daemon.casework.relabel import relabel_by_message_id
from daemon.mailbox.imap import ImapSession
from daemon.triage.pipeline import Triage

log = structlog.get_logger("candour.watcher")

LABEL_SCAN_SECONDS = 60.0  # how soon a message moved into a label folder is noticed
DONE_KEYWORD = "$CandourLabelled"


class LabelFolders:
    """One mailbox's label folders: found once, scanned now and then."""

    def __init__(self) -> None:
        self._folders: dict[str, str] | None = None
        self.last_scan = 0.0

    def due(self) -> bool:
        return time.monotonic() - self.last_scan >= LABEL_SCAN_SECONDS

    def apply(self, imap: ImapSession, triage: Triage, on_queued: Callable[[], None]) -> int:
        """Relabel cases whose message staff moved into a label folder; returns how many."""
        from classifiers.types import LABELS

        if not triage.mailbox.imap.label_folders:
            return 0
        if self._folders is None:
            self._folders = imap.label_folders(LABELS)
        changed = 0
        try:
            for label, folder in self._folders.items():
                moved = imap.message_ids_in(folder, DONE_KEYWORD)
                if not moved:
                    continue
                with triage.db.transaction() as session:
                    for message_id in moved.values():
                        if message_id and relabel_by_message_id(
                            session, triage.desk, message_id, label, triage.clock.now()
                        ):
                            changed += 1
                imap.mark_in_selected(list(moved), DONE_KEYWORD)
        finally:
            imap.select()
        if changed:
            on_queued()  # the new route's copy, an acknowledgement owed
            log.info(
                "case.relabelled", mailbox=triage.mailbox.name, count=changed, source="imap-folder"
            )
        self.last_scan = time.monotonic()
        return changed
