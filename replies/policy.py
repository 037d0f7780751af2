"""Whether an automatic reply may be sent: the loop and flood guards, as one pure function."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

# What an SMTP server will take in MAIL/RCPT: no spaces, quotes or brackets; a dotted domain.
_DELIVERABLE = re.compile(
    r"^[^\s@<>()\[\],;:\"\\]+@[^\s@<>()\[\],;:\"\\]+\.[^\s@<>()\[\],;:\"\\.]+$"
)


def deliverable(address: str) -> bool:
    """True when `address` can be given to SMTP as a recipient."""
    return bool(_DELIVERABLE.match(address)) and len(address) <= 254


@dataclass(frozen=True)
class ReplyDecision:
    send: bool
    reason: str


def automatic_reply_decision(
    *,
    automatic: str | None,
    is_new_case: bool,
    recipient: str,
    own_addresses: frozenset[str],
    replies_to_recipient_today: int,
    max_per_day: int,
    age: timedelta,
    max_age: timedelta,
) -> ReplyDecision:
    """Decide whether a new message earns its one automatic reply, and say why (not)."""
    if automatic is not None:
        return ReplyDecision(False, f"automatic:{automatic}")
    if not is_new_case:
        return ReplyDecision(False, "follow-up")
    if not recipient:
        return ReplyDecision(False, "no-recipient")
    if not deliverable(recipient):
        return ReplyDecision(False, "undeliverable-address")
    if recipient in own_addresses:
        return ReplyDecision(False, "own-address")
    if replies_to_recipient_today >= max_per_day:
        return ReplyDecision(False, "rate-limited")
    if age > max_age:
        return ReplyDecision(False, "too-old")
    return ReplyDecision(True, "new-case")
