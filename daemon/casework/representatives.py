"""Representatives (issue 21): advocates, family, solicitors, MPs or partner agencies who
complain for someone. `#representative Name <address> authority=pending|received|poa`
records one on the case; until their authority (the complainant's written consent, or a
power of attorney) is recorded, relays to them carry none of the complainant's personal
details: they get `representative_pending.txt`, which says what is needed, and the staff
member is told. `read` is pure; `apply` is the command's action."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parseaddr

from daemon.casework.staff_actions import Acting
from models.schema import Case

AUTHORITIES = ("pending", "received", "poa")
_AUTHORITY = re.compile(r"\s*\bauthority\s*=\s*(\S+)\s*$", re.IGNORECASE)
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
USAGE = "#representative Name <address> authority=pending|received|poa"


@dataclass(frozen=True)
class Representation:
    name: str
    address: str  # "" when only the authority changes
    authority: str | None  # None: unchanged (or pending for a new representative)


def read(argument: str) -> Representation | str:
    """The representative the argument names, or what is wrong with it."""
    authority = None
    match = _AUTHORITY.search(argument)
    if match:
        authority = match.group(1).lower()
        if authority not in AUTHORITIES:
            return f"authority={authority}: say one of {', '.join(AUTHORITIES)}"
        argument = argument[: match.start()]
    who = argument.strip()
    if not who:
        if authority is None:
            return f"say who, e.g. {USAGE}"
        return Representation("", "", authority)
    name, address = parseaddr(who)
    if not _ADDRESS.match(address):
        return f"{who}: give their email address, e.g. {USAGE}"
    return Representation(name, address.lower(), authority)


def check(argument: str) -> str | None:
    found = read(argument)
    return found if isinstance(found, str) else None


def apply(acting: Acting, argument: str) -> str | None:
    found = read(argument)
    assert not isinstance(found, str)
    case = acting.case
    if found.address:
        case.representative = found.address
        case.representative_name = found.name or None
        case.representative_authority = found.authority or "pending"
    elif case.representative is None:
        return f"the case has no representative yet: {USAGE}"
    else:
        case.representative_authority = found.authority
    if "representative" not in case.flag_names:
        case.flags = ",".join([*case.flag_names, "representative"])
    acting.event("representative", describe(case))
    return None


def describe(case: Case) -> str:
    """ "Name <address>, authority pending" for events and staff copies."""
    who = case.representative or ""
    if case.representative_name:
        who = f"{case.representative_name} <{who}>"
    return f"{who}, authority {case.representative_authority}"


def withholds(case: Case, recipient: str) -> bool:
    """Whether mail to `recipient` must carry none of the complainant's personal details:
    they are the case's representative and their authority is not recorded."""
    return (
        case.representative is not None
        and case.representative_authority == "pending"
        and recipient.lower() == case.representative
    )


def staff_note(case: Case) -> str:
    """What staff copies say of the representative, or ""."""
    if case.representative is None:
        return ""
    note = f"Representative: {describe(case)}."
    if case.representative_authority == "pending":
        note += " Until their authority is recorded, they get no personal details."
    return note
