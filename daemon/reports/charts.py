"""The report's charts as inline SVG (matplotlib, drawn off-screen): what a trustee would
rather look at than read. Each function takes the report's plain data and returns an
`<svg>` element's text, or "" when there is nothing to draw."""

from __future__ import annotations

import io
from typing import Any

GREEN, AMBER, GREY = "#1b7f5c", "#c77c02", "#8a8f98"
PALETTE = ("#2f5d8a", "#1b7f5c", "#c77c02", "#8e3b8f", "#b3261e", "#5b6770")


def _svg(figure: Any) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    text = out.getvalue()
    return text[text.index("<svg") :]


def _figure(width: float = 6.4, height: float = 3.0) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: readable, searchable
    matplotlib.rcParams["font.size"] = 9
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(width, height))
    axes.spines[["top", "right"]].set_visible(False)
    return figure, axes


def volume(by_month_label: dict[str, dict[str, int]]) -> str:
    """Cases received each month, stacked by label."""
    if not by_month_label:
        return ""
    months = sorted(by_month_label)
    labels = sorted({label for row in by_month_label.values() for label in row})
    figure, axes = _figure()
    bottom = [0] * len(months)
    for n, label in enumerate(labels):
        values = [by_month_label[m].get(label, 0) for m in months]
        axes.bar(months, values, bottom=bottom, label=label, color=PALETTE[n % len(PALETTE)])
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axes.set_title("Cases received by month")
    axes.legend(frameon=False, fontsize=8, ncols=3)
    return _svg(figure)


def on_time(rows: list[tuple[str, float | None]], target: float) -> str:
    """Percentage on time for acknowledgements and each stage, against the target."""
    rows = [(name, value) for name, value in rows if value is not None]
    if not rows:
        return ""
    figure, axes = _figure(height=2.4)
    names = [name for name, _ in rows]
    values = [value or 0.0 for _, value in rows]
    colours = [GREEN if value >= target else AMBER for value in values]
    bars = axes.barh(names, values, color=colours)
    axes.bar_label(bars, labels=[f"{v:g}%" for v in values], padding=3)
    axes.axvline(target, color=GREY, linestyle="--", linewidth=1)
    axes.set_xlim(0, 100)
    axes.set_title(f"On time (%), target {target:g}%")
    axes.invert_yaxis()
    return _svg(figure)


def counts(title: str, values: dict[str, int]) -> str:
    """A horizontal bar per item (outcomes, themes), largest first."""
    if not values:
        return ""
    items = sorted(values.items(), key=lambda item: -item[1])
    figure, axes = _figure(height=0.45 * len(items) + 0.8)
    bars = axes.barh([k for k, _ in items], [v for _, v in items], color=PALETTE[0])
    axes.bar_label(bars, padding=3)
    axes.set_title(title)
    axes.invert_yaxis()
    return _svg(figure)
