"""A burst: the backlog arriving in one IMAP MOVE at a daemon already running.

`stage_backlog` moves a seeded INBOX to a staging folder before the daemon starts;
`warm_up` has the daemon record and acknowledge one message of its own, so it is what a
running daemon is (imported, compiled, connected, idle in IDLE); `release_backlog` moves
the whole backlog to INBOX in one UID MOVE, the moment the burst's clock starts at.
"""

from __future__ import annotations

import contextlib
import time

from bench.latency import fresh_complaints
from bench.probe import POLL_SECONDS, DatabaseProbe
from bench.process import Daemon
from bench.stack import Mailbox, Sink

STAGING = "Staging"  # where a burst run's backlog waits while the daemon starts
WARM_UP_SEED = 4242  # the warm-up complaint's corpus seed: not a message of the backlog
SETTLE_SECONDS = 1.0  # after the warm-up: the outbox done, the watcher back in IDLE


def stage_backlog(mailbox: Mailbox) -> int:
    """Move every message of INBOX to the staging folder; returns how many."""
    return _move_all(mailbox, "INBOX", STAGING)[0]


def release_backlog(mailbox: Mailbox) -> float:
    """One UID MOVE of the whole staging folder to INBOX; returns the moment (monotonic)
    the MOVE was issued, after logging in and selecting: the burst's clock starts there."""
    return _move_all(mailbox, STAGING, "INBOX")[1]


def _move_all(mailbox: Mailbox, source: str, target: str) -> tuple[int, float]:
    """(how many moved, when the MOVE was issued)."""
    client = mailbox.connect()
    try:
        if not client.folder_exists(target):
            client.create_folder(target)
        client.select_folder(source)
        uids = client.search("ALL")
        issued = time.monotonic()
        if uids:
            client.move(uids, target)
        return len(uids), issued
    finally:
        with contextlib.suppress(Exception):
            client.logout()


def warm_up(
    daemon: Daemon, mailbox: Mailbox, probe: DatabaseProbe, sink: Sink, timeout: float
) -> str:
    """APPEND one new complaint and wait until it is recorded and acknowledged; "" when it
    was, else why not. Then a pause, so the daemon is idle in IDLE when the burst lands."""
    client = mailbox.connect()
    try:
        client.append("INBOX", next(fresh_complaints(WARM_UP_SEED)).raw)
    finally:
        with contextlib.suppress(Exception):
            client.logout()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.exit_status is not None:
            return f"daemon exited ({daemon.exit_status}) during the warm-up"
        progress = probe.progress()
        acknowledged = progress.outbox >= 1 and sink.count >= progress.outbox
        if progress.messages >= 1 and progress.sent == progress.outbox and acknowledged:
            time.sleep(SETTLE_SECONDS)
            return ""
        time.sleep(POLL_SECONDS)
    return f"the warm-up message was not acknowledged in {timeout:.0f} s: {daemon.log_tail(3)}"
