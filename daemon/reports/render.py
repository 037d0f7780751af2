"""A report (daemon.reports.report) written out: JSON (stable keys, for other tools) or CSV
(one row per figure: section, key, value; for a spreadsheet)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

FORMATS = ("json", "csv")


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


def render(report: dict[str, Any], form: str) -> str:
    return as_json(report) if form == "json" else as_csv(report)
