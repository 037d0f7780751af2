"""Pure routing pieces: signed case addresses, staff commands, routes, roles, pseudonyms."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.casework.commands import parse_staff_reply
from daemon.casework.pseudonyms import find_username, load_registry, scrub
from daemon.casework.routing import Role, route_for, sender_role
from daemon.config import ConfigError, RoutesConfig
from replies.addresses import case_address, case_reference, signed_reference

SECRET = b"0123456789abcdef0123456789abcdef"
MAILBOX = "complaints@example.org"


def test_case_address_round_trip_and_forgery() -> None:
    address = case_address(MAILBOX, "CMP-2026-00042", SECRET)
    assert address.startswith("complaints+cmp-2026-00042.")
    assert case_reference(address, MAILBOX, SECRET) == "CMP-2026-00042"
    assert case_reference(address.upper(), MAILBOX, SECRET) == "CMP-2026-00042"
    other = address.replace("00042", "00043")
    assert case_reference(other, MAILBOX, SECRET) is None  # token does not transfer
    assert case_reference(address, MAILBOX, b"another secret, another mailbox!") is None
    assert signed_reference(["x@example.net", other], MAILBOX, SECRET) == (None, True)
    assert signed_reference(["x@example.net", address], MAILBOX, SECRET) == (
        "CMP-2026-00042",
        False,
    )
    assert signed_reference(["complaints@example.org"], MAILBOX, SECRET) == (None, False)


@given(st.from_regex(r"[A-Z]{2,6}-20[2-9]\d-\d{5}", fullmatch=True))
def test_every_reference_signs_and_verifies(reference: str) -> None:
    assert case_reference(case_address(MAILBOX, reference, SECRET), MAILBOX, SECRET) == reference


@pytest.mark.parametrize(
    ("text", "names", "body", "relay", "errors"),
    [
        ("Thanks, we will call you.", [], "Thanks, we will call you.", True, []),
        ("#note\nCalled the ward.", ["note"], "Called the ward.", False, []),
        ("#label feedback\n\n#close\nAll done.", ["label", "close"], "All done.", True, []),
        ("#close withdrawn", ["close"], "", False, []),
        ("#stage 2\nWe have escalated.", ["stage"], "We have escalated.", True, []),
        ("#assign sam@example.org", ["assign"], "", False, []),
        ("#interim\nStill looking.", ["interim"], "Still looking.", True, []),
        ("#frob\nHello", [], "Hello", False, ["#frob: unknown command"]),
        ("#label nonsense\nHello", [], "Hello", False, ["#label nonsense: not one of"]),
        ("#assign nobody\nHello", [], "Hello", False, ["#assign nobody: give an email address"]),
        # A command below the text was meant as one: neither relayed nor applied.
        ("Hello\n#close", [], "Hello\n#close", False, ["#close is below your text"]),
        ("By Friday.\n#interim", [], "By Friday.\n#interim", False, ["#interim is below"]),
        ("We will call.\n#1 priority", [], "We will call.\n#1 priority", True, []),
        # The rest of a #note or #interim line is text, never a lost argument.
        ("#note called Sam on 07700 900555", ["note"], "called Sam on 07700 900555", False, []),
        (
            "#interim Still looking.\nBy Friday.",
            ["interim"],
            "Still looking.\nBy Friday.",
            True,
            [],
        ),
        (
            "#reopen please, she wrote again",
            [],
            "",
            False,
            ["#reopen please, she wrote again: takes"],
        ),
    ],
)
def test_staff_commands(
    text: str, names: list[str], body: str, relay: bool, errors: list[str]
) -> None:
    reply = parse_staff_reply(text)
    assert [c.name for c in reply.commands] == names
    assert reply.text == body
    assert reply.relay is relay
    assert len(reply.errors) == len(errors)
    for got, want in zip(reply.errors, errors, strict=True):
        assert got.startswith(want)


ROUTES = RoutesConfig(
    complaint="team@example.org",
    safeguarding="lead@example.org",
    review="triage@example.org",
    data_protection="dpo@example.org",
)


def test_routes() -> None:
    assert route_for("complaint", False, (), ROUTES).recipients == ("team@example.org",)
    assert route_for("complaint", True, (), ROUTES).recipients == ("triage@example.org",)
    flagged = route_for("complaint", False, ("safeguarding",), ROUTES)
    assert flagged.recipients == ("team@example.org", "lead@example.org")
    asks = route_for("complaint", False, ("data_request",), ROUTES)
    assert asks.recipients == ("team@example.org", "dpo@example.org")
    assert route_for("safeguarding", False, (), ROUTES).recipients == ("lead@example.org",)
    assert route_for("hr", False, (), ROUTES).recipients == ("triage@example.org",)  # no hr route
    no_name = route_for("complaint", False, (), ROUTES, no_pseudonym=True)
    assert no_name.primary == "triage@example.org"


def test_roles() -> None:
    def role(sender: str, staff: bool, via: bool) -> Role:
        return sender_role(
            sender=sender, is_staff=staff, complainant="jane@example.net", via_case_address=via
        )

    assert role("sam@example.org", True, True) == Role.STAFF_REPLY
    assert role("sam@example.org", True, False) == Role.STAFF_MESSAGE
    assert role("jane@example.net", False, True) == Role.COMPLAINANT
    assert role("mallory@example.net", False, True) == Role.OTHER


def test_usernames_and_registry(tmp_path: Path) -> None:
    pattern = r"(?im)^\s*user\s*-?\s*name\s*[:\-–]\s*([A-Za-z0-9_.\-]{2,40})\s*$"
    assert find_username("Hi\nUsername: bluebird42\nthanks", pattern) == "bluebird42"
    assert find_username("User name - quiet_fern", pattern) == "quiet_fern"
    assert find_username("no name here", pattern) is None
    csv = tmp_path / "members.csv"
    csv.write_text("address,username\nRobin@Example.net,bluebird42\n")
    assert load_registry(csv) == {"robin@example.net": "bluebird42"}
    csv.write_text("just-a-name\n")
    with pytest.raises(ConfigError, match="line 1"):
        load_registry(csv)


def test_scrub_removes_identity() -> None:
    text = (
        "My post was deleted. Call me on +44 7700 900123 or 01632-960-123, "
        "or email robin.hart@example.net.\n\nThanks,\nRobin Hart\n07700 900999"
    )
    clean = scrub(text, address="robin.hart@example.net", display_name="Robin Hart")
    for secret in ("Robin", "Hart", "7700", "960", "robin.hart", "@"):
        assert secret not in clean
    assert "My post was deleted" in clean


def test_the_help_staff_get_lists_every_command_of_the_table() -> None:
    from daemon.casework.commands import COMMANDS, HELP

    for spec in COMMANDS.values():
        assert f"  {spec.usage} " in HELP
        assert spec.help in HELP
    assert parse_staff_reply("#bogus\nhello").errors == ("#bogus: unknown command",)


def test_close_resolved_is_a_plain_close() -> None:
    reply = parse_staff_reply("#close resolved\nThank you, we consider this resolved.")
    assert reply.errors == ()
    assert [(c.name, c.argument) for c in reply.commands] == [("close", "resolved")]
