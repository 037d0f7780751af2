"""Routing decisions, as pure functions: who gets the staff copy, which reply the sender
gets, and what role the sender of a threaded message plays on its case."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeGuard

from classifiers.types import Classification
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


# Which route's copy a secondary aspect of a case calls for.
_ASPECT_ROUTE = {
    "safeguarding": "safeguarding",
    "data_request": "data_protection",
    "hr": "hr",
    "social_care": "social_care",
    "whistleblowing": "whistleblowing",
    "fraud": "fraud",
}


def route_for(
    label: str,
    needs_review: bool,
    aspects: tuple[str, ...],
    routes: RoutesConfig,
    *,
    no_pseudonym: bool = False,
) -> Route:
    """The route of a new case: its label's (the review route when doubtful), and a copy
    to each route its aspects call for (the safeguarding lead when flagged)."""
    reasons = []
    if needs_review or no_pseudonym:
        primary = routes.review or routes.for_label(label)
        reasons.append("needs-review" if needs_review else "no-pseudonym")
    else:
        primary = routes.for_label(label)
        reasons.append(f"label:{label}")
    also = []
    for aspect in aspects:
        route = getattr(routes, _ASPECT_ROUTE.get(aspect, ""), None)
        if route and route != primary and route not in also:
            also.append(route)
            reasons.append(f"{aspect}-flag")
    return Route(primary, tuple(also), tuple(reasons))


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
