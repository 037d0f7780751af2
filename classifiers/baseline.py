"""A keyword baseline classifier: used until a trained model is available."""

from __future__ import annotations

import re
from collections.abc import Sequence

from classifiers.types import Classification, ClassifierInput

_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "safeguarding",
        re.compile(
            r"\b(abus\w*|harm\w*|unsafe|suicid\w*|kill (my|him|her)self|hurt\w*|neglect\w*|"
            r"groom\w*|bruis\w*|hit (me|him|her|them)|not safe)\b",
            re.I,
        ),
    ),
    (
        "data_protection",
        re.compile(r"\b(subject access|gdpr|data protection|my data|personal data|erase)\b", re.I),
    ),
    ("hr", re.compile(r"\b(grievance|payroll|my manager|job application|interview)\b", re.I)),
    ("social_care", re.compile(r"\b(social worker|care plan|care package|assessment)\b", re.I)),
    ("feedback", re.compile(r"\b(thank you|thanks|suggest\w*|compliment\w*|well done)\b", re.I)),
)


class KeywordBaseline:
    """Labels by the first matching keyword rule; `complaint` otherwise."""

    version = "baseline-keywords-1"

    def __init__(self, review_below: float = 0.6) -> None:
        self.review_below = review_below

    def classify(self, items: Sequence[ClassifierInput]) -> list[Classification]:
        out = []
        for item in items:
            text = f"{item.subject}\n{item.body}"
            label, confidence, reason = "complaint", 0.55, "default"
            for name, pattern in _RULES:
                match = pattern.search(text)
                if match:
                    label, confidence, reason = name, 0.7, f"keyword:{match.group(0).lower()}"
                    break
            out.append(
                Classification(
                    label=label,
                    confidence=confidence,
                    needs_review=confidence < self.review_below,
                    model_version=self.version,
                    reasons=(reason,),
                )
            )
        return out
