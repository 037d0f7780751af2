"""Board reports (issue 22): the figures from facts, purely; the themes; and end to end, a
mailbox seeded through the real daemon over several months, reported as JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from PIL import Image

from classifiers.themes import themes
from daemon.reports import figures
from daemon.reports.board import last_period
from models.reporting import CaseFacts, StageRun
from tests.conftest import Setup, make_mail
from tests.test_staff_loop import ROUTES, _body, _configure, _msg, _run

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def _facts(n: int, **fields: object) -> CaseFacts:
    base: dict[str, object] = {
        "case_id": n,
        "reference": f"CMP-2026-{n:05d}",
        "label": "complaint",
        "channel": "email",
        "flags": (),
        "route": "team@example.org",
        "status": "in_stage",
        "received_at": NOW - 20 * DAY,
        "ack_due_at": NOW - 19 * DAY,
        "acknowledged_at": NOW - 20 * DAY,
        "no_ack_reason": None,
        "automatic_reply": "acknowledgement",
        "outcome": None,
        "closed_at": None,
        "stage": 1,
        "stage_due_at": NOW - 6 * DAY,
        "stages": (),
    }
    base.update(fields)
    return CaseFacts(**base)  # type: ignore[arg-type]


def test_acknowledgements_on_time_late_and_pending() -> None:
    facts = [
        _facts(1),  # on time
        _facts(2, acknowledged_at=NOW - 18 * DAY),  # late
        _facts(3, acknowledged_at=None),  # never sent, past due: late
        _facts(4, acknowledged_at=None, ack_due_at=NOW + DAY),  # pending
        _facts(5, acknowledged_at=None, no_ack_reason="automatic"),  # none owed
    ]
    assert figures.acknowledgements(facts, NOW) == {
        "due": 4,
        "on_time": 1,
        "late": 2,
        "pending": 1,
        "on_time_percent": 33.3,
    }


def test_stage_responses_and_median_working_days() -> None:
    start = NOW - 30 * DAY

    def run(stage: int, days: int | None, due_in: int = 14) -> StageRun:
        answered = start + days * DAY if days is not None else None
        return StageRun(stage, start, start + due_in * DAY, answered)

    facts = [
        _facts(1, stages=(run(1, 5),)),
        _facts(2, stages=(run(1, 20),)),  # late
        _facts(3, stages=(run(1, None),)),  # unanswered past due: late
        _facts(4, stages=(run(1, 7), run(2, None, due_in=60))),  # stage 2 not yet due
    ]
    stages = figures.stages(facts, NOW, lambda a, b: (b - a).days)
    assert stages == [
        {
            "stage": 1,
            "due": 4,
            "on_time": 2,
            "late": 2,
            "on_time_percent": 50.0,
            "median_working_days": 7,
        },
        {
            "stage": 2,
            "due": 1,
            "on_time": 0,
            "late": 0,
            "on_time_percent": None,
            "median_working_days": None,
        },
    ]
    assert figures.escalations(facts) == 1


def test_outcomes_referrals_and_flags_are_counts() -> None:
    facts = [
        _facts(1, outcome="upheld", flags=("safeguarding",)),
        _facts(2, outcome="upheld", flags=("restricted", "repeat_contact")),
        _facts(3, label="data_protection", automatic_reply="signpost", route="dpo@x.org"),
        _facts(4, label="hr", automatic_reply="acknowledgement"),  # not signposted
    ]
    assert figures.outcomes(facts) == {"upheld": 2}
    assert figures.referrals(facts) == {"data_protection -> dpo@x.org": 1}
    assert figures.flags(facts)["safeguarding"] == 1
    assert figures.flags(facts)["restricted"] == 1


TOPICS = {
    "parking": "The hospital car park charges are too high and the parking machines were "
    "broken again, so I got a parking fine while visiting my father.",
    "food": "The food on the ward was cold and my mother was given meals she cannot eat "
    "because of her diabetes; nobody checked her diet.",
    "waiting": "We waited six hours in the emergency department waiting room and nobody "
    "told us why the waiting time was so long.",
}


def test_themes_find_what_complaints_are_about_without_names() -> None:
    texts = [
        f"{TOPICS[topic]} Regards, {name} Smith, 07700 900{n:03d}"
        for n, (topic, name) in enumerate(
            (t, n) for t in TOPICS for n in ("Alice", "Bob", "Chen", "Dee", "Eve", "Fay", "Gus")
        )
    ]
    found = themes(texts)
    words = {term for theme in found for term in theme.terms}
    assert {"parking", "food", "waiting"} <= words
    assert not words & {"alice", "bob", "chen", "smith"}  # names are no theme
    assert sum(len(theme.members) for theme in found) == len(texts)


THANKS = (
    "Thank you to the staff on the children's ward, who were kind and patient with us all week."
)
SEEDED = {3: 60, 4: 80, 5: 100}  # messages a month: a few hundred over three months


def _seed_months(setup: Setup) -> tuple[Counter[str], Counter[str]]:
    """Complaints on the three topics and some thanks, spread over the months; returns
    (messages by month, complaints by month)."""
    months: Counter[str] = Counter()
    complaints: Counter[str] = Counter()
    client = setup.imap()
    try:
        for month, count in SEEDED.items():
            for n in range(count):
                thanks = n % 10 == 9
                topic = list(TOPICS)[n % 3]
                when = datetime(2026, month, 1 + n % 27, 9 + n % 8, tzinfo=UTC)
                sender = f"Person {month}-{n} <person{month}.{n}@example.net>"
                subject = "Thank you" if thanks else f"Complaint about {topic}"
                body = THANKS if thanks else TOPICS[topic]
                raw = make_mail(sender=sender, subject=subject, body=body)[0]
                client.append("INBOX", raw, msg_time=when)
                months[f"2026-{month:02d}"] += 1
                complaints[f"2026-{month:02d}"] += not thanks
    finally:
        client.logout()
    return months, complaints


def test_a_seeded_mailbox_reports_its_figures(setup: Setup) -> None:
    _configure(setup)
    months, complaints = _seed_months(setup)
    _run(setup)
    out = setup.cli(
        "report", "--from", "2026-04-01", "--to", "2026-05-31", "--format", "json"
    ).stdout
    report = json.loads(out)
    total = months["2026-04"] + months["2026-05"]
    complained = complaints["2026-04"] + complaints["2026-05"]
    assert report["period"]["from"].startswith("2026-04-01T00:00")
    assert report["cases"]["total"] == total
    assert report["cases"]["by_month"] == {
        "2026-04": months["2026-04"],
        "2026-05": months["2026-05"],
    }
    assert report["cases"]["by_channel"] == {"email": total}
    assert sum(report["cases"]["by_label"].values()) == total
    assert report["cases"]["by_label"]["complaint"] >= complained  # none left the process
    assert report["previous"]["cases"]["total"] == months["2026-03"]
    assert report["change"]["cases"] == total - months["2026-03"]
    [stage1] = report["stages"]
    assert stage1["due"] == report["cases"]["by_label"]["complaint"]
    terms = {term for theme in report["themes"] for term in theme["terms"]}
    assert {"parking", "food", "waiting"} <= terms
    assert sum(t["count"] for t in report["themes"]) == report["cases"]["by_label"]["complaint"]
    assert "example.net" not in out
    table = setup.cli("report", "--from", "2026-04-01", "--to", "2026-05-31", "--format", "csv")
    rows = dict(csv.reader(io.StringIO(table.stdout)))
    assert rows["cases.total"] == str(total)
    assert rows["cases.by_month.2026-05"] == str(months["2026-05"])
    page = setup.config_path.parent / "report.html"
    setup.cli(
        "report",
        "--from",
        "2026-04-01",
        "--to",
        "2026-05-31",
        "--format",
        "html",
        "--output",
        str(page),
    )
    html = page.read_text()
    assert html.count("<svg") >= 3  # volume, on time, themes
    assert "Cases received by month" in html  # the chart's text stays text
    assert "example.net" not in html
    HTMLParser().feed(html)
    pdf = setup.config_path.parent / "report.pdf"
    setup.cli(
        "report",
        "--from",
        "2026-04-01",
        "--to",
        "2026-05-31",
        "--format",
        "pdf",
        "--output",
        str(pdf),
    )
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert data.rstrip().endswith(b"%%EOF")
    pages = _pdf_pages(pdf)
    assert len(pages) >= 2  # the whole report, over pages
    assert all(_inked(page) > 0.01 for page in pages)
    shot = _screenshot(page)
    blank = _screenshot(_blank(setup.config_path.parent))
    assert _inked(shot) > 0.05  # text and charts drawn
    assert _coloured(shot) > 0.01  # the bars' colours: the SVG charts rendered
    assert _coloured(blank) == 0.0


def _blank(folder: Path) -> Path:
    page = folder / "blank.html"
    page.write_text("<!doctype html><html><body></body></html>")
    return page


def _screenshot(page: Path) -> Path:
    """The page as headless Chromium draws it, phone-wide."""
    out = page.with_suffix(".png")
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--screenshot={out}",
            "--window-size=420,2400",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out


def _pdf_pages(pdf: Path) -> list[Path]:
    subprocess.run(
        ["pdftoppm", "-r", "40", "-png", str(pdf), str(pdf.with_suffix(""))],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return sorted(pdf.parent.glob(pdf.stem + "-*.png"))


def _pixels(png: Path) -> np.ndarray:
    with Image.open(png) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16).reshape(-1, 3)


def _inked(png: Path) -> float:
    """The share of pixels that are not (near) white."""
    return float((_pixels(png).min(axis=1) < 235).mean())


def _coloured(png: Path) -> float:
    """The share of pixels with a clear colour (not grey): chart bars."""
    pixels = _pixels(png)
    return float((pixels.max(axis=1) - pixels.min(axis=1) > 60).mean())


def test_the_board_period_is_the_last_whole_month_or_quarter() -> None:
    zone = ZoneInfo("Europe/London")
    q = last_period(date(2026, 1, 5), "quarter", zone)
    assert (q.start.date(), q.end.date()) == (date(2025, 10, 1), date(2026, 1, 1))
    m = last_period(date(2026, 3, 31), "month", zone)
    assert (m.start.date(), m.end.date()) == (date(2026, 2, 1), date(2026, 3, 1))
    assert last_period(date(2026, 5, 1), "quarter", zone).start.date() == date(2026, 1, 1)


def test_the_board_gets_last_months_report_once(setup: Setup) -> None:
    _configure(
        setup, ROUTES + '[mailbox.board_reports]\nto = ["board@example.org"]\nevery = "month"\n'
    )
    first_of_month = datetime.now(UTC).replace(day=1, hour=12)
    for n in range(3):
        when = first_of_month - timedelta(days=3 + n)
        raw = make_mail(sender=f"P <p{n}@example.net>", subject="Parking", body=TOPICS["parking"])[
            0
        ]
        setup.append(raw, when=when)
    _run(setup)
    _run(setup)  # and again: no second report
    [mail] = [m for m in setup.outgoing() if "board@example.org" in m.rcpt_tos]
    message = _msg(mail)
    assert "Cases received: 3" in _body(message)
    names = sorted(str(p.get_filename()) for p in message.walk() if p.get_filename())
    assert [n.rsplit(".", 1)[1] for n in names] == ["html", "pdf"]
    assert b"example.net" not in mail.data
