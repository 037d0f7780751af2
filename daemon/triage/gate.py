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

A message the safety net flagged is never answered with a data protection, HR or social
care signpost or a thank-you: it gets the neutral acknowledgement, and the safeguarding
lead a copy, whatever its label.

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

# Labels whose own reply would be wrong for a message that also discloses harm.
_NOT_FOR_A_DISCLOSURE = frozenset({"data_protection", "hr", "social_care", "feedback"})
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
    # A disclosure the safety net found is never answered with a data protection, HR or
    # social care signpost, or a thank-you: the neutral acknowledgement, and the lead's copy.
    disclosure = "safeguarding" in c.flags and c.label in _NOT_FOR_A_DISCLOSURE
    # Whistleblowing and fraud go to their officer, never signposted away: the reply says so.
    concern = c.label != "complaint" and bool({"whistleblowing", "fraud"} & set(aspects))
    reply = "acknowledgement" if disclosure else "concern" if concern else None
    why = ("safeguarding-flag",) if disclosure else ("concern",) if concern else ()
    if c.label in OUT_OF_SCOPE:
        threshold = getattr(settings.signpost, c.label)
        if c.confidence < threshold:
            reasons.append(f"below-signpost-threshold:{c.confidence:.2f}<{threshold:.2f}")
        if not reasons:
            return Screened(c.label, reply or f"signpost_{c.label}", False, tuple(aspects), why)
        aspects.setdefault(ASPECT_OF_LABEL[c.label])
    elif c.label == "feedback" and not reasons:
        return Screened("feedback", reply or "thanks", False, tuple(aspects), why)
    elif c.label == "complaint":
        # A complaint with an explicit cue or a high complaint probability is just that.
        reasons = [r for r in reasons if r.startswith(("language:", "doubtful:"))]
    ordered = tuple(sorted(aspects, key=lambda a: a != "safeguarding"))
    acting_alone = c.label == "complaint" and not reasons
    return Screened("complaint", "acknowledgement", not acting_alone, ordered, tuple(reasons))


@dataclass(frozen=True)
class GateFigures:
    """What the gate would have done with a labelled set (`candour evaluate`)."""

    complaints: int
    complaints_signposted: int  # must be 0: a complaint sent away on the model's word
    complaints_without_stage: int  # thanked as feedback: no stage clock; must be 0 too
    out_of_scope: int
    out_of_scope_signposted: int  # with their own label, on the model's word
    to_review: int
    examples: int

    def report(self) -> str:
        def share(part: int, whole: int) -> str:
            return f"{part}/{whole} ({part / whole:.1%})" if whole else "0/0"

        return "\n".join(
            [
                "with the triage gate at these settings:",
                f"  complaints that would have been signposted automatically "
                f"{share(self.complaints_signposted, self.complaints)}",
                f"  complaints thanked as feedback (no stage clock) "
                f"{share(self.complaints_without_stage, self.complaints)}",
                f"  out-of-scope messages signposted automatically "
                f"{share(self.out_of_scope_signposted, self.out_of_scope)}",
                f"  sent to review {share(self.to_review, self.examples)}",
            ]
        )


def gate_figures(
    truth: list[str],
    results: list[Classification],
    settings: ClassifierConfig,
    languages: frozenset[str],
) -> GateFigures:
    """Screen every result as a new message would be, and count against the true labels."""
    screened = [screen(r, settings, languages) for r in results]
    pairs = list(zip(truth, screened, strict=True))
    return GateFigures(
        complaints=truth.count("complaint"),
        complaints_signposted=sum(
            t == "complaint" and s.reply.startswith("signpost_") for t, s in pairs
        ),
        complaints_without_stage=sum(t == "complaint" and s.label != "complaint" for t, s in pairs),
        out_of_scope=sum(t in OUT_OF_SCOPE for t in truth),
        out_of_scope_signposted=sum(
            t in OUT_OF_SCOPE and s.reply == f"signpost_{t}" for t, s in pairs
        ),
        to_review=sum(s.needs_review for s in screened),
        examples=len(results),
    )
