"""The classifier's settings: the `[classifier]` table of the daemon's configuration."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class SignpostThresholds(BaseModel):
    """The confidence an out-of-scope label needs before its sender is signposted away
    (`[classifier.signpost]`). Chosen on the held-out split so that no complaint in it
    would have been signposted (classifiers/README.md); stricter than `review_below`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_protection: float = Field(default=0.6, ge=0.0, le=1.0)
    hr: float = Field(default=0.6, ge=0.0, le=1.0)
    social_care: float = Field(default=0.6, ge=0.0, le=1.0)
    safeguarding: float = Field(default=0.75, ge=0.0, le=1.0)


class ClassifierConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Below this calibrated confidence a message goes to human review instead of a guess.
    review_below: float = Field(default=0.5, ge=0.0, le=1.0)
    # Extra safeguarding rules (TOML) on top of the shipped ones.
    extra_rules: Path | None = None
    # A message whose probability of being a complaint is at least this is never
    # signposted or thanked on the model's word: it is handled as a complaint, for review.
    complaint_below: float = Field(default=0.15, ge=0.0, le=1.0)
    signpost: SignpostThresholds = SignpostThresholds()
