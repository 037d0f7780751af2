"""Who Candour writes as for one mailbox: its address, organisation, time zone and the
wording of its signposts. Built by the daemon from a mailbox's configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict


class SignpostConfig(BaseModel):
    """Text for the replies to out-of-scope senders (`[mailbox.signpost]`; templates use it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    emergency_guidance: str = (
        "If anyone is in immediate danger, call 999. If you are worried about a child or an "
        "adult at risk and it is not an emergency, contact your local council's safeguarding team."
    )
    data_protection: str = "our Data Protection Officer"
    hr: str = "our People team"
    social_care: str = "the local authority's statutory complaints procedure"


@dataclass(frozen=True)
class Letterhead:
    address: str
    organisation: str
    timezone: str = "Europe/London"
    signpost: SignpostConfig = field(default_factory=SignpostConfig)

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local_time(self, moment: datetime | None) -> str:
        """`moment` as the mailbox's staff and complainants read it: Tue 08 Dec 2026 09:30."""
        if moment is None:
            return "not set"
        return moment.astimezone(self.zone).strftime("%a %d %b %Y %H:%M")
