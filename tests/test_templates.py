"""Reply templates: overrides, the package fallback, and edits taking effect while running."""

from __future__ import annotations

from pathlib import Path

import pytest

from replies import templates
from replies.templates import TemplateProblem, Templates


def test_an_override_replaces_the_package_template_and_others_fall_back(tmp_path: Path) -> None:
    (tmp_path / "thanks.txt").write_text("Subject: Ta {{ reference }}\n\nCheers.\n")
    rendered = Templates(tmp_path)
    assert rendered.render("thanks", {"reference": "FB-1"}) == ("Ta FB-1", "Cheers.\n")
    subject, body = rendered.render(
        "acknowledgement",
        {
            "reference": "CMP-1",
            "name": "Pat",
            "organisation": "Example Trust",
            "original_subject": "Broken boiler",
            "received": "Monday 2 March 2026",
        },
    )
    assert subject == "We have received your message [CMP-1]"
    assert body.startswith("Dear Pat,")


def test_an_edited_override_takes_effect_after_the_recheck_interval(tmp_path: Path) -> None:
    clock = [1000.0]
    override = tmp_path / "thanks.txt"
    override.write_text("Subject: One\n\nfirst\n")
    rendered = Templates(tmp_path, monotonic=lambda: clock[0])
    assert rendered.render("thanks", {}) == ("One", "first\n")
    override.write_text("Subject: Two\n\nsecond, longer\n")
    clock[0] += templates.RECHECK_SECONDS / 2
    assert rendered.render("thanks", {}) == ("One", "first\n")  # not checked yet
    clock[0] += templates.RECHECK_SECONDS
    assert rendered.render("thanks", {}) == ("Two", "second, longer\n")


def test_a_template_without_a_subject_line_is_a_clear_problem(tmp_path: Path) -> None:
    (tmp_path / "thanks.txt").write_text("Hello {{ reference }}\n")
    with pytest.raises(TemplateProblem, match=r"must start with 'Subject: \.\.\.'"):
        Templates(tmp_path).render("thanks", {"reference": "FB-1"})
