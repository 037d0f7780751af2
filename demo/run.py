"""`make demo`: a private Dovecot and SMTP sink, sample mail, the daemon, and what it did.

Everything listens on 127.0.0.1 only and is stopped at the end. State is left in
demo/run/ so you can look again with `candour cases list --config demo/run/candour.toml`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from email import message_from_bytes
from pathlib import Path

import imapclient

from tests.conftest import write_config
from tests.mailstack import Dovecot, SmtpSink

HERE = Path(__file__).resolve().parent
RUN = HERE / "run"
ADDRESS = "complaints@example.org"


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
    os.environ["CANDOUR_TEST_IMAP_PASSWORD"] = "secret"
    write_config(
        RUN / "candour.toml",
        imap_port=dovecot.port,
        user=user,
        address=ADDRESS,
        smtp_port=sink.port,
        db_url=f"sqlite:///{RUN / 'candour.db'}",
        state_dir=RUN / "state",
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
        client.logout()
        while not _triaged(dovecot, user, len(samples)) and time.monotonic() < deadline:
            time.sleep(0.2)
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
        message = message_from_bytes(received.data)
        print(f"--- to {', '.join(received.rcpt_tos)}")
        for header in ("From", "To", "Subject", "In-Reply-To", "Auto-Submitted"):
            print(f"{header}: {' '.join(str(message[header]).split())}")
        payload = message.get_payload(decode=True)
        body = payload.decode() if isinstance(payload, bytes) else ""
        print("\n".join(body.splitlines()[:8]) + "\n   [...]\n")
    print(f"Daemon log (JSON lines): {RUN / 'daemon.log'}")
    print(f"Look again: candour cases list --config {RUN / 'candour.toml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
