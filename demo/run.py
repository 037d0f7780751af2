"""`make demo`: a private Dovecot and SMTP sink, sample mail, the daemon, and what it did.

Everything listens on 127.0.0.1 only and is stopped at the end. State is left in
demo/run/ so you can look again with
`.venv/bin/candour cases list --config demo/run/candour.toml`.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import imapclient

from tests.mailstack import Dovecot, SmtpSink, write_config

HERE = Path(__file__).resolve().parent
RUN = HERE / "run"
ADDRESS = "complaints@example.org"
ROUTES = """
staff_domains = ["example.org"]
[mailbox.routes]
complaint = "complaints-team@example.org"
feedback = "feedback@example.org"
data_protection = "dpo@example.org"
safeguarding = "safeguarding-lead@example.org"
review = "triage@example.org"
"""
STAFF_REPLY = """\
Dear Mrs Okafor, I am very sorry about your father's discharge. I have asked the ward
manager for an account of that evening and I will write again by Friday.

Kind regards
Sarah Mills
Patient Experience Officer | Example Trust | 01632 960123

________________________________
From: Candour for Example Trust <{reply_to}>
Sent: 23 November 2026 10:02
Subject: {subject}

{quoted}
"""


def _candour(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "daemon", *args, "--config", str(RUN / "candour.toml")],
        capture_output=True,
        text=True,
        check=True,
        cwd=HERE.parent,
    )
    return result.stdout


def _triaged(dovecot: Dovecot, user: str, expected: int) -> bool:
    client = imapclient.IMAPClient("127.0.0.1", port=dovecot.port, ssl=False)
    try:
        client.login(user, "secret")
        client.select_folder("INBOX", readonly=True)
        return len(client.search(["KEYWORD", "$CandourTriaged"])) >= expected
    finally:
        client.logout()


def main() -> int:
    shutil.rmtree(RUN, ignore_errors=True)
    RUN.mkdir(parents=True)
    root = Path(tempfile.mkdtemp(prefix="candour-demo-"))
    dovecot = Dovecot(root).start()
    sink = SmtpSink().start()
    user = dovecot.new_user()
    password = RUN / "imap-password"  # as in production: a file only the daemon reads
    password.write_text("secret")
    password.chmod(0o600)
    write_config(
        RUN / "candour.toml",
        imap_port=dovecot.port,
        user=user,
        address=ADDRESS,
        smtp_port=sink.port,
        db_url=f"sqlite:///{RUN / 'candour.db'}",
        state_dir=RUN / "state",
        extra_mailbox=ROUTES,
        password_file=password,
    )
    print(f"Private Dovecot on 127.0.0.1:{dovecot.port}, SMTP sink on 127.0.0.1:{sink.port}")
    daemon = None
    try:
        samples = sorted((HERE / "samples").glob("*.eml"))
        client = imapclient.IMAPClient("127.0.0.1", port=dovecot.port, ssl=False)
        client.login(user, "secret")
        for sample in samples[:-1]:
            client.append("INBOX", sample.read_bytes())
        print(f"Dropped {len(samples) - 1} sample messages into the inbox; starting the daemon...")
        daemon = subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", "--config", str(RUN / "candour.toml")],
            stderr=(RUN / "daemon.log").open("w"),
            cwd=HERE.parent,
        )
        deadline = time.monotonic() + 60
        while not _triaged(dovecot, user, len(samples) - 1) and time.monotonic() < deadline:
            time.sleep(0.2)
        print("...and, while it runs, a follow-up from the first complainant arrives.")
        client.append("INBOX", samples[-1].read_bytes())
        while not _triaged(dovecot, user, len(samples)) and time.monotonic() < deadline:
            time.sleep(0.2)
        team = "complaints-team@example.org"
        sink.wait_for(lambda msgs: any(team in m.rcpt_tos for m in msgs), timeout=30)
        copy = next(m for m in sink.messages if team in m.rcpt_tos)
        staff_copy = message_from_bytes(copy.data)
        reply_to = " ".join(str(staff_copy["Reply-To"]).split())
        payload = staff_copy.get_payload(decode=True)
        quoted = payload.decode() if isinstance(payload, bytes) else ""
        print(f"The complaints team answers the staff copy from Outlook, to {reply_to}")
        reply = EmailMessage()
        reply["From"] = "Sarah Mills <sarah.mills@example.org>"
        reply["To"] = reply_to
        reply["Subject"] = "RE: " + " ".join(str(staff_copy["Subject"]).split())
        reply["Message-ID"] = "<demo-staff-reply@example.org>"
        reply["In-Reply-To"] = " ".join(str(staff_copy["Message-ID"]).split())
        reply.set_content(
            STAFF_REPLY.format(reply_to=reply_to, subject=reply["Subject"], quoted=quoted)
        )
        client.append("INBOX", reply.as_bytes())
        client.logout()
        sink.wait_for(lambda msgs: any(b"by Friday" in m.data for m in msgs), timeout=30)
        time.sleep(1.5)  # let the outbox drain and the Sent copies land
    finally:
        if daemon is not None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
        sink.stop()
        dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)

    print("\n=== candour cases list ===")
    print(_candour("cases", "list"))
    for line in _candour("cases", "list").splitlines():
        reference = line.split()[0]
        print(f"=== candour cases show {reference} ===")
        print(_candour("cases", "show", reference))
    print(f"=== {len(sink.messages)} message(s) Candour sent (captured by the SMTP sink) ===")
    for received in sink.messages:
        message = message_from_bytes(received.data, policy=policy.default)
        print(f"--- to {', '.join(received.rcpt_tos)}")
        for header in ("From", "To", "Reply-To", "Subject", "In-Reply-To", "Auto-Submitted"):
            if message[header]:
                print(f"{header}: {' '.join(str(message[header]).split())}")
        part = message.get_body(preferencelist=("plain",))
        body = part.get_content() if isinstance(part, EmailMessage) else ""
        lines = body.splitlines()
        print("\n".join(lines[:12]) + ("\n   [...]" if len(lines) > 12 else "") + "\n")
    print(f"Daemon log (JSON lines): {RUN / 'daemon.log'}")
    candour = Path(sys.executable).parent / "candour"  # the virtualenv's, as `make` made it
    print(f"Look again: {candour} cases list --config {RUN / 'candour.toml'}")
    print(f"Check the configuration: {candour} check-config --config {RUN / 'candour.toml'}")
    print("(`make install` puts candour on PATH for production.)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
