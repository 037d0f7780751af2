"""Staff identity: mail from a staff address acts as staff only when the mailbox's receiving
server vouches for it (daemon.mail.authentication), from .eml tables and on Dovecot."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.cli.checks import warnings
from daemon.config import ConfigError, load_config
from daemon.mail.authentication import Method, aligned, verify
from daemon.mail.parse import parse_message
from tests.conftest import Setup, make_mail
from tests.test_staff_loop import (
    COMPLAINT,
    JANE,
    ROUTES,
    _addr,
    _configure,
    _msg,
    _outlook_reply,
    _reference,
    _to,
)

TRUSTED = "mx.trust.example"
STAFF = "Sarah Mills <sarah.mills@trust.example>"


def _eml(*results: str, sender: str = STAFF) -> bytes:
    """A message as the receiving server hands it on: its headers on top, then the mail's."""
    top = "".join(f"Authentication-Results: {r}\r\n" for r in results)
    received = "Received: from mail.elsewhere.example by mx.trust.example; 7 Dec 2026\r\n"
    body = (
        f"From: {sender}\r\nTo: complaints@trust.example\r\nSubject: Re: case\r\n"
        "Message-ID: <a1@trust.example>\r\n\r\n#close upheld\r\n"
    )
    return (top + received + body).encode()


# (what the server wrote, require, vouched?, the reason given)
TABLE: list[tuple[str, tuple[str, ...], tuple[Method, ...], bool, str]] = [
    (
        "dmarc pass",
        (f"{TRUSTED}; dkim=pass header.d=trust.example; dmarc=pass header.from=trust.example",),
        ("dmarc",),
        True,
        "dmarc=pass",
    ),
    (
        "dmarc fail",
        (f"{TRUSTED}; spf=fail smtp.mailfrom=trust.example; dmarc=fail header.from=trust.example",),
        ("dmarc",),
        False,
        "dmarc=fail",
    ),
    ("missing", (), ("dmarc",), False, f"no dmarc result from {TRUSTED}"),
    (
        "forged: another authserv-id says pass",
        ("mx.forger.example; dmarc=pass header.from=trust.example",),
        ("dmarc",),
        False,
        f"no dmarc result from {TRUSTED}",
    ),
    (
        "forged pass below our server's fail",
        (
            f"{TRUSTED}; dmarc=fail (p=reject dis=none) header.from=trust.example",
            "mx.forger.example; dmarc=pass header.from=trust.example",
        ),
        ("dmarc",),
        False,
        "dmarc=fail",
    ),
    (
        "one header per milter, dmarc in the second",
        (
            f"{TRUSTED}; dkim=pass (2048-bit key) header.d=trust.example header.s=s1",
            f"{TRUSTED}; dmarc=pass (p=quarantine dis=none) header.from=trust.example",
        ),
        ("dmarc",),
        True,
        "dmarc=pass",
    ),
    (
        "our id written twice, pass and fail: a forgery got through",
        (
            f"{TRUSTED}; dmarc=fail header.from=trust.example",
            f"{TRUSTED}; dmarc=pass header.from=trust.example",
        ),
        ("dmarc",),
        False,
        "dmarc=fail, dmarc=pass",
    ),
    (
        "dkim passes for the forger's own domain",
        (f"{TRUSTED}; dkim=pass header.d=forger.example; spf=pass smtp.mailfrom=x@forger.example",),
        ("dkim", "spf"),
        False,
        "dkim/spf passed for another domain",
    ),
    (
        "spf for the From domain is enough when dkim or spf is asked for",
        (f"{TRUSTED}; dkim=none; spf=pass smtp.mailfrom=bounce@trust.example",),
        ("dkim", "spf"),
        True,
        "spf=pass",
    ),
    (
        "dkim by header.i, a parent domain of the From",
        (f"{TRUSTED}; dkim=pass header.i=@trust.example",),
        ("dkim",),
        True,
        "dkim=pass",
    ),
    (
        "version and a different case in the id",
        ("MX.Trust.Example 1; dmarc=pass header.from=TRUST.example",),
        ("dmarc",),
        True,
        "dmarc=pass",
    ),
    (
        "dmarc about another From domain",
        (f"{TRUSTED}; dmarc=pass header.from=forger.example",),
        ("dmarc",),
        False,
        "dmarc passed for another domain",
    ),
    (
        "a login to our server",
        (f"{TRUSTED}; auth=pass smtp.auth=sarah.mills",),
        ("auth",),
        True,
        "auth=pass",
    ),
    (
        "our id on a header that cannot be read",
        (f"{TRUSTED}; dmarc=pass header.from=trust.example; ;;; (unclosed",),
        ("dmarc",),
        False,
        f"the Authentication-Results from {TRUSTED} is unreadable",
    ),
    ("only none", (f"{TRUSTED}; none",), ("dmarc",), False, f"no dmarc result from {TRUSTED}"),
]


@pytest.mark.parametrize(
    ("results", "require", "vouched", "reason"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_the_receiving_servers_results_decide(
    results: tuple[str, ...], require: tuple[Method, ...], vouched: bool, reason: str
) -> None:
    parsed = parse_message(_eml(*results))
    headers = parsed.header("authentication-results")
    assert len(headers) == len(results)
    verdict = verify(headers, parsed.sender, TRUSTED, require)
    assert (verdict.authenticated, verdict.reason) == (vouched, reason)
    assert "@" not in verdict.reason  # the reason is logged: never an address


def test_a_folded_header_from_a_real_server_is_read() -> None:
    raw = (
        b"Authentication-Results: mx.trust.example;\r\n"
        b"\tdkim=pass (2048-bit key; unprotected) header.d=trust.example\r\n"
        b"\theader.i=@trust.example header.a=rsa-sha256 header.s=s1 header.b=AbC/+1;\r\n"
        b"\tdmarc=pass (p=reject dis=none) header.from=trust.example\r\n"
    ) + _eml()
    parsed = parse_message(raw)
    dmarc: tuple[Method, ...] = ("dmarc",)
    verdict = verify(parsed.header("authentication-results"), parsed.sender, TRUSTED, dmarc)
    assert verdict.authenticated


@pytest.mark.parametrize(
    ("vouched", "sender_domain", "expected"),
    [
        ("trust.example", "trust.example", True),
        ("@trust.example", "nhs.trust.example", True),
        ("bounce@mail.trust.example", "trust.example", True),
        ("eviltrust.example", "trust.example", False),
        ("trust.example.evil", "trust.example", False),
        ("", "trust.example", False),
    ],
)
def test_alignment_compares_whole_labels(vouched: str, sender_domain: str, expected: bool) -> None:
    assert aligned(vouched, sender_domain) is expected


@given(st.lists(st.text(max_size=200), max_size=4))
def test_no_header_text_raises_or_vouches_without_our_id(headers: list[str]) -> None:
    every: tuple[Method, ...] = ("dmarc", "dkim", "spf", "auth")
    verdict = verify(headers, "sarah@trust.example", "mx.trust.example", every)
    if not any("mx.trust.example" in h.lower() for h in headers):
        assert not verdict.authenticated


def test_the_configuration_names_bad_settings(setup: Setup) -> None:
    _configure(setup, ROUTES + '[mailbox.staff_authentication]\nrequire = ["dmarc", "arc"]\n')
    with pytest.raises(ConfigError, match=r"staff_authentication\.require\[1\]"):
        load_config(setup.config_path)
    _configure(setup, ROUTES + "[mailbox.staff_authentication]\nrequire = []\n")
    with pytest.raises(ConfigError, match=r"staff_authentication\.require"):
        load_config(setup.config_path)


def test_check_config_warns_until_staff_mail_is_authenticated(setup: Setup) -> None:
    _configure(setup, ROUTES)
    assert any("staff_authentication" in w for w in warnings(setup.config))
    _configure(setup, ROUTES + f'[mailbox.staff_authentication]\nauthserv_id = "{TRUSTED}"\n')
    assert not any("staff_authentication" in w for w in warnings(setup.config))


def _events(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_a_forged_staff_reply_is_quarantined_and_the_real_one_relayed(setup: Setup) -> None:
    checked = ROUTES + f'[mailbox.staff_authentication]\nauthserv_id = "{TRUSTED}"\n'
    _configure(setup, checked)
    setup.append(make_mail(sender=JANE, subject="Ward 7 discharge", body=COMPLAINT)[0])
    assert setup.cli("run", "--once").returncode == 0
    [ack] = _to(setup, "jane.loop@example.net")
    staff_copy = _msg(_to(setup, "team@example.org")[0])
    reply_to = _addr(staff_copy["Reply-To"])
    sender = "Sarah Mills <sarah.mills@example.org>"
    words = "#assign mallory@forger.example\nWe are sorry. Please send your bank details."
    # A stranger's own header cannot vouch; nor can our server's, saying dmarc failed.
    for forged in (
        "Authentication-Results: mx.forger.example; dmarc=pass header.from=example.org\r\n",
        f"Authentication-Results: {TRUSTED}; dmarc=fail header.from=example.org\r\n",
    ):
        setup.append(forged.encode() + _outlook_reply(words, staff_copy, reply_to, sender))
    run = setup.cli("run", "--once")
    events = _events(run.stderr)
    said = [e for e in events if e["event"] == "staff.unauthenticated"]
    assert [e["reason"] for e in said] == [f"no dmarc result from {TRUSTED}", "dmarc=fail"]
    assert "sarah.mills" not in run.stderr
    assert _to(setup, "jane.loop@example.net") == [ack]  # nothing relayed
    assert len(_to(setup, "sarah.mills@example.org")) == 0  # nobody answered
    flags = setup.flags()
    assert sum(b"$CandourQuarantined" in f for f in flags.values()) == 2
    assert "mallory" not in setup.cli("cases", "show", _reference(setup)).stdout
    # The real reply, vouched for by our server, is relayed and its command done.
    vouched = f"Authentication-Results: {TRUSTED}; dmarc=pass header.from=example.org\r\n"
    setup.append(vouched.encode() + _outlook_reply(words, staff_copy, reply_to, sender))
    setup.cli("run", "--once")
    relays = [m for m in _to(setup, "jane.loop@example.net") if m is not ack]
    assert len(relays) == 1
    assert "bank details" in relays[0].data.decode()
    assert "mallory" in setup.cli("cases", "show", _reference(setup)).stdout


def test_imported_complaints_are_vouched_for_by_their_seal_and_a_forged_seal_is_not(
    setup: Setup,
) -> None:
    """`candour cases import` puts mail into IMAP itself, never through the receiving
    server: its keyed seal stands in for Authentication-Results; a copied or made-up seal
    does not."""
    _configure(setup, ROUTES + f'[mailbox.staff_authentication]\nauthserv_id = "{TRUSTED}"\n')
    export = setup.config_path.parent / "form.csv"
    export.write_text(
        "name,email,received,subject,text\n"
        'Ada Okafor,ada.okafor@example.net,2026-12-01 09:15,Care plan,"I complain."\n'
    )
    setup.cli("cases", "import", str(export), "--by", "sam@example.org")
    forged, _ = make_mail(
        sender="sam@example.org",
        subject="Logged by phone",
        body="#channel phone\n#from Bo Li <bo.li@example.net>\n\nI complain too.",
        headers={"X-Candour-Import": "0" * 40},
    )
    setup.append(forged)
    run = setup.cli("run", "--once")
    [case] = setup.cases()
    assert case["channel"] == "web"
    assert _to(setup, "ada.okafor@example.net")
    assert not _to(setup, "bo.li@example.net")
    said = [e for e in _events(run.stderr) if e["event"] == "staff.unauthenticated"]
    assert len(said) == 1
