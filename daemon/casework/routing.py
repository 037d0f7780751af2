"""Routing decisions, as pure functions: who gets the staff copy, which reply the sender
gets, and what role the sender of a threaded message plays on its case."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeGuard

from classifiers.types import OUT_OF_SCOPE, Classification
from daemon.config import RoutesConfig


@dataclass(frozen=True)
class Route:
    """Where a new case's staff copy goes, and why."""

    primary: str | None  # the label's route, or the review route when doubtful
    also: tuple[str, ...]  # e.g. the safeguarding lead when the safety net fired
    reasons: tuple[str, ...]

    @property
    def recipients(self) -> tuple[str, ...]:
        found = [self.primary, *self.also]
        return tuple(dict.fromkeys(r for r in found if r))


def raises_concern(classification: Classification | None) -> TypeGuard[Classification]:
    """Whether a message calls for the safeguarding lead: the safety net fired, or the
    model labelled it safeguarding. For new cases and follow-ups alike."""
    return classification is not None and (
        "safeguarding" in classification.flags or classification.label == "safeguarding"
    )


def route_for(
    classification: Classification, routes: RoutesConfig, *, no_pseudonym: bool = False
) -> Route:
    """The route of a new case from its classification."""
    reasons = []
    if classification.needs_review or no_pseudonym:
        primary = routes.review or routes.for_label(classification.label)
        reasons.append("needs-review" if classification.needs_review else "no-pseudonym")
    else:
        primary = routes.for_label(classification.label)
        reasons.append(f"label:{classification.label}")
    also: tuple[str, ...] = ()
    if raises_concern(classification):
        lead = routes.safeguarding
        if lead and lead != primary:
            also = (lead,)
            reasons.append("safeguarding-flag")
    return Route(primary, also, tuple(reasons))


def reply_kind(classification: Classification) -> str:
    """The one automatic reply a new sender gets: the template name.

    A doubtful classification gets the neutral acknowledgement rather than a guess that
    might signpost a real complaint away.
    """
    if classification.needs_review or classification.label == "complaint":
        return "acknowledgement"
    if classification.label == "feedback":
        return "thanks"
    if classification.label in OUT_OF_SCOPE:
        return f"signpost_{classification.label}"
    return "acknowledgement"


class Role(StrEnum):
    STAFF_REPLY = "staff_reply"  # staff, writing to the case's signed reply address
    STAFF_MESSAGE = "staff_message"  # staff, threaded another way: recorded, never relayed
    COMPLAINANT = "complainant"  # the case's own complainant
    OTHER = "other"  # someone else on the thread: recorded and forwarded, flagged


def sender_role(*, sender: str, is_staff: bool, complainant: str, via_case_address: bool) -> Role:
    """What a threaded message is, from who sent it and how it reached the case."""
    if is_staff and sender != complainant:
        return Role.STAFF_REPLY if via_case_address else Role.STAFF_MESSAGE
    if sender == complainant:
        return Role.COMPLAINANT
    return Role.OTHER
