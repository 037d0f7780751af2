"""A period's figures from its cases' facts, as pure functions (the JSON form's keys are
stable: other tools read them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from statistics import median
from typing import Any

from models.reporting import CaseFacts

STAGED = ("complaint",)
OUT_OF_SCOPE = ("data_protection", "safeguarding", "hr", "social_care")
WorkingDays = Callable[[datetime, datetime], int]


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def cases(facts: Sequence[CaseFacts], month: Callable[[datetime], str]) -> dict[str, Any]:
    return {
        "total": len(facts),
        "by_label": dict(sorted(Counter(f.label for f in facts).items())),
        "by_month": dict(sorted(Counter(month(f.received_at) for f in facts).items())),
        "by_channel": dict(sorted(Counter(f.channel for f in facts).items())),
        "by_month_label": _by_month_label(facts, month),
    }


def _by_month_label(
    facts: Sequence[CaseFacts], month: Callable[[datetime], str]
) -> dict[str, dict[str, int]]:
    found: dict[str, Counter[str]] = {}
    for f in facts:
        found.setdefault(month(f.received_at), Counter())[f.label] += 1
    return {m: dict(sorted(found[m].items())) for m in sorted(found)}


def acknowledgements(facts: Sequence[CaseFacts], now: datetime) -> dict[str, Any]:
    """Owed acknowledgements: on time, late (sent late, or unsent past due), pending."""
    owed = [f for f in facts if f.ack_due_at is not None and f.no_ack_reason is None]
    on_time = late = pending = 0
    for f in owed:
        assert f.ack_due_at is not None
        if f.acknowledged_at is not None:
            on_time += f.acknowledged_at <= f.ack_due_at
            late += f.acknowledged_at > f.ack_due_at
        elif f.ack_due_at < now:
            late += 1
        else:
            pending += 1
    return {
        "due": len(owed),
        "on_time": on_time,
        "late": late,
        "pending": pending,
        "on_time_percent": _percent(on_time, on_time + late),
    }


def stages(
    facts: Sequence[CaseFacts], now: datetime, working_days: WorkingDays
) -> list[dict[str, Any]]:
    """For each stage: responses due in the period's cases, on time, late (answered late,
    or unanswered past due), and the median working days to respond."""
    runs = [run for f in facts for run in f.stages]
    found = []
    for number in sorted({run.stage for run in runs}):
        mine = [run for run in runs if run.stage == number]
        answered = [(run, run.responded_at) for run in mine if run.responded_at is not None]
        on_time = sum(1 for run, at in answered if at <= run.due_at)
        late = (
            len(answered)
            - on_time
            + sum(1 for run in mine if run.responded_at is None and run.due_at < now)
        )
        days = [working_days(run.started_at, at) for run, at in answered]
        found.append(
            {
                "stage": number,
                "due": len(mine),
                "on_time": on_time,
                "late": late,
                "on_time_percent": _percent(on_time, on_time + late),
                "median_working_days": median(days) if days else None,
            }
        )
    return found


def outcomes(facts: Sequence[CaseFacts]) -> dict[str, int]:
    return dict(sorted(Counter(f.outcome for f in facts if f.outcome).items()))


def referrals(facts: Sequence[CaseFacts]) -> dict[str, int]:
    """Out-of-scope cases signposted, by where they went (the route)."""
    sent = [f for f in facts if f.label in OUT_OF_SCOPE and f.automatic_reply == "signpost"]
    return dict(sorted(Counter(f"{f.label} -> {f.route or 'unrouted'}" for f in sent).items()))


def flags(facts: Sequence[CaseFacts]) -> dict[str, int]:
    """Counts only: safeguarding flags raised, repeat and restricted complainants..."""
    counted = Counter(flag for f in facts for flag in f.flags)
    wanted = ("safeguarding", "repeat_contact", "restricted", "time_limit", "non_service_user")
    return {name: counted.get(name, 0) for name in wanted}


def escalations(facts: Sequence[CaseFacts]) -> int:
    return sum(1 for f in facts for run in f.stages if run.stage >= 2)


def change(now: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """The change in each headline figure from the previous period."""

    def pick(figures: dict[str, Any]) -> dict[str, float | None]:
        return {
            "cases": figures["cases"]["total"],
            "acknowledged_on_time_percent": figures["acknowledgements"]["on_time_percent"],
            "escalations": figures["escalations"],
            "open_at_end": figures["open_at_end"]["open"],
        }

    a, b = pick(now), pick(before)
    return {k: _minus(a[k], b[k]) for k in a}


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 1)
