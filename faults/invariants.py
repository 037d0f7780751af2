"""What must hold after any run, however it was interrupted; checked from the outside.

Reads the mailbox over IMAP, the database with plain queries and what the SMTP peer
received, and answers with figures and a list of violations (empty when all is well):
- nothing was deleted from IMAP: every UID the run appended is still there;
- every message in the mailbox has exactly one record (a case, follow-up, automatic or
  quarantined message row), and no record lacks its message;
- the cursor and the keywords agree with the database: the cursor is at the last UID, and
  every recorded message carries the keyword its outcome calls for;
- every acknowledgement queued went out exactly once (counted at the peer by Message-ID),
  or is `in_doubt` or `failed` (refused by the peer) and so reported by `candour status`;
  none is still waiting; nothing reached the peer twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser

import imapclient
from sqlalchemy import Connection, text

from models.database import Database
from tests.mailstack import Received

TRIAGED = b"$CandourTriaged"
QUARANTINED = b"$CandourQuarantined"


@dataclass
class Figures:
    """One run's outcome, as the figures table prints it."""

    messages: int = 0  # in the mailbox
    recorded: int = 0
    quarantined: int = 0  # recorded for a human to look at (corpus mail never should be)
    acks: int = 0  # acknowledgements queued
    delivered: int = 0  # distinct acknowledgements at the peer
    lost: int = 0  # messages without a record, acknowledgements neither sent nor reported
    duplicated: int = 0  # records or deliveries beyond the first
    in_doubt: int = 0
    in_doubt_crash: int = 0  # of which: left in `sending` by a killed worker (the rest: the
    # peer dropped the connection after the whole message, a verdict SMTP cannot give)
    failed: int = 0  # refused by the peer (5xx): reported, never sent
    violations: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MailboxView:
    """What IMAP holds: each UID's flags, and the UIDVALIDITY."""

    uidvalidity: int
    flags: dict[int, frozenset[bytes]]


def read_mailbox(host: str, port: int, user: str, password: str) -> MailboxView:
    client = imapclient.IMAPClient(host, port=port, ssl=False, timeout=60)
    try:
        client.login(user, password)
        status = client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL") if status[b"EXISTS"] else []
        found = client.fetch(uids, ["FLAGS"]) if uids else {}
        flags = {uid: frozenset(data[b"FLAGS"]) for uid, data in found.items()}
        return MailboxView(int(status[b"UIDVALIDITY"]), flags)
    finally:
        client.logout()


def check(db_url: str, mailbox: MailboxView, appended: int, received: list[Received]) -> Figures:
    """The figures and violations of one run whose mailbox got `appended` messages."""
    figures = Figures(messages=len(mailbox.flags))
    if len(mailbox.flags) != appended:
        figures.violations.append(f"IMAP holds {len(mailbox.flags)} of {appended} appended")
    db = Database(db_url)
    try:
        with db.engine.connect() as conn:
            _records(conn, mailbox, figures)
            _acknowledgements(conn, received, figures)
    finally:
        db.dispose()
    return figures


def _records(conn: Connection, mailbox: MailboxView, figures: Figures) -> None:
    rows = conn.execute(
        text("SELECT uid, outcome FROM message WHERE mailbox = 'main' AND uidvalidity = :v"),
        {"v": mailbox.uidvalidity},
    ).all()
    per_uid = Counter(uid for uid, _ in rows)
    outcome = {uid: kind for uid, kind in rows}
    figures.recorded = len(per_uid)
    figures.quarantined = sum(1 for kind in outcome.values() if kind == "quarantined")
    missing = sorted(set(mailbox.flags) - set(per_uid))
    figures.lost += len(missing)
    figures.duplicated += sum(n - 1 for n in per_uid.values())
    if missing:
        figures.violations.append(f"{len(missing)} messages without a record: {missing[:10]}")
    if stray := sorted(set(per_uid) - set(mailbox.flags)):
        figures.violations.append(f"records of UIDs gone from IMAP: {stray[:10]}")
    cursor = conn.execute(
        text(
            "SELECT last_uid, keyword_uid FROM imap_cursor"
            " WHERE mailbox = 'main' AND uidvalidity = :v"
        ),
        {"v": mailbox.uidvalidity},
    ).all()
    last = max(mailbox.flags, default=0)
    if last and [tuple(c) for c in cursor] != [(last, last)]:
        figures.violations.append(f"cursor {cursor} does not stand at UID {last}")
    for uid, flags in mailbox.flags.items():
        want = QUARANTINED if outcome.get(uid) == "quarantined" else TRIAGED
        if uid in outcome and want not in flags:
            figures.violations.append(f"UID {uid} ({outcome[uid]}) lacks {want.decode()}")
            break


def _acknowledgements(conn: Connection, received: list[Received], figures: Figures) -> None:
    rows = conn.execute(
        text("SELECT message_id, status, last_error FROM outbox WHERE kind = 'acknowledgement'")
    ).all()
    at_peer = Counter(_message_id(r.data) for r in received)
    figures.acks = len(rows)
    figures.duplicated += sum(n - 1 for n in at_peer.values() if n > 1)
    if doubled := [m for m, n in at_peer.items() if n > 1]:
        figures.violations.append(f"{len(doubled)} mails reached the peer twice: {doubled[:5]}")
    for message_id, status, error in rows:
        count = at_peer.get(message_id, 0)
        figures.delivered += count > 0
        if status == "in_doubt":
            figures.in_doubt += 1  # reported; the peer may or may not have it
            figures.in_doubt_crash += "worker stopped" in (error or "")
        elif status == "failed":
            figures.failed += 1
            if count:
                figures.violations.append(f"{message_id}: failed, yet the peer has it")
        elif status == "sent" and count != 1:
            figures.violations.append(f"{message_id}: sent, the peer has it {count} times")
            figures.lost += count == 0
        elif status != "sent":
            figures.lost += 1
            figures.violations.append(f"{message_id}: still {status} at the end")


def _message_id(raw: bytes) -> str:
    value = BytesHeaderParser().parsebytes(raw).get("Message-ID", "")
    return "".join(str(value).split()).strip("<>")
