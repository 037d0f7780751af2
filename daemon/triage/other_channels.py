"""Complaints taken by phone, letter, web form or in person, logged by staff by email.

Staff write to the mailbox's signed new-case address (replies.addresses.new_case_address,
`complaints+new.TOKEN@...`) with commands on the first lines and the complaint below:

    #channel phone                  phone | letter | web | in-person
    #from Jo Bloggs <jo@example.net>   or just a name, when there is no email address
    #received 2026-12-03 14:30      when it was made (deadlines count from it)
    #post 1 High Street, Town AB1 2CD   where a letter goes, when there is no email

`read_logged` reads them (pure); the pipeline then opens the case as if the complainant had
written: acknowledged by email when there is an address, otherwise by a letter (PDF) that
the staff copy carries for staff to post.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from zoneinfo import ZoneInfo

CHANNELS = ("phone", "letter", "web", "in-person")
HELP = """To log a complaint made another way, write to the new-case address with:
  #channel phone|letter|web|in-person
  #from Name <address>          (or just the name, with #post for a letter)
  #received 2026-12-03 14:30    (when it was made: deadlines count from it)
  #post 1 High Street, Town AB1 2CD
and the complaint below the commands."""
_LINE = re.compile(r"^\s*#(channel|from|received|post)\b[ \t]*(.*?)\s*$", re.IGNORECASE)
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


@dataclass(frozen=True)
class Logged:
    channel: str
    name: str
    address: str  # "" when there is no email address
    received: datetime | None  # None: when it was logged
    postal: str
    text: str


def _when(value: str, zone: ZoneInfo) -> datetime:
    moment = datetime.fromisoformat(value.replace(" ", "T", 1) if " " in value else value)
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def read_logged(text: str, zone: ZoneInfo) -> Logged | list[str]:
    """The logged complaint, or what is wrong with the commands (a list of problems)."""
    lines = text.splitlines()
    found: dict[str, str] = {}
    index = 0
    while index < len(lines) and (not lines[index].strip() or _LINE.match(lines[index])):
        match = _LINE.match(lines[index])
        if match:
            found[match.group(1).lower()] = match.group(2)
        index += 1
    problems = []
    channel = found.get("channel", "").lower()
    if channel not in CHANNELS:
        problems.append(f"#channel: say one of {', '.join(CHANNELS)}")
    name, address = parseaddr(found.get("from", ""))
    if address and not _ADDRESS.match(address):
        name, address = found.get("from", ""), ""  # a name alone
    if not (name or address):
        problems.append("#from: give the complainant's name, and their email if they have one")
    received = None
    if "received" in found:
        try:
            received = _when(found["received"], zone)
        except ValueError:
            problems.append(f"#received {found['received']}: give a date like 2026-12-03 14:30")
    body = "\n".join(lines[index:]).strip()
    if not body:
        problems.append("write the complaint below the commands")
    if not address and not found.get("post"):
        problems.append("give an email address in #from, or a postal address with #post")
    if problems:
        return problems
    return Logged(channel, name, address.lower(), received, found.get("post", ""), body)
