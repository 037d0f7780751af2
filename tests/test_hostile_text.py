"""Text steps fed what used to make their patterns backtrack still give the right answers.

The speed on such input is measured by bench/adversarial.py; these check the behaviour the
linear rewrites must keep (an unclosed tag, endless quote markers, one endless clause).
"""

from __future__ import annotations

from dataclasses import replace

from classifiers.text import scrub_contacts, sender_text
from daemon.casework.correspondence import staff_text
from daemon.casework.escalation import MAX_CHARS as ESCALATION_CHARS
from daemon.casework.escalation import asks_for_escalation
from daemon.casework.pseudonyms import scrub
from daemon.mail.parse import html_to_text, parse_message
from tests.conftest import make_mail


def test_script_and_style_elements_are_dropped_and_their_neighbours_kept() -> None:
    html = (
        "<p>Before</p><script type='x'>var a = '<b>';</script><p>Middle</p>"
        "<STYLE>p {color: red}</style ><p>After</p>"
    )
    assert html_to_text(html).split() == ["Before", "Middle", "After"]


def test_an_unclosed_script_leaves_the_text_after_it_readable() -> None:
    html = "<p>My complaint</p><script>broken<p>The care home ignored me</p>"
    text = html_to_text(html)
    assert "My complaint" in text
    assert "The care home ignored me" in text


def test_stray_angle_brackets_do_not_hide_the_words_after_them() -> None:
    text = html_to_text("<p>Waited 3 < 4 hours <a <b>for a reply</b></p>")
    assert "for a reply" in text
    assert "Waited 3" in text


def _staff_message(text: str) -> str:
    parsed = parse_message(make_mail(sender="Staff <staff@example.org>")[0])
    return staff_text(replace(parsed, text=text))


def test_staff_text_cuts_our_quote_with_the_empty_quote_lines_above_it() -> None:
    text = "We have called the ward. ->\n>\n> \n>\n> Case CMP-2026-00012: Complaint about care"
    assert _staff_message(text) == "We have called the ward. ->"


def test_staff_text_of_endless_quote_markers_is_read_in_full() -> None:
    text = "Thanks for waiting.\n" + ">\n" * 50_000
    assert _staff_message(text).startswith("Thanks for waiting.")


def test_one_endless_clause_of_requests_is_a_request() -> None:
    assert asks_for_escalation("escalate " * 20_000)
    assert not asks_for_escalation("please escalate " * 1_000 + " I do not want this escalated")


def test_only_the_start_of_a_very_long_reply_is_read_for_a_request() -> None:
    padding = "My father waited. " * (ESCALATION_CHARS // 18 + 1)
    assert asks_for_escalation("I want this escalated. " + padding)
    assert not asks_for_escalation(padding + "I want this escalated.")


def test_a_refusal_far_back_in_an_endless_clause_no_longer_governs_a_later_request() -> None:
    # A clause is read back at most a few hundred characters from its trigger.
    filler = " ".join(["word"] * 200)
    assert asks_for_escalation(f"I do not {filler} escalate")
    assert not asks_for_escalation("I do not want this escalated")


def test_twenty_thousand_blank_lines_still_yield_the_sender_words() -> None:
    body = "My bin was not collected.\n" + "\n" * 20_000 + "Kind regards,\nJo"
    assert sender_text(body) == "My bin was not collected."


def test_addresses_inside_long_runs_of_word_characters_are_still_found() -> None:
    long_word = "x" * 5_000
    assert "@" not in scrub_contacts(f"{long_word} mail jo.bloggs@example.net now")
    clean = scrub(
        f"{long_word} write to jo.bloggs@example.net", address="jo@example.net", display_name="Jo"
    )
    assert "jo.bloggs@example.net" not in clean
    assert long_word in clean


def test_html_lists_tables_and_links_stay_readable() -> None:
    html = (
        "<p>I was told:</p><ul><li>wait 3 hours</li><li>come back tomorrow</li></ul>"
        "<table><tr><td>Date</td><td>12 May</td></tr></table>"
        "<p>See <a href='https://x.example/letter.pdf'>your letter</a>.</p>"
    )
    text = html_to_text(html)
    assert "  * wait 3 hours\n  * come back tomorrow" in text
    assert "Date  12 May" in text
    assert "[your letter](https://x.example/letter.pdf)" in text


def test_html_nested_deeper_than_the_parser_reads_keeps_its_words() -> None:
    html = "<div>" * 20_000 + "the words inside" + "</div>" * 20_000
    assert "the words inside" in html_to_text(html)
