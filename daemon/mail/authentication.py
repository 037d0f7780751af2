"""Sender authentication: whether the mailbox's own receiving server vouches for a From.

Mail that claims a staff address acts as staff (commands, relays to complainants), so
when `[mailbox.staff_authentication]` is set it counts only if the receiving server's
Authentication-Results header (RFC 8601) says a required method passed for the From
domain. Only headers carrying that server's authserv-id count: anyone can write an
Authentication-Results header of their own, and the receiving server removes forged ones
bearing its id (set OpenDMARC or authentication_milter to). DKIM and SPF
count only for the From domain (a stranger can pass DKIM for a domain of their own).
`verify` is pure: header text in, a `Verdict` out.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import authres
from pydantic import Field

from daemon.policy import Strict

Method = Literal["dmarc", "dkim", "spf", "auth"]

# The property of each method's result that names the domain it vouches for.
_DOMAIN_PROPERTY: dict[str, tuple[str, str]] = {
    "dmarc": ("header", "from"),
    "dkim": ("header", "d"),
    "spf": ("smtp", "mailfrom"),
}
_DKIM_IDENTITY = ("header", "i")


class StaffAuthenticationConfig(Strict):
    """`[mailbox.staff_authentication]`: mail from a staff address acts as staff only when
    the mailbox's receiving server vouches for it (`verify`)."""

    # The id your receiving server writes first in its Authentication-Results header
    # ("mx.trust.example"); "" leaves staff mail unchecked. That server must remove headers
    # bearing this id from the mail it receives, or a stranger can write one.
    authserv_id: str = Field(default="", pattern=r"^[^\s;@]*$")
    # Any one of these passing is enough: "dmarc", "dkim" or "spf" for the From domain, or
    # "auth" (sent through that server with a login).
    require: tuple[Method, ...] = Field(default=("dmarc",), min_length=1)


@dataclass(frozen=True)
class Verdict:
    """Whether the From was vouched for, and why, in words without an address."""

    authenticated: bool
    reason: str  # e.g. "dmarc=pass", "dmarc=fail", "no Authentication-Results from mx..."


@dataclass(frozen=True)
class _Result:
    method: str
    result: str
    properties: tuple[tuple[str, str, str], ...]  # (ptype, property, value)

    def value(self, ptype: str, name: str) -> str | None:
        for found_type, found_name, value in self.properties:
            if found_type.lower() == ptype and found_name.lower() == name:
                return value
        return None


def _trusted_results(headers: Sequence[str], authserv_id: str) -> tuple[list[_Result], int]:
    """The results in the headers bearing `authserv_id`, and how many such headers could
    not be read (a malformed header vouches for nothing)."""
    results: list[_Result] = []
    unreadable = 0
    wanted = authserv_id.strip().lower()
    for text in headers:
        try:
            parsed = authres.AuthenticationResultsHeader.parse_value(text)
        except Exception:  # noqa: BLE001 - the parser raises more than AuthResError on junk
            if text.strip().lower().startswith(wanted):
                unreadable += 1
            continue
        if str(parsed.authserv_id or "").lower() != wanted:
            continue
        for result in parsed.results:
            properties = tuple(
                (str(p.type or ""), str(p.name or ""), str(p.value or ""))
                for p in result.properties
            )
            results.append(
                _Result(str(result.method).lower(), str(result.result).lower(), properties)
            )
    return results, unreadable


def _domain_of(value: str) -> str:
    """The domain in a property value: "trust.example", "@trust.example", "a@trust.example"."""
    return value.rsplit("@", 1)[-1].strip().strip(".").lower()


def aligned(vouched: str, sender_domain: str) -> bool:
    """Whether a domain vouched for is the From's (the same, or one a subdomain of the other:
    DMARC's relaxed alignment without the public-suffix list, so stricter, never looser)."""
    vouched, sender_domain = _domain_of(vouched), sender_domain.lower()
    if not vouched or not sender_domain:
        return False
    return (
        vouched == sender_domain
        or sender_domain.endswith("." + vouched)
        or vouched.endswith("." + sender_domain)
    )


def _for_sender(result: _Result, sender_domain: str) -> bool:
    """Whether `result` is about the From domain."""
    if result.method == "auth":
        return True  # a login to the trusted server itself: no domain to compare
    ptype, name = _DOMAIN_PROPERTY[result.method]
    vouched = result.value(ptype, name)
    if vouched is None and result.method == "dkim":
        vouched = result.value(*_DKIM_IDENTITY)
    if vouched is None:
        # DMARC is evaluated for the From domain by definition; DKIM and SPF need a domain.
        return result.method == "dmarc"
    return aligned(vouched, sender_domain)


def verify(
    headers: Sequence[str], sender: str, authserv_id: str, require: Collection[Method]
) -> Verdict:
    """Whether the server `authserv_id` vouches for `sender`'s domain by any method in
    `require`, from the message's Authentication-Results header values (top first).

    A DMARC result contradicted by another trusted header (a pass and a fail) fails.
    """
    domain = sender.rsplit("@", 1)[-1].lower() if "@" in sender else ""
    results, unreadable = _trusted_results(headers, authserv_id)
    relevant = [r for r in results if r.method in require and _for_sender(r, domain)]
    if not relevant:
        if unreadable:
            return Verdict(False, f"the Authentication-Results from {authserv_id} is unreadable")
        if any(r.method in require for r in results):
            return Verdict(False, f"{'/'.join(sorted(require))} passed for another domain")
        return Verdict(False, f"no {'/'.join(sorted(require))} result from {authserv_id}")
    said = sorted({f"{r.method}={r.result}" for r in relevant})
    for method in sorted(require):
        outcomes = {r.result for r in relevant if r.method == method}
        if "pass" in outcomes and not (method == "dmarc" and len(outcomes) > 1):
            return Verdict(True, f"{method}=pass")
    return Verdict(False, ", ".join(said))
