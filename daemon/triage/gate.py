"""What the model may do on its own: the gate between a classification and the case.

The classifier only ever proposes. A message leaves the complaints process (an
out-of-scope signpost) or skips the stage clock (thanks for feedback) on the model's word
only when all of these hold:

- the model is confident: at or above the label's `[classifier.signpost]` threshold for an
  out-of-scope label (stricter than `review_below`), not doubtful for feedback;
- nothing says it is a complaint: the model's calibrated probability of `complaint` is
  below `classifier.complaint_below`, and the sender expressed no explicit dissatisfaction
  (classifiers.cues: "this is a formal complaint", "I want an explanation", "unacceptable");
- it is written in a language the mailbox handles (`languages`), which the model can read.

Otherwise the message is handled as a complaint: acknowledged, its stage clock started from
receipt, routed to review, and what the model thought kept as an aspect (`data_request`,
`safeguarding`, `hr`, `social_care`) so that route gets its copy too. A signposted case is
never closed by the model either: it waits in `referral_pending` for a person
(models.lifecycle). Pure: a Classification and settings in, a Screened out.
"""

from __future__ import annotations

from dataclasses import dataclass

from classifiers.config import ClassifierConfig
from classifiers.types import OUT_OF_SCOPE, Classification

# What an out-of-scope label becomes when the case is handled as a complaint instead.
ASPECT_OF_LABEL = {
    "data_protection": "data_request",
    "safeguarding": "safeguarding",
    "hr": "hr",
    "social_care": "social_care",
}


@dataclass(frozen=True)
class Screened:
    """How a new case is handled: its label, its automatic reply, review and aspects."""

    label: str  # the case's label: the model's, or "complaint" when it may not act alone
    reply: str  # the template: acknowledgement, thanks or signpost_<label>
    needs_review: bool
    aspects: tuple[str, ...]  # secondary aspects, flags on the case (safeguarding first)
    reasons: tuple[str, ...]  # why the model's label was not acted on, if it was not


def _complaint_signals(c: Classification, settings: ClassifierConfig) -> list[str]:
    found = [f"cue:{cue}" for cue in c.cues]
    if c.complaint_probability >= settings.complaint_below:
        found.append(f"complaint-probability:{c.complaint_probability:.2f}")
    return found


def screen(c: Classification, settings: ClassifierConfig, languages: frozenset[str]) -> Screened:
    """Apply the gate (see the module's docstring) to a new message's classification."""
    aspects = dict.fromkeys([*c.flags, *c.aspects])
    reasons = _complaint_signals(c, settings)
    if c.language is not None and c.language not in languages:
        reasons.append(f"language:{c.language}")
    if c.needs_review:
        reasons.append(f"doubtful:{c.confidence:.2f}")
    if c.label in OUT_OF_SCOPE:
        threshold = getattr(settings.signpost, c.label)
        if c.confidence < threshold:
            reasons.append(f"below-signpost-threshold:{c.confidence:.2f}<{threshold:.2f}")
        if not reasons:
            return Screened(c.label, f"signpost_{c.label}", False, tuple(aspects), ())
        aspects.setdefault(ASPECT_OF_LABEL[c.label])
    elif c.label == "feedback" and not reasons:
        return Screened("feedback", "thanks", False, tuple(aspects), ())
    elif c.label == "complaint":
        # A complaint with an explicit cue or a high complaint probability is just that.
        reasons = [r for r in reasons if r.startswith(("language:", "doubtful:"))]
    ordered = tuple(sorted(aspects, key=lambda a: a != "safeguarding"))
    acting_alone = c.label == "complaint" and not reasons
    return Screened("complaint", "acknowledgement", not acting_alone, ordered, tuple(reasons))
