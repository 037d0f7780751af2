"""End to end against a real Dovecot and a real SMTP sink, with the daemon as a process."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from email.utils import parseaddr

import pytest

from tests.conftest import Setup, make_mail, wait_until

TRIAGED = b"$CandourTriaged"


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def _all_triaged(setup: Setup, count: int) -> bool:
    flags = setup.flags()
    return len(flags) >= count and all(TRIAGED in f for f in flags.values())


def test_complaint_is_acknowledged_once_and_follow_ups_and_robots_get_nothing(setup: Setup) -> None:
    daemon = setup.start_daemon()
    try:
        raw, original_id = make_mail(sender="Jane Citizen <jane.e2e@example.net>")
        appended = time.monotonic()
        setup.append(raw)
        [ack] = setup.wait_outgoing(1)
        latency = time.monotonic() - appended
        message = ack.message
        ack_id = " ".join(message["Message-ID"].split())  # long ids are folded

        # One acknowledgement with the headers that thread it and stop loops.
        assert ack.rcpt_tos == ["jane.e2e@example.net"]
        assert message["Auto-Submitted"] == "auto-replied"
        assert message["In-Reply-To"] == f"<{original_id}>"
        assert f"<{original_id}>" in message["References"]
        assert ack_id.startswith("<")
        assert ack_id.endswith("@example.org>")
        assert parseaddr(message["From"])[1] == setup.address
        subject = " ".join(message["Subject"].split())
        reference = subject.split("[")[-1].rstrip("]")
        assert reference.startswith("CMP-")
        assert reference in ack.data.decode()

        # One case, acknowledged; the keyword is on the message; a copy is in Sent.
        wait_until(lambda: _all_triaged(setup, 1), what="keyword on the complaint")
        [case] = setup.cases()
        assert case["reference"] == reference
        assert case["acknowledged_at"] is not None
        assert case["ack_due_at"] is not None
        wait_until(
            lambda: setup.folder_count("Sent") == 1,
            what=f"copy in Sent ({setup.folder_count('Sent')})",
        )

        # A follow-up answering the acknowledgement joins the case: no new case, no new ack.
        follow_up, _ = make_mail(
            sender="Jane Citizen <jane.e2e@example.net>",
            subject=f"Re: {subject}",
            body="Thanks. I also want to add that the receptionist was rude.",
            headers={"In-Reply-To": ack_id, "References": ack_id},
        )
        # An out-of-office reply and a bounce get no answer.
        out_of_office, _ = make_mail(
            sender="Pat Away <pat.away@example.net>",
            subject="Automatic reply: your newsletter",
            body="I am out of the office until Monday.",
            headers={"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"},
        )
        bounce, _ = make_mail(
            sender="Mail Delivery System <MAILER-DAEMON@mx.example.net>",
            subject="Undelivered Mail Returned to Sender",
            body="This is the mail system at host mx.example.net. Your message was not delivered.",
            headers={"Return-Path": "<>"},
        )
        for raw in (follow_up, out_of_office, bounce):
            setup.append(raw)
        wait_until(lambda: _all_triaged(setup, 4), what="all four messages triaged")
        time.sleep(1.0)  # would-be replies would have reached the sink by now
        assert len(setup.outgoing()) == 1
        assert len(setup.cases()) == 1
        history = setup.cli("cases", "show", reference).stdout
        assert "followup.received" in history
    finally:
        status, log = _stop(daemon)
    assert status == 0, log
    assert "jane.e2e@example.net" not in log  # addresses never reach the logs
    assert "receptionist" not in log  # nor do bodies
    print(f"APPEND -> acknowledgement at the sink: {latency:.3f} s")


def test_restart_processes_what_arrived_while_down_and_acks_nothing_twice(setup: Setup) -> None:
    setup.append(make_mail(sender="A Person <first.restart@example.net>")[0])
    assert setup.cli("run", "--once").returncode == 0
    assert len(setup.outgoing()) == 1

    # While the daemon is down, two more complaints arrive.
    setup.append(make_mail(sender="B Person <second.restart@example.net>")[0])
    setup.append(make_mail(sender="C Person <third.restart@example.net>")[0])
    daemon = setup.start_daemon()
    try:
        setup.wait_outgoing(3)
        wait_until(lambda: _all_triaged(setup, 3), what="all triaged")
    finally:
        status, log = _stop(daemon)
    assert status == 0, log
    # And a further run finds nothing new to do.
    assert setup.cli("run", "--once").returncode == 0
    recipients = sorted(r for m in setup.outgoing() for r in m.rcpt_tos)
    assert recipients == [
        "first.restart@example.net",
        "second.restart@example.net",
        "third.restart@example.net",
    ]
    assert len(setup.cases()) == 3


def _sent_copy_filed(setup: Setup) -> bool:
    """The daemon has filed its Sent copy, the last step of its cycle: it is idle."""
    client = setup.imap()
    try:
        names = [str(name) for _, _, name in client.list_folders()]
    finally:
        client.logout()
    return "Sent" in names and setup.folder_count("Sent") >= 1


@pytest.mark.parametrize("how", ["crash", "restart"])
def test_dovecot_going_away_during_idle_is_noticed_and_loses_nothing(
    setup: Setup, how: str
) -> None:
    # IDLE is renewed only every 10 minutes and no label folders are scanned: the daemon
    # must notice the server going away by itself (a crash closes the socket; a restart
    # sends BYE first), not at its next renewal.
    text = re.sub(
        r"idle_renew_seconds = \S+", "idle_renew_seconds = 600", setup.config_path.read_text()
    )
    setup.config_path.write_text(
        text.replace("[mailbox.imap]\n", '[mailbox.imap]\nlabel_folders = ""\n')
    )
    daemon = setup.start_daemon()
    try:
        setup.append(make_mail(sender="Before <before.outage@example.net>")[0])
        setup.wait_outgoing(1)
        # Killed while it creates a folder, Dovecot leaves a lock it only breaks minutes
        # later (its own recovery, not ours), so the outage waits until the daemon idles.
        wait_until(lambda: _sent_copy_filed(setup), timeout=30, what="sent copy filed")
        time.sleep(1.0)  # into IDLE
        if how == "crash":
            setup.dovecot.kill()
        else:
            setup.dovecot.stop()
        time.sleep(2.0)  # the daemon notices and backs off
        setup.dovecot.start()
        setup.append(make_mail(sender="After <after.outage@example.net>")[0])
        setup.wait_outgoing(2, timeout=60)
        wait_until(lambda: _all_triaged(setup, 2), timeout=30, what="both triaged")
    finally:
        status, log = _stop(daemon)
    assert status == 0, log
    assert '"imap.unavailable"' in log or '"imap.disconnected"' in log, log
    assert sorted(r for m in setup.outgoing() for r in m.rcpt_tos) == [
        "after.outage@example.net",
        "before.outage@example.net",
    ]
    assert len(setup.cases()) == 2


def test_uidvalidity_change_rescans_without_duplicates(setup: Setup) -> None:
    setup.append(make_mail(sender="One <one.uv@example.net>")[0])
    # No Message-ID: deduplicated by content hash instead.
    no_id = (
        b"From: Two <two.uv@example.net>\r\nTo: complaints@example.org\r\n"
        b"Subject: no message id\r\n\r\nMy bin was not collected for a month.\r\n"
    )
    setup.append(no_id)
    assert setup.cli("run", "--once").returncode == 0
    assert len(setup.outgoing()) == 2
    setup.dovecot.set_uidvalidity(setup.user, 4242)
    # Keywords survive in the maildir, so clear them to force a real rescan of both.
    client = setup.imap()
    client.select_folder("INBOX")
    client.remove_flags(client.search("ALL"), [TRIAGED])
    client.logout()
    result = setup.cli("run", "--once")
    assert result.returncode == 0, result.stderr
    assert '"uidvalidity": 4242' in result.stderr
    assert len(setup.outgoing()) == 2
    assert len(setup.cases()) == 2
    assert _all_triaged(setup, 2)


def test_a_second_worker_on_sqlite_is_refused_with_a_clear_message(setup: Setup) -> None:
    daemon = setup.start_daemon()
    try:
        setup.append(make_mail(sender="Jane Citizen <jane.second@example.net>")[0])
        setup.wait_outgoing(1)  # the daemon is up and holds the database
        second = setup.cli("run", "--once", check=False)
        assert second.returncode == 75  # try again later: cron's next run will do
        assert f"pid {daemon.pid}" in second.stderr
        assert "use PostgreSQL to run several" in second.stderr
    finally:
        status, log = _stop(daemon)
    assert status == 0, log
    assert setup.cli("run", "--once").returncode == 0  # the lock went with the daemon
