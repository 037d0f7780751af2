"""The classifier's settings: the `[classifier]` table of the daemon's configuration."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ClassifierConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Below this calibrated confidence a message goes to human review instead of a guess.
    review_below: float = Field(default=0.5, ge=0.0, le=1.0)
    # Extra safeguarding rules (TOML) on top of the shipped ones.
    extra_rules: Path | None = None
