"""The independent evaluation set through the running daemon: what happens to each case.

`python -m bench.independent [--data FILE]` writes every message of the set (default:
classifiers/data/independent.jsonl, 360 messages written apart from the training data) as
an email, seeds a fresh Dovecot mailbox, runs `candour run --once` on SQLite with every
route configured, and reads back the cases. It prints, against the true labels: complaints
signposted, closed or left without a stage clock (must be 0), safeguarding messages caught
(labelled or flagged), the safeguarding flag on others, the share sent to review, and the
share of out-of-scope messages still signposted automatically.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import Any

from bench.stack import PASSWORD_ENV, Stack, seed
from tests import mailstack

REPO = Path(__file__).resolve().parent.parent
OUT_OF_SCOPE = ("data_protection", "safeguarding", "hr", "social_care")
ROUTES = """
staff_domains = ["staff.example.org"]
[mailbox.routes]
complaint = "team@staff.example.org"
feedback = "feedback@staff.example.org"
data_protection = "dpo@staff.example.org"
safeguarding = "lead@staff.example.org"
hr = "people@staff.example.org"
social_care = "statutory@staff.example.org"
review = "triage@staff.example.org"
"""


def _email(row: dict[str, Any], to: str, number: int) -> bytes:
    message = EmailMessage()
    name, address = parseaddr(row.get("from_addr") or "")
    message["From"] = formataddr((name, address or f"sender{number}@mail.example"))
    message["To"] = to
    message["Subject"] = row["subject"]
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = f"<independent-{number}@mail.example>"
    message.set_content(row["body"])
    return bytes(message)


def _share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({part / whole:.1%})" if whole else "0/0"


def figures(rows: list[dict[str, Any]], cases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Count, per message (by its Message-ID's number), what became of its case."""
    by_truth: dict[str, list[dict[str, Any]]] = {}
    disclosing: list[dict[str, Any]] = []  # another label, but a disclosure of harm too
    for number, row in enumerate(rows):
        case = cases.get(str(number))
        if case is None:
            continue
        by_truth.setdefault(row["label"], []).append(case)
        if row["label"] != "safeguarding" and "safeguarding" in row.get("flags", ()):
            disclosing.append(case)
    complaints = by_truth.get("complaint", [])
    lost = [
        c
        for c in complaints
        if c["automatic_reply"] == "signpost" or c["closed_at"] or not c["stage"]
    ]
    risky = by_truth.get("safeguarding", []) + disclosing
    others = [
        c
        for label, found in by_truth.items()
        if label != "safeguarding"
        for c in found
        if all(c is not d for d in disclosing)
    ]
    flagged = [c for c in others if "safeguarding" in c["flags"]]
    outside = [c for label in OUT_OF_SCOPE for c in by_truth.get(label, [])]
    all_cases = [c for found in by_truth.values() for c in found]
    return {
        "messages": len(rows),
        "cases": len(all_cases),
        "complaints_lost": len(lost),
        "complaints": len(complaints),
        "lost_references": [c["reference"] for c in lost],
        "safeguarding_caught": sum(
            c["label"] == "safeguarding" or "safeguarding" in c["flags"] for c in risky
        ),
        "safeguarding": len(risky),
        "flag_on_others": len(flagged),
        "others": len(others),
        "to_review": sum(c["needs_review"] for c in all_cases),
        "out_of_scope_signposted": sum(c["automatic_reply"] == "signpost" for c in outside),
        "out_of_scope": len(outside),
    }


def report(found: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"cases opened: {found['cases']} of {found['messages']} messages",
            "complaints signposted, closed or without a stage clock: "
            + _share(found["complaints_lost"], found["complaints"]),
            "safeguarding messages and disclosures caught (label or flag): "
            + _share(found["safeguarding_caught"], found["safeguarding"]),
            "safeguarding flag on other messages: "
            + _share(found["flag_on_others"], found["others"]),
            "sent to review: " + _share(found["to_review"], found["cases"]),
            "out-of-scope signposted automatically: "
            + _share(found["out_of_scope_signposted"], found["out_of_scope"]),
        ]
    )


def _cases_by_message(path: Path) -> dict[str, dict[str, Any]]:
    """Each case, as `candour cases list --json` shows it, by its message's number."""
    from sqlalchemy import select

    from daemon.cli.views import case_summary
    from models.database import Database
    from models.schema import Case, Message

    database = Database(f"sqlite:///{path}")
    try:
        with database.reader() as session:
            rows = session.execute(
                select(Message.message_id, Case).join(Case, Message.case_id == Case.id)
            ).all()
            return {
                str(mid).removeprefix("independent-").split("@")[0]: case_summary(case)
                for mid, case in rows
            }
    finally:
        database.dispose()


def run(data: Path) -> dict[str, Any]:
    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines() if line]
    with Stack() as stack, Stack.sink() as sink, tempfile.TemporaryDirectory() as work:
        mailbox = stack.new_mailbox()
        seed(mailbox, [_email(row, mailbox.address, n) for n, row in enumerate(rows)])
        config = mailstack.write_config(
            Path(work) / "candour.toml",
            imap_port=mailbox.port,
            user=mailbox.user,
            address=mailbox.address,
            smtp_port=sink.port,
            db_url=f"sqlite:///{Path(work) / 'candour.db'}",
            extra_mailbox=ROUTES,
            log_level="info",
            password_env=PASSWORD_ENV,
        )
        command = [sys.executable, "-m", "daemon", "run", "--once", "--config", str(config)]
        subprocess.run(command, check=True, cwd=REPO, capture_output=True)
        cases = _cases_by_message(Path(work) / "candour.db")
    return figures(rows, cases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO / "classifiers/data/independent.jsonl")
    found = run(parser.parse_args().data)
    print(report(found))
    print(json.dumps(found))


if __name__ == "__main__":
    main()
