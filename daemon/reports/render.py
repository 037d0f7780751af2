"""A report (daemon.reports.report) written out: JSON (stable keys, for other tools), CSV
(one row per figure, for a spreadsheet) or HTML (one file, charts inline, for a board)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

FORMATS = ("json", "csv", "html")


def as_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False) + "\n"


def _rows(prefix: str, value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _rows(f"{prefix}.{key}" if prefix else str(key), inner)
    elif isinstance(value, list):
        for index, inner in enumerate(value, start=1):
            yield from _rows(f"{prefix}.{index}", inner)
    else:
        yield prefix, "" if value is None else str(value)


def as_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("figure", "value"))
    for name, value in _rows("", report):
        if isinstance(value, str) and value[:1] in "=+-@" and not _number(value):
            value = "'" + value  # never a formula in a spreadsheet
        writer.writerow((name, value))
    return out.getvalue()


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def render(report: dict[str, Any], form: str, title: str = "", made: str = "") -> str:
    if form == "html":
        return as_html(report, title or "Complaints report", made)
    return as_json(report) if form == "json" else as_csv(report)


TARGET_PERCENT = 95.0  # the on-time target drawn on the chart


def _delta(value: float | None, unit: str = "") -> str:
    if value is None or value == 0:
        return "no change" if value == 0 else ""
    sign = "+" if value > 0 else "−"
    return f"{sign}{abs(value):g}{' ' + unit if unit else ''} on the previous period"


def last_day(end: str) -> str:
    """The period's last day: its end is the next day's first moment."""
    from datetime import datetime, timedelta

    return (datetime.fromisoformat(end) - timedelta(days=1)).date().isoformat()


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:g}%"


def as_html(report: dict[str, Any], title: str, made: str) -> str:
    """One self-contained HTML file: the charts inline as SVG, readable on a phone and in
    print (daemon/reports/report.html)."""
    from importlib.resources import files

    from jinja2 import Environment, select_autoescape

    from daemon.reports import charts

    stages = [(f"Stage {s['stage']}", s["on_time_percent"]) for s in report["stages"]]
    drawn = {
        "volume": charts.volume(report["cases"]["by_month_label"]),
        "on_time": charts.on_time(
            [("Acknowledgement", report["acknowledgements"]["on_time_percent"]), *stages],
            TARGET_PERCENT,
        ),
        "outcomes": charts.counts("Outcomes", report["outcomes"]),
        "themes": charts.counts(
            "Themes (complaints)",
            {", ".join(t["terms"][:3]): t["count"] for t in report["themes"]},
        ),
    }
    environment = Environment(autoescape=select_autoescape(default=True))
    template = environment.from_string(
        (files("daemon.reports") / "report.html").read_text(encoding="utf-8")
    )
    period, previous = report["period"], report["previous"]["period"]
    return template.render(
        r=report,
        charts=drawn,
        title=title,
        start=period["from"][:10],
        end=last_day(period["to"]),
        previous_start=previous["from"][:10],
        previous_end=last_day(previous["to"]),
        made=made,
        delta=_delta,
        pct=_pct,
    )


def as_pdf(html: str) -> bytes:
    """The HTML report as PDF (WeasyPrint: the charts stay vectors)."""
    import logging
    import warnings

    logging.getLogger("weasyprint").setLevel(logging.ERROR)  # font-fallback chatter
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        # "HarfBuzz-Subset will be required by future versions": fonts are subset without it
        warnings.simplefilter("ignore", DeprecationWarning)
        from weasyprint import HTML

        return bytes(HTML(string=html).write_pdf())
