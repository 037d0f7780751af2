"""The complaints procedure of a mailbox as configured: `[mailbox.policy]`, its stages
and early resolution, `[mailbox.calendar]` (when the office is open) and
`[mailbox.reminders]`; and the pieces every table of the file is built from (`Strict`,
`Address`, `ConfigError`). daemon.config composes them into the whole file.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

_ADDRESS = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


def address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError(f"{value!r} is not an email address like name@example.org")
    return value.lower()


Address = Annotated[str, AfterValidator(address)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _limit(value: str) -> str:
    from daemon.casework.workdays import TimeLimit

    TimeLimit.parse(value)  # raises ValueError with an example
    return value


Limit = Annotated[str, AfterValidator(_limit)]
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _clock(value: str) -> str:
    if not _CLOCK.match(value):
        raise ValueError(f"{value!r} is not a time of day like 09:00")
    return value


ClockTime = Annotated[str, AfterValidator(_clock)]
Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


class StageConfig(Strict):
    name: str
    respond_within: Limit
    # How long the complainant has to ask for this stage after the previous response.
    request_within: Limit | None = None
    # Who answers this stage: the case is re-routed (and assigned) to them when it starts.
    handler: Address | None = None
    # What a response at this stage tells the complainant of their rights. Default: the
    # next stage and how long they have to ask for it, or after the last stage `final_rights`.
    rights: str | None = None


class EarlyResolutionConfig(Strict):
    """Early (informal, local) resolution before stage 1, started by staff with #early."""

    respond_within: Limit
    handler: Address | None = None


PRESETS = Path(str(resources.files("daemon") / "presets"))


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS.glob("*.toml"))


def _with_preset(data: Any) -> Any:
    """`preset = NAME` fills the policy from daemon/presets/NAME.toml; keys the file sets
    itself win. Raises ValueError naming the presets there are."""
    if not isinstance(data, dict) or "preset" not in data:
        return data
    name = data["preset"]
    path = PRESETS / f"{name}.toml"
    if not isinstance(name, str) or not path.is_file():
        raise ValueError(f"unknown preset {name!r}; there are: {', '.join(preset_names())}")
    return {**tomllib.loads(path.read_text(encoding="utf-8")), **data}


class PolicyConfig(Strict):
    """The organisation's complaints procedure: acknowledgement and stage time limits."""

    # One of daemon/presets/*.toml: a published procedure this one starts from.
    preset: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        return _with_preset(data)

    acknowledge: Limit | None = None  # default: ack_within_working_days
    # When stage 1's clock starts: on receipt, or when staff establish the nature of the
    # complaint with #accept ("accepted").
    clock_starts: Literal["receipt", "accepted"] = "receipt"
    early_resolution: EarlyResolutionConfig | None = None
    # Extensions (#extend N reason): how many per stage, and at most how many working days.
    max_extensions_per_stage: int = Field(default=1, ge=0)
    max_extension_working_days: int = Field(default=20, ge=1)
    # What a response after the last stage tells the complainant: the ombudsman or regulator.
    final_rights: str = (
        "If you remain dissatisfied, you can ask the relevant Ombudsman to look at your complaint."
    )
    # A reply at stage N from whoever answered stage N-1: "warn" (relay it, and say so to
    # staff) or "hold" (refuse it: someone else must answer).
    same_handler: Literal["warn", "hold"] = "warn"
    stages: tuple[StageConfig, ...] = (
        StageConfig(name="stage 1", respond_within="10 working days"),
        StageConfig(
            name="stage 2", respond_within="25 working days", request_within="20 working days"
        ),
    )
    time_limit_months: int = Field(default=12, ge=1)


class CalendarConfig(Strict):
    opens: ClockTime = "09:00"
    closes: ClockTime = "17:00"
    working_days: tuple[Weekday, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri")
    closures: tuple[date, ...] = ()  # extra closure days, e.g. a Christmas shutdown

    @model_validator(mode="after")
    def _order(self) -> CalendarConfig:
        if self.closes <= self.opens:
            raise ValueError("closes must be after opens")
        return self


class RemindersConfig(Strict):
    enabled: bool = True
    at: ClockTime = "08:30"  # local time on working days
    due_within_working_days: int = Field(default=2, ge=0)
    manager: Address | None = None  # receives an overdue notice per case
