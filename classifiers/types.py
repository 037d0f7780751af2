"""The values classification takes and returns, shared by the daemon and the admin CLI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

LABELS: tuple[str, ...] = (
    "complaint",
    "feedback",
    "data_protection",
    "safeguarding",
    "hr",
    "social_care",
)
OUT_OF_SCOPE: frozenset[str] = frozenset({"data_protection", "safeguarding", "hr", "social_care"})


@dataclass(frozen=True)
class ClassifierInput:
    subject: str
    body: str
    sender: str = ""


@dataclass(frozen=True)
class Classification:
    """A label with its calibrated confidence and why it was given."""

    label: str
    confidence: float
    needs_review: bool
    model_version: str
    flags: tuple[str, ...] = ()  # the safety net's: ("safeguarding",) when it fired
    reasons: tuple[str, ...] = ()
    # The second signal: how likely a complaint about the organisation's own service this
    # is (the model's calibrated probability; 1.0 when no model could say), and the
    # explicit dissatisfaction the sender expressed (classifiers.cues).
    complaint_probability: float = 1.0
    cues: tuple[str, ...] = ()
    # What else the message asks for besides its label, e.g. ("data_request",).
    aspects: tuple[str, ...] = ()
    # ISO 639-1 code of the sender's language ("en", "cy"); None when too short to tell.
    language: str | None = None


class Classifier(Protocol):
    """Anything that labels a batch of messages."""

    @property
    def version(self) -> str: ...

    def classify(self, items: Sequence[ClassifierInput]) -> list[Classification]: ...
