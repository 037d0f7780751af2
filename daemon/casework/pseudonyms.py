"""Pseudonymous mailboxes: find a member's username, and scrub what would identify them.

Staff copies of a pseudonymous case show the username and the case reference, never the
sender's address, display name or phone numbers: the body is cut at the signature and
every email address, phone number and the sender's name is replaced.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from classifiers.quotes import ReplyReader
from daemon.config import ConfigError

# Each run is tried from its first character only: linear on a 100 KB "word".
_EMAIL = re.compile(r"(?<![\w.+'-])[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_PHONE = re.compile(r"(?<![\w/])(?:\+|00)?\d[\d \t().-]{7,}\d(?![\w/])")
_reply_parser = ReplyReader(["en"], keep_hyphen_lists=False)


class RegistryError(ConfigError):
    """The address -> username CSV cannot be read."""


def load_registry(path: Path) -> dict[str, str]:
    """Map registered address -> username from a CSV with columns address,username."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise RegistryError(f"pseudonym_registry {path}: cannot be read ({exc.strerror})") from exc
    registry = {}
    for number, row in enumerate(rows, start=1):
        if not row or row[0].strip().lower() in {"", "address", "email"}:
            continue
        if len(row) < 2 or "@" not in row[0]:
            raise RegistryError(f"pseudonym_registry {path}: line {number} is not address,username")
        registry[row[0].strip().lower()] = row[1].strip()
    return registry


def find_username(text: str, pattern: str) -> str | None:
    """The username the member gave (first match of `pattern`'s group 1), if any."""
    match = re.search(pattern, text)
    return match.group(1) if match else None


def without_signature(text: str) -> str:
    """What the sender wrote, without quoted history or signature."""
    try:
        replies = _reply_parser.read(text).replies
        body = replies[0].body if replies else text
    except Exception:  # noqa: BLE001 - the parser must never cost us the message
        body = text
    return body if body.strip() else text


def _digits(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def scrub(text: str, *, address: str, display_name: str) -> str:
    """Replace addresses, phone numbers and the sender's name; drop the signature."""
    text = without_signature(text)
    text = _EMAIL.sub("[address removed]", text)
    text = _PHONE.sub(lambda m: "[phone removed]" if _digits(m.group(0)) >= 9 else m.group(0), text)
    names = {display_name.strip(), *display_name.replace(",", " ").split()}
    local = address.split("@", 1)[0]
    names.update(part for part in re.split(r"[._+-]", local) if len(part) >= 3)
    for name in sorted((n for n in names if len(n) >= 2), key=len, reverse=True):
        text = re.sub(
            rf"(?<!\w){re.escape(name)}(?!\w)", "[name removed]", text, flags=re.IGNORECASE
        )
    return text
