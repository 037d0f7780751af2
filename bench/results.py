"""The benchmark's results: what was measured, the targets, and the JSON file.

Targets are reported as PASS / MISS next to the figures, never asserted; bench.report
prints them as tables.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from bench.cpu import CpuAccount
from bench.fresh import FreshResult
from bench.ingest import BacklogRun, RawLimit
from bench.latency import LatencyResult
from bench.mailboxes import MailboxesResult
from bench.profiling import ProfileResult
from bench.workers import TAKEOVER_LIMIT, WorkersResult

INGEST_TARGET = 0.5  # of the raw fetch+parse rate
# The ingest target holds from this backlog up; smaller ones (1,000: start-up dominates on
# two cores) are reported with no verdict.
INGEST_TARGET_SIZE = 10_000
P50_TARGET, P99_TARGET = 1.0, 3.0  # seconds
RSS_TARGET_MB, RSS_TARGET_SIZE = 300.0, 100_000
MAILBOXES_LATENCY_TARGET, MAILBOXES_RSS_MB = 1.0, 400.0  # 200 mailboxes in one process
FRESH_TARGET = 5.0  # seconds: a new complaint acknowledged while a backlog is worked off


@dataclass
class CorpusFigures:
    """What was seeded for one backlog size (the same for every run of that size)."""

    messages: int
    mean_bytes: int
    seed_rate: float  # MULTIAPPEND messages/s


@dataclass
class Suite:
    started: str
    machine: dict[str, Any]
    options: dict[str, Any]
    corpus: dict[int, CorpusFigures] = field(default_factory=dict)
    raw: dict[int, RawLimit] = field(default_factory=dict)  # the first measurement per size
    raw_runs: dict[str, RawLimit] = field(default_factory=dict)  # before each daemon run
    backlog: list[BacklogRun] = field(default_factory=list)
    latency: list[LatencyResult] = field(default_factory=list)
    mailboxes: list[MailboxesResult] = field(default_factory=list)
    fresh: list[FreshResult] = field(default_factory=list)
    workers: list[WorkersResult] = field(default_factory=list)
    classifier: dict[str, Any] | None = None
    profile: ProfileResult | None = None
    notes: list[str] = field(default_factory=list)


def _code_version() -> str:
    """The commit measured, and how many files differ from it (read-only git calls)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head} + {len(dirty)} modified files" if dirty else head


def machine() -> dict[str, Any]:
    """The machine and its load when the run starts (other work skews wall-clock figures)."""
    return {
        "code": _code_version(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# -- targets ---------------------------------------------------------------------------


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def _mailboxes_targets(suite: Suite) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    for run in suite.mailboxes:
        for name, value in (("p50", run.p50), ("p99", run.p99)):
            figure = "not measured" if value is None else f"{value:.2f} s"
            ok = None if value is None else value < MAILBOXES_LATENCY_TARGET
            rows.append(
                (
                    f"ack latency {name} < {MAILBOXES_LATENCY_TARGET:.0f} s, "
                    f"{run.mailboxes} mailboxes in one process",
                    figure,
                    _verdict(ok),
                )
            )
        rows.append(
            (
                f"RSS < {MAILBOXES_RSS_MB:.0f} MB, {run.mailboxes} mailboxes (processes summed)",
                f"{run.peak_rss_mb:.0f} MB",
                _verdict(run.peak_rss_mb < MAILBOXES_RSS_MB if run.peak_rss_mb else None),
            )
        )
    return rows


def _fresh_targets(suite: Suite) -> list[tuple[str, str, str]]:
    rows = []
    for fresh in suite.fresh:
        ok = fresh.during_backlog > 0 and fresh.max is not None and fresh.max <= FRESH_TARGET
        figure = (
            f"max {fresh.max} s, p50 {fresh.p50} s; {fresh.acknowledged}/{fresh.fresh} acked, "
            f"{fresh.during_backlog} while backlog acknowledgements still went out"
        )
        target = f"new complaint acked <= {FRESH_TARGET:.0f} s during a {fresh.backlog:,} backlog"
        rows.append((target, figure, _verdict(ok if fresh.max is not None else None)))
    return rows


def _workers_targets(suite: Suite) -> list[tuple[str, str, str]]:
    rows = []
    for workers in suite.workers:
        figure = (
            f"lost {workers.lost}, acked twice {workers.acknowledged_twice}, sent twice "
            f"{workers.sent_twice}, in doubt {workers.in_doubt}; takeover max "
            f"{workers.max_takeover} s"
        )
        target = (
            f"{workers.workers} workers on PostgreSQL, {workers.kills} kill -9s: nothing lost "
            f"or doubled, takeover <= {TAKEOVER_LIMIT:g} s"
        )
        rows.append((target, figure, _verdict(workers.ok)))
    return rows


def targets(suite: Suite) -> list[tuple[str, str, str]]:
    """(target, figure, PASS | MISS | n/a) rows."""
    rows: list[tuple[str, str, str]] = []
    for lat in suite.latency:
        for name, value, limit in (("p50", lat.p50, P50_TARGET), ("p99", lat.p99, P99_TARGET)):
            figure = "not measured" if value is None else f"{value:.2f} s"
            ok = None if value is None else value < limit
            rows.append(
                (f"ack latency {name} < {limit:.0f} s ({lat.database})", figure, _verdict(ok))
            )
    rows += _mailboxes_targets(suite)
    rows += _fresh_targets(suite)
    rows += _workers_targets(suite)
    for run in suite.backlog:
        if run.mode not in ("run", "burst"):
            continue
        figure = f"{100 * run.ratio:.0f} % ({run.rate:.0f} of {run.raw_rate:.0f}/s)"
        if run.cold_raw_rate:
            figure += f"; cold start {100 * run.ratio_cold:.0f} %"
        if not run.completed:
            figure = f"did not finish: {run.note[:60]}"
        how = ", burst into a running daemon" if run.mode == "burst" else ""
        verdict = (
            _verdict(run.completed and run.ratio >= INGEST_TARGET)
            if run.messages >= INGEST_TARGET_SIZE
            else f"n/a (no target below {INGEST_TARGET_SIZE:,})"
        )
        rows.append(
            (f"ingest >= 50 % of raw, {run.messages:,} msgs{how} ({run.database})", figure, verdict)
        )
    huge = [r for r in suite.backlog if r.messages >= RSS_TARGET_SIZE and r.mode == "run"]
    if huge:
        for run in huge:
            rows.append(
                (
                    f"peak RSS < {RSS_TARGET_MB:.0f} MB, {run.messages:,} msgs ({run.database})",
                    f"{run.peak_rss_mb:.0f} MB",
                    _verdict(run.peak_rss_mb < RSS_TARGET_MB),
                )
            )
    else:
        runs = [r for r in suite.backlog if r.mode == "run" and rss_estimate(r) is not None]
        largest = max(runs, key=lambda r: r.messages, default=None)
        estimate = rss_estimate(largest) if largest is not None else None
        figure = "run with --huge"
        if largest is not None and estimate is not None:
            figure = f"~{estimate:.0f} MB estimated from {largest.messages:,} ({largest.database})"
        rows.append((f"peak RSS < {RSS_TARGET_MB:.0f} MB at 100,000 msgs", figure, "n/a"))
    return rows


def rss_estimate(run: BacklogRun) -> float | None:
    """Peak RSS this run would reach at 100,000 messages, growing as in its second half."""
    slope = run.rss_growth_per_1000
    if slope is None or not run.completed or run.messages >= RSS_TARGET_SIZE:
        return None
    return run.peak_rss_mb + max(slope, 0.0) * (RSS_TARGET_SIZE - run.messages) / 1000


# -- JSON ------------------------------------------------------------------------------

_PROPERTIES: dict[type, tuple[str, ...]] = {
    RawLimit: ("rate", "fetch_rate", "parse_rate"),
    CpuAccount: ("other", "idle"),
    BacklogRun: (
        "raw_rate",
        "rate",
        "ratio",
        "rate_after_start",
        "ratio_after_start",
        "rss_growth_per_1000",
    ),
}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in _PROPERTIES.get(type(value), ()):
            computed = getattr(value, name)
            out[name] = None if computed is None else round(computed, 4)
        return out
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def write_json(suite: Suite, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _plain(suite)
    data["targets"] = [{"target": t, "figure": f, "verdict": v} for t, f, v in targets(suite)]
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return path
