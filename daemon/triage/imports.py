"""`candour cases import FILE`: complaints from a web form's export (CSV, JSON or JSON
Lines) go the same way as a complaint staff log by email (daemon.triage.other_channels):
each row becomes a message to the mailbox's new-case address from the importing member of
staff, appended to the IMAP folder the daemon watches, so it is kept, deduplicated (the
Message-ID is the row's hash: importing a file twice opens nothing twice) and processed
like any other. Reading and building are pure; the CLI does the I/O.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from zoneinfo import ZoneInfo

from daemon.triage.other_channels import read_logged

FIELDS = ("channel", "name", "email", "received", "post", "subject", "text")


class ImportProblem(ValueError):
    """A file that cannot be imported: which row, and what is wrong."""


@dataclass(frozen=True)
class Row:
    number: int  # from 1, as a person counts the rows (a CSV's header is not one)
    fields: dict[str, str]

    def commands(self) -> str:
        """The row as a logged complaint: the commands, a blank line, the complaint."""
        f = self.fields
        who = formataddr((f.get("name", ""), f["email"])) if f.get("email") else f.get("name", "")
        lines = [f"#channel {f.get('channel') or 'web'}", f"#from {who}"]
        lines += [f"#{key} {f[key]}" for key in ("received", "post") if f.get(key)]
        return "\n".join(lines) + "\n\n" + f.get("text", "").strip() + "\n"


def read_rows(name: str, data: str) -> list[Row]:
    """The rows of a .csv, .json (a list of objects) or .jsonl file. Raises ImportProblem."""
    if name.endswith(".csv"):
        reader = csv.DictReader(io.StringIO(data))
        records: list[object] = list(reader)
    elif name.endswith(".jsonl"):
        try:
            records = [json.loads(line) for line in data.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise ImportProblem(f"line {exc.lineno}: not JSON ({exc.msg})") from exc
    elif name.endswith(".json"):
        try:
            loaded = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ImportProblem(f"not JSON: {exc.msg} at line {exc.lineno}") from exc
        records = loaded if isinstance(loaded, list) else [loaded]
    else:
        raise ImportProblem("give a .csv, .json or .jsonl file")
    return [_row(number, record) for number, record in enumerate(records, start=1)]


def _row(number: int, record: object) -> Row:
    if not isinstance(record, dict):
        raise ImportProblem(f"row {number}: not an object with {', '.join(FIELDS)}")
    unknown = sorted(set(record) - set(FIELDS))
    if unknown:
        raise ImportProblem(f"row {number}: unknown field(s) {', '.join(map(str, unknown))}")
    return Row(number, {k: str(v).strip() for k, v in record.items() if v not in (None, "")})


def check(rows: list[Row], zone: ZoneInfo) -> list[str]:
    """What is wrong with each row, as the daemon would say it (nothing imported if any)."""
    problems = []
    for row in rows:
        found = read_logged(row.commands(), zone)
        if isinstance(found, list):
            problems += [f"row {row.number}: {problem}" for problem in found]
    return problems


SEAL_HEADER = "X-Candour-Import"


def seal(secret: bytes, message_id: str) -> str:
    """What vouches for an imported message: it was put into IMAP by `candour cases import`,
    never through a mail server, so it carries no Authentication-Results; this keyed hash of
    its Message-ID (the reply secret) stands in for them (pipeline: staff identity)."""
    return hmac.new(secret, f"import:{message_id}".encode(), hashlib.sha256).hexdigest()[:40]


def sealed(secret: bytes, message_id: str | None, values: tuple[str, ...]) -> bool:
    """Whether a message's SEAL_HEADER values prove `candour cases import` put it there."""
    if not message_id:
        return False
    expected = seal(secret, message_id)
    return any(hmac.compare_digest(v.strip(), expected) for v in values)


def as_mail(row: Row, to: str, by: str, now: datetime, secret: bytes) -> bytes:
    """The row as a message from staff member `by` to the new-case address `to`, sealed."""
    text = row.commands()
    digest = hashlib.sha256(json.dumps(row.fields, sort_keys=True).encode()).hexdigest()
    message_id = f"import.{digest[:32]}@candour.invalid"
    message = EmailMessage()
    message["From"] = by
    message["To"] = to
    message["Subject"] = row.fields.get("subject") or "Web form complaint"
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<{message_id}>"
    message[SEAL_HEADER] = seal(secret, message_id)
    message.set_content(text)
    return message.as_bytes()
