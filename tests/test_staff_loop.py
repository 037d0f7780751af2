"""Routing, threading and staff replies from mail clients, on Dovecot and a real SMTP sink."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.message import Message
from email.utils import parseaddr

import pytest

from tests.conftest import Setup, make_mail
from tests.mailstack import Received, write_config

ROUTES = """
staff_domains = ["example.org"]
[mailbox.routes]
complaint = "team@example.org"
feedback = "feedback@example.org"
data_protection = "dpo@example.org"
safeguarding = "lead@example.org"
hr = "people@example.org"
social_care = "statutory@council.example"
review = "triage@example.org"
[mailbox.signpost]
emergency_guidance = "If anyone is in immediate danger, call 999."
"""

JANE = "Jane Citizen <jane.loop@example.net>"
COMPLAINT = (
    "I am making a formal complaint. My mother was discharged from Ward 7 at 11pm without her "
    "medication and nobody told the family. I want an explanation and an apology."
)


def _configure(setup: Setup, extra: str = ROUTES) -> None:
    write_config(
        setup.config_path,
        imap_port=setup.dovecot.port,
        user=setup.user,
        address=setup.address,
        smtp_port=setup.sink.port,
        db_url=f"sqlite:///{setup.db_path}",
        extra_mailbox=extra,
    )


def _run(setup: Setup) -> None:
    result = setup.cli("run", "--once", check=False)
    assert result.returncode == 0, result.stderr[-3000:]


def _to(setup: Setup, address: str) -> list[Received]:
    return [m for m in setup.outgoing() if address in m.rcpt_tos]


def _body(message: Message) -> str:
    part = message.get_body(preferencelist=("plain",)) if hasattr(message, "get_body") else message
    payload = (part or message).get_payload(decode=True)
    return payload.decode() if isinstance(payload, bytes) else str(payload)


def _msg(received: Received) -> Message:
    from email import policy

    return message_from_bytes(received.data, policy=policy.default)


def _everything(received: Received) -> str:
    """Every header and every part of a message, decoded: what a recipient could read."""
    message = _msg(received)
    texts = [f"{k}: {v}" for k, v in message.items()]
    for part in message.walk():
        texts.extend(f"{k}: {v}" for k, v in part.items())
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            texts.append(payload.decode("utf-8", "replace"))
    return "\n".join(texts)


def _addr(header: object) -> str:
    return parseaddr(str(header))[1]


def _reference(setup: Setup) -> str:
    [case] = setup.cases()
    return str(case["reference"])


def _outlook_reply(text: str, staff_copy: Message, reply_to: str, sender: str) -> bytes:
    quoted = _body(staff_copy)
    body = (
        f"{text}\r\n\r\nKind regards\r\nSarah Mills\r\nComplaints Officer | Example Trust\r\n"
        f"Tel 01632 960123\r\n\r\n________________________________\r\n"
        f"From: Candour for Example Trust <{reply_to}>\r\nSent: 23 November 2026 10:02\r\n"
        f"To: Complaints Team <team@example.org>\r\n"
        f"Subject: {staff_copy['Subject']}\r\n\r\n{quoted}"
    )
    raw, _ = make_mail(
        sender=sender,
        to=reply_to,
        subject=f"RE: {staff_copy['Subject']}",
        body=body,
        headers={"In-Reply-To": staff_copy["Message-ID"], "Thread-Topic": "x"},
    )
    return raw


def _gmail_reply(text: str, staff_copy: Message, reply_to: str, sender: str) -> bytes:
    quoted = "\n".join(f"> {line}" for line in _body(staff_copy).splitlines())
    header = f"On Mon, 23 Nov 2026 at 10:02, Candour for Example Trust <{reply_to}> wrote:"
    body = f"{text}\n\n{header}\n{quoted}\n"
    raw, _ = make_mail(
        sender=sender,
        to=reply_to,
        subject=f"Re: {staff_copy['Subject']}",
        body=body,
        headers={"In-Reply-To": staff_copy["Message-ID"]},
    )
    return raw


def test_complaint_staff_reply_relay_and_the_complainants_answer(setup: Setup) -> None:
    _configure(setup)
    raw, original_id = make_mail(sender=JANE, subject="Ward 7 discharge", body=COMPLAINT)
    setup.append(raw)
    _run(setup)
    reference = _reference(setup)
    [ack] = _to(setup, "jane.loop@example.net")
    [copy] = _to(setup, "team@example.org")
    staff_copy = _msg(copy)
    reply_to = _addr(staff_copy["Reply-To"])
    assert re.fullmatch(
        rf"complaints-{setup.user}\+{reference.lower()}\.[a-z2-7]{{10}}@example\.org", reply_to
    )
    assert reference in staff_copy["Subject"]
    assert "Ward 7 at 11pm" in _body(staff_copy)
    assert staff_copy["Auto-Submitted"] == "auto-generated"

    # Staff answer from Outlook: only their new words reach Jane, from the mailbox address.
    setup.append(
        _outlook_reply(
            "I am sorry this happened. We are looking into it and will call you.",
            staff_copy,
            reply_to,
            "Sarah Mills <sarah.mills@example.org>",
        )
    )
    _run(setup)
    [relay_received] = [m for m in _to(setup, "jane.loop@example.net") if m is not ack]
    relay = _msg(relay_received)
    text = _body(relay)
    assert "I am sorry this happened" in text
    for leaked in (
        "Sarah",
        "01632",
        "sarah.mills",
        "Ward 7 at 11pm",
        "Kind regards",
        "team@example.org",
    ):
        assert leaked not in text, leaked
    assert _addr(relay["From"]) == setup.address
    assert relay["In-Reply-To"] == f"<{original_id}>"
    assert reference in relay["Subject"]
    assert "Auto-Submitted" not in relay

    # Jane answers the relay: it joins the case and is forwarded to the team, no new ack.
    answer, _ = make_mail(
        sender=JANE,
        subject=f"Re: {relay['Subject']}",
        body="Thank you. Please also find her hearing aid.",
        headers={"In-Reply-To": relay["Message-ID"]},
    )
    setup.append(answer)
    _run(setup)
    assert len(setup.cases()) == 1
    assert len(_to(setup, "jane.loop@example.net")) == 2
    forwarded = [_msg(m) for m in _to(setup, "team@example.org")]
    assert len(forwarded) == 2
    assert "hearing aid" in _body(forwarded[1])
    assert "follow-up" in forwarded[1]["Subject"]
    history = setup.cli("cases", "show", reference).stdout
    for event in (
        "received",
        "classified",
        "routed",
        "acknowledgement.sent",
        "relay",
        "followup.received",
    ):
        assert event in history, event


def test_gmail_note_is_not_relayed_and_commands_apply(setup: Setup) -> None:
    _configure(setup)
    setup.append(make_mail(sender=JANE, subject="Ward 7", body=COMPLAINT)[0])
    _run(setup)
    reference = _reference(setup)
    staff_copy = _msg(_to(setup, "team@example.org")[0])
    reply_to = _addr(staff_copy["Reply-To"])
    setup.append(
        _gmail_reply(
            "#note\nSpoke to the ward manager, waiting for notes.",
            staff_copy,
            reply_to,
            "Sam Lee <sam.lee@example.org>",
        )
    )
    setup.append(
        _gmail_reply(
            "#label feedback\n#assign sam.lee@example.org\n#close",
            staff_copy,
            reply_to,
            "Sam Lee <sam.lee@example.org>",
        )
    )
    setup.append(
        _gmail_reply(
            "#frobnicate\nThis must not be sent.",
            staff_copy,
            reply_to,
            "Sam Lee <sam.lee@example.org>",
        )
    )
    _run(setup)
    assert len(_to(setup, "jane.loop@example.net")) == 1  # only the acknowledgement
    # Each message not relayed is answered, saying why: the note, the commands, the error.
    to_sam = [_body(_msg(m)) for m in _to(setup, "sam.lee@example.org")]
    assert len(to_sam) == 3
    assert any("internal note (#note)" in body for body in to_sam)
    assert any("#label feedback" in body and "#close" in body for body in to_sam)
    assert any("#frobnicate: unknown command" in body for body in to_sam)
    [case] = setup.cases()
    assert case["label"] == "feedback"
    assert case["status"] in {"closed"}
    history = setup.cli("cases", "show", reference).stdout
    assert "Spoke to the ward manager" in history
    assert "label.changed" in history
    assert "staff.reply_rejected" in history


def test_forged_token_and_outsider_commands_are_never_relayed(setup: Setup) -> None:
    _configure(setup)
    setup.append(make_mail(sender=JANE, subject="Ward 7", body=COMPLAINT)[0])
    _run(setup)
    reference = _reference(setup)
    staff_copy = _msg(_to(setup, "team@example.org")[0])
    good = _addr(staff_copy["Reply-To"])
    forged = re.sub(r"\.[a-z2-7]{10}@", ".aaaaaaaaaa@", good)
    assert forged != good
    setup.append(
        make_mail(
            sender="Sam Lee <sam.lee@example.org>",
            to=forged,
            subject=f"Re: [{reference}]",
            body="Forged: this must never reach the complainant.",
        )[0]
    )
    setup.append(
        make_mail(
            sender="Mallory <mallory@example.net>",
            to=good,
            subject=f"Re: [{reference}]",
            body="#close\nOutsider: this must never reach the complainant either.",
        )[0]
    )
    _run(setup)
    to_jane = [_body(_msg(m)) for m in _to(setup, "jane.loop@example.net")]
    assert not any("must never reach" in text for text in to_jane)
    cases = {c["reference"]: c for c in setup.cases()}
    assert cases[reference]["status"] != "closed"
    # The outsider's message is on the case, forwarded with a warning; nothing was executed.
    forwarded = [_body(_msg(m)) for m in _to(setup, "team@example.org")]
    assert any("not from the case's complainant" in text for text in forwarded)


def test_pseudonymous_member_is_never_exposed_to_staff(setup: Setup) -> None:
    _configure(setup, ROUTES.replace("staff_domains", "pseudonymous = true\nstaff_domains"))
    body = (
        "Username: bluebird42\n\nA moderator deleted my post and then mocked me in the chat. "
        "I want "
        "this looked at formally.\nYou can call me on 07700 900123 or write to "
        "robin.hart@example.net.\n\nThanks\nRobin Hart\n"
    )
    setup.append(
        make_mail(
            sender="Robin Hart <robin.hart@example.net>", subject="Moderator - Robin", body=body
        )[0]
    )
    setup.append(
        make_mail(
            sender="Alex Quinn <alex.quinn@example.net>",
            subject="banned",
            body="I was banned for no reason and I want it reviewed. Alex",
        )[0]
    )
    _run(setup)
    staff_mail = [
        m for m in setup.outgoing() if not any(r.endswith("@example.net") for r in m.rcpt_tos)
    ]
    assert len(staff_mail) >= 2
    for received in staff_mail:
        for secret in (
            b"robin.hart",
            b"Robin",
            b"Hart",
            b"07700",
            b"900123",
            b"alex.quinn",
            b"Alex",
            b"Quinn",
        ):
            assert secret not in received.data, (secret, received.rcpt_tos)
    copies = [(r.rcpt_tos[0], _body(_msg(r))) for r in staff_mail]
    [(_, robin)] = [(to, text) for to, text in copies if "member bluebird42" in text]
    assert "mocked me" in robin
    # No username found: flagged and sent to review instead of exposing the address.
    [(to, _)] = [(to, text) for to, text in copies if "username not found" in text]
    assert to == "triage@example.org"
    by_subject = {c["reference"]: c for c in setup.cases()}
    assert sum(bool(c["needs_review"]) for c in by_subject.values()) >= 1
    # The members themselves still get their reply, at the address they wrote from.
    assert _to(setup, "robin.hart@example.net")
    assert _to(setup, "alex.quinn@example.net")


@pytest.mark.parametrize(
    ("subject", "body", "route", "must_say", "must_not_say"),
    [
        (
            "copy of my records",
            "Under data protection law please send me a copy of all the personal "
            "data and records you hold about me (a subject access request).",
            "dpo@example.org",
            "personal information",
            "records you hold",
        ),
        (
            "worried",
            "My neighbour's children are left alone every night and the youngest has bruises. "
            "I think they are being abused.",
            "lead@example.org",
            "999",
            "bruises",
        ),
    ],
)
def test_out_of_scope_senders_are_signposted(
    setup: Setup, subject: str, body: str, route: str, must_say: str, must_not_say: str
) -> None:
    _configure(setup)
    setup.append(
        make_mail(sender="Pat Sender <pat.sender@example.net>", subject=subject, body=body)[0]
    )
    _run(setup)
    [reply] = _to(setup, "pat.sender@example.net")
    text = _body(_msg(reply))
    assert must_say in text
    assert must_not_say not in text  # the reply reveals nothing of the concern
    assert _to(setup, route), f"no staff copy to {route}"


def test_moving_a_message_into_a_label_folder_relabels_its_case(setup: Setup) -> None:
    _configure(setup)
    setup.append(make_mail(sender=JANE, subject="Ward 7", body=COMPLAINT)[0])
    _run(setup)  # also creates the Candour/Label/* folders
    client = setup.imap()
    try:
        folders = {name for _, _, name in client.list_folders()}
        assert "Candour/Label/feedback" in folders
        client.select_folder("INBOX")
        client.move(client.search("ALL"), "Candour/Label/feedback")
    finally:
        client.logout()
    _run(setup)
    [case] = setup.cases()
    assert case["label"] == "feedback"
    history = setup.cli("cases", "show", str(case["reference"])).stdout
    assert "imap-folder" in history
    _run(setup)  # seen once: a second run does not record it again
    assert setup.cli("cases", "show", str(case["reference"])).stdout.count("label.changed") == 1
