"""Addresses: which strings are plain addresses, and per-case reply addresses
(complaints+cmp-2026-00042.k3f9x2ab@example.org).

A case address's token is an HMAC of the case reference under the mailbox's secret, so an
address cannot be guessed from a reference or forged; verification is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable

TOKEN_CHARS = 10  # base32: 50 bits

# A plain addr-spec, the only kind Candour writes to: a dot-atom local part (letters of any
# script, digits, RFC 5322 atext) and a domain of letter-digit-hyphen labels. No quoted
# local parts, no comments, no whitespace or control characters, no encoded-word debris.
_LOCAL = re.compile(r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*")
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)+{_LABEL}")


def is_plain_address(text: str) -> bool:
    """Whether `text` is one plain address (local@domain.tld), safe to write in a header
    and give to SMTP as it is."""
    local, at, domain = text.rpartition("@")
    return (
        bool(at)
        and len(text) <= 254
        and len(local) <= 64
        and "=?" not in text
        and "?=" not in text
        and _LOCAL.fullmatch(local) is not None
        and _DOMAIN.fullmatch(domain) is not None
    )


def _token(secret: bytes, reference: str) -> str:
    digest = hmac.new(secret, reference.lower().encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:TOKEN_CHARS]


def case_address(mailbox_address: str, reference: str, secret: bytes) -> str:
    """The address that brings replies back to case `reference`."""
    local, domain = mailbox_address.split("@", 1)
    return f"{local}+{reference.lower()}.{_token(secret, reference)}@{domain}"


def case_reference(address: str, mailbox_address: str, secret: bytes) -> str | None:
    """The case reference an address signs for, or None (not ours, malformed or forged)."""
    local, domain = mailbox_address.lower().split("@", 1)
    match = re.fullmatch(
        rf"{re.escape(local)}\+([a-z]{{2,6}}-\d{{4}}-\d{{5}})\.([a-z2-7]{{{TOKEN_CHARS}}})@{re.escape(domain)}",
        address.strip().lower(),
    )
    if match is None:
        return None
    reference, token = match.groups()
    if not hmac.compare_digest(token, _token(secret, reference)):
        return None
    return reference.upper()


def signed_reference(
    addresses: Iterable[str], mailbox_address: str, secret: bytes
) -> tuple[str | None, bool]:
    """(reference, forged): the first validly signed case address among `addresses`;
    `forged` is True when an address had our case-address shape but a bad signature."""
    local = mailbox_address.lower().split("@", 1)[0]
    forged = False
    for address in addresses:
        reference = case_reference(address, mailbox_address, secret)
        if reference is not None:
            return reference, False
        if address.lower().startswith(f"{local}+"):
            forged = True
    return None, forged


NEW_CASE = "new"  # the local-part tag of the address staff log other channels' complaints to


def new_case_address(mailbox_address: str, secret: bytes) -> str:
    """complaints+new.TOKEN@...: staff write here to log a complaint taken by phone, letter,
    web form or in person. Signed like case addresses, so it cannot be guessed."""
    local, domain = mailbox_address.split("@", 1)
    return f"{local}+{NEW_CASE}.{_token(secret, NEW_CASE)}@{domain}"


def is_new_case_address(addresses: Iterable[str], mailbox_address: str, secret: bytes) -> bool:
    """Whether any of `addresses` is the mailbox's signed new-case address."""
    wanted = new_case_address(mailbox_address, secret).lower().encode()
    return any(
        hmac.compare_digest(a.strip().lower().encode("utf-8", "replace"), wanted) for a in addresses
    )
