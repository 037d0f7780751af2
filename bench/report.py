"""The benchmark's report as text: one table per figure, then the targets."""

from __future__ import annotations

from typing import Any

from bench.profiling import ProfileResult
from bench.results import Suite, rss_estimate, targets


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _problems(problems: dict[str, int], shown: int = 2) -> str:
    """The commonest warnings/errors, shortened (the JSON file has them all)."""
    if not problems:
        return "none"
    ranked = sorted(problems.items(), key=lambda kv: -kv[1])
    parts = []
    for name, count in ranked[:shown]:
        event, _, detail = name.partition(" (")
        detail = detail.rstrip(")").rsplit(") ", 1)[-1]  # drop "(sqlite3.OperationalError)"
        parts.append(f"{count}x {event}" + (f": {detail[:40]}" if detail else ""))
    if len(ranked) > shown:
        parts.append(f"+{len(ranked) - shown} more")
    return "; ".join(parts)


def _raw_section(suite: Suite) -> list[str]:
    rows = []
    for n, r in sorted(suite.raw.items()):
        corpus = suite.corpus.get(n)
        runs = [x.rate for x in suite.raw_runs.values() if x.messages == r.messages]
        rows.append(
            [
                f"{n:,}",
                f"{r.rate:.0f}",
                f"{min(runs):.0f}-{max(runs):.0f}" if len(runs) > 1 else "-",
                f"{r.cold_rate:.0f}" if r.cold_seconds else "-",
                f"{r.fetch_rate:.0f}",
                f"{r.parse_rate:.0f}",
                f"{corpus.mean_bytes:,}" if corpus else "-",
                f"{corpus.seed_rate:.0f}" if corpus else "-",
            ]
        )
    headers = ["msgs", "fetch+parse/s", "around each run/s", "from a cold start/s"]
    headers += ["fetch/s", "parse/s"]
    headers += ["mean bytes", "seed/s"]
    return [
        "Raw limit: FETCH BODY.PEEK[] (500 a command) + parse_message, one thread; measured"
        " again before and after each daemon run (each run's ratio uses its own two); cold"
        " start: the same in a new process, timed from spawn to exit",
        table(headers, rows),
    ]


def _backlog_section(suite: Suite) -> list[str]:
    rows = [
        [
            f"{r.messages:,}",
            r.database,
            r.mode,
            f"{r.rate:.1f}" if r.completed else "DNF",
            f"{r.raw_rate:.0f}"
            + (f" ({r.raw_before:.0f}-{r.raw_after:.0f})" if r.raw_after is not None else ""),
            f"{100 * r.ratio:.1f} %",
            f"{100 * r.ratio_cold:.0f} %" if r.cold_raw_rate else "-",
            f"{r.rate_after_start:.0f} ({100 * r.ratio_after_start:.0f} %)" if r.completed else "-",
            _seconds(r.seconds if r.completed else None),
            _seconds(r.first_record_seconds),
            _seconds(r.recorded_seconds),
            f"{r.acks_received}/{r.acks_expected}",
            f"{r.cpu_seconds:.0f}"
            + (
                " ({})".format(
                    " + ".join(
                        f"{r.cpu_seconds_by_process[role]:.0f}"
                        for role in ("daemon", "preparer")
                        if role in r.cpu_seconds_by_process
                    )
                )
                if "preparer" in r.cpu_seconds_by_process
                else ""
            ),
            f"{r.peak_rss_mb:.0f}",
            _problems(r.log_problems),
        ]
        for r in suite.backlog
    ]
    headers = ["msgs", "database", "mode", "msgs/s", "raw/s (before-after)", "of raw"]
    headers += ["of cold raw"]
    headers += ["after start-up (of raw)"]
    headers += ["total s", "1st row s"]
    headers += ["all rows s", "acks", "CPU s (daemon + preparer)", "peak RSS MB"]
    headers += ["daemon warnings/errors"]
    out = [
        "Backlog ingest: daemon subprocess, until every message is recorded and every ack sent",
        table(headers, rows),
    ]
    out += [
        f"  note ({r.messages:,} {r.database} {r.mode}): {r.note}" for r in suite.backlog if r.note
    ]
    return out


def _cpu_section(suite: Suite) -> list[str]:
    """Where the cores went in each backlog run: the daemon is not alone on the machine."""
    rows = []
    for r in suite.backlog:
        a = r.cpu_account
        if a is None:
            continue
        total = a.cores * a.wall

        def share(seconds: float, total: float = total) -> str:
            return f"{seconds:.1f} ({100 * seconds / total:.0f} %)" if total else "-"

        rows.append(
            [
                f"{r.messages:,}",
                r.database,
                r.mode,
                f"{total:.1f}",
                share(a.daemon),
                share(a.preparer),
                share(a.harness),
                share(a.other),
                share(a.idle),
            ]
        )
    if not rows:
        return []
    headers = ["msgs", "database", "mode", "cores x wall s", "daemon", "preparer"]
    headers += ["benchmark (sink, probe, sampler)", "other (Dovecot, DB server, kernel)", "idle"]
    return [
        "CPU account of the backlog runs: core-seconds from start until every ack arrived",
        table(headers, rows),
    ]


def _latency_section(suite: Suite) -> list[str]:
    rows = [
        [
            lat.database,
            f"{lat.rate:g}/s",
            f"{lat.acknowledged}/{lat.appended}",
            _seconds3(lat.p50),
            _seconds3(lat.p95),
            _seconds3(lat.p99),
            _seconds3(lat.max),
            f"{lat.peak_rss_mb:.0f}",
            _problems(lat.log_problems),
        ]
        for lat in suite.latency
    ]
    headers = ["database", "rate", "acked", "p50 s", "p95 s", "p99 s", "max s", "peak RSS MB"]
    headers.append("daemon warnings/errors")
    out = [
        "Acknowledgement latency, steady state (APPEND one at a time -> ack at the sink)",
        table(headers, rows),
    ]
    out += [f"  note ({lat.database}): {lat.note}" for lat in suite.latency if lat.note]
    return out


def _mailboxes_section(suite: Suite) -> list[str]:
    rows = [
        [
            f"{run.mailboxes}",
            f"{run.active} ({run.gap:g} s apart)",
            "-" if run.first_round_seconds is None else f"{run.first_round_seconds:.0f}",
            f"{run.acknowledged}/{run.appended}",
            _seconds3(run.p50),
            _seconds3(run.p99),
            _seconds3(run.max),
            f"{run.peak_rss_mb:.0f}",
            " / ".join(f"{v:.0f}" for v in run.rss_by_role.values()) or "-",
            _problems(run.log_problems),
        ]
        for run in suite.mailboxes
    ]
    headers = ["mailboxes", "new mail on", "first round s", "acked", "p50 s", "p99 s", "max s"]
    headers += ["peak RSS MB", "per process", "daemon warnings/errors"]
    out = [
        "Many mailboxes in one process: each gets one complaint, then new mail on some "
        "(APPEND -> ack at the sink)",
        table(headers, rows),
    ]
    out += [f"  note: {run.note}" for run in suite.mailboxes if run.note]
    out += [f"  server: {w}" for run in suite.mailboxes for w in run.server_warnings]
    return out


def _memory_section(suite: Suite) -> list[str]:
    """Peak RSS per run, its growth in steady state, and the estimate for 100,000."""
    rows = []
    for run in suite.backlog:
        slope = run.rss_growth_per_1000
        estimate = rss_estimate(run)
        rows.append(
            [
                run.database,
                run.mode,
                f"{run.messages:,}",
                f"{run.peak_rss_mb:.0f}",
                f"{run.peak_rss_with_shutdown_mb:.0f}",
                "-" if slope is None else f"{slope:+.2f}",
                "-" if estimate is None else f"~{estimate:.0f}",
                " / ".join(
                    f"{run.peak_rss_by_process[role]:.0f}"
                    for role in ("daemon", "preparer", "resource tracker")
                    if role in run.peak_rss_by_process
                )
                or "-",
            ]
        )
    headers = ["database", "mode", "msgs", "peak RSS MB", "incl. shutdown"]
    headers += ["MB per 1,000 (2nd half)", "est. at 100,000 MB"]
    headers += ["peak per process: daemon / preparer / tracker"]
    return [
        "Memory: daemon RSS (process tree, sampled every 200 ms; per process: the kernel's "
        "high-water mark); growth measured over the second half of the backlog, "
        "estimate = peak + growth x remaining messages",
        table(headers, rows),
    ]


def _classifier_section(figures: dict[str, Any]) -> list[str]:
    out = [f"Classifier (python -m bench.classifier): {figures.get('status')}"]
    if figures.get("why"):
        out.append(f"  {figures['why']}")
    out += [f"  {line}" for line in figures.get("output", [])[-25:]]
    return out


def render(suite: Suite) -> str:
    """The whole report as text: one table per figure, then the targets."""
    m = suite.machine
    out = [
        f"Candour benchmark, {m['date']}: {m['cores']} cores, {m['memory_gib']} GiB, "
        f"Python {m['python']}, load average at start {m['load_average_at_start']}",
        f"Code measured: {m['code']}",
    ]
    sections = [
        (bool(suite.raw), _raw_section),
        (bool(suite.backlog), _backlog_section),
        (any(r.cpu_account for r in suite.backlog), _cpu_section),
        (bool(suite.latency), _latency_section),
        (bool(suite.mailboxes), _mailboxes_section),
        (bool(suite.backlog), _memory_section),
    ]
    for wanted, section in sections:
        if wanted:
            out += ["", *section(suite)]
    if suite.classifier is not None:
        out += ["", *_classifier_section(suite.classifier)]
    if suite.profile is not None:
        out += ["", render_profile(suite.profile)]
    out += ["", "Targets (reported, never asserted)"]
    out.append(table(["target", "figure", "verdict"], [list(t) for t in targets(suite)]))
    out += [f"note: {n}" for n in suite.notes]
    return "\n".join(out)


def _seconds3(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def render_profile(profile: ProfileResult) -> str:
    """The profiler's three views as tables."""
    hot = [
        [h["function"], h["where"], f"{h['self_seconds']:.2f}", f"{h['percent']:.1f}"]
        for h in profile.hot_spots
    ]
    share = profile.seconds or 1.0
    stages = [[s, f"{t:.2f}", f"{100 * t / share:.1f}"] for s, t in profile.stages.items()]
    packages = [
        [p, f"{t:.2f}", f"{100 * t / share:.1f}"] for p, t in list(profile.packages.items())[:12]
    ]
    return "\n".join(
        [
            f"Profile: run_once over {profile.messages:,} messages in-process, "
            f"{profile.seconds} s ({profile.rate}/s under the profiler); {profile.html}",
            "",
            "Top 15 hot spots (self time)",
            table(["function", "where", "self s", "%"], hot),
            "",
            "Time by stage (inclusive; 'of which' rows are part of the row above)",
            table(["stage", "seconds", "% of run"], stages),
            "",
            "Self time by package (top 12)",
            table(["package", "seconds", "% of run"], packages),
        ]
    )
