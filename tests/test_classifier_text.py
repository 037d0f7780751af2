"""Text preparation: the classifier reads what the sender wrote, and nothing here crashes."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifiers.text import MAX_CHARS, model_text, remove_disclaimers, scrub_contacts, sender_text
from daemon.mail.parse import ParseError, parse_message


def test_quoted_history_is_dropped() -> None:
    body = (
        "The repair still has not been done and I want a manager to call me.\n\n"
        "On Tue, 3 Mar 2026 at 10:02, Housing Team <housing@example.org> wrote:\n"
        "> Dear Mr Hale,\n> Thank you for contacting us. A surveyor will visit.\n"
    )
    text = sender_text(body)
    assert "manager to call me" in text
    assert "surveyor will visit" not in text
    assert "housing@example.org" not in text


def test_outlook_original_message_block_is_dropped() -> None:
    body = (
        "Please escalate this to stage 2.\n\n-----Original Message-----\n"
        "From: Complaints <complaints@example.org>\nSent: 28 February 2026 15:41\n"
        "To: Karen\nSubject: RE: Elm Ward\n\nFollowing our investigation we are satisfied.\n"
    )
    text = sender_text(body)
    assert "escalate this to stage 2" in text
    assert "we are satisfied" not in text


def test_sign_off_is_dropped() -> None:
    text = sender_text("The nurse was rude to my father on Ward 3.\n\nKind regards,\nJanet Oduya")
    assert "rude to my father" in text
    assert "Janet Oduya" not in text


def test_phone_footer_at_the_top_does_not_swallow_the_message() -> None:
    disclosure = (
        "he came back last night even though he is banned from the house and he said he "
        "would hurt me if I told anyone, the children were upstairs and I am scared to go "
        "to sleep tonight because I do not know what he will do next"
    )
    assert disclosure in sender_text(f"Sent from my iPhone\n\n{disclosure}")


def test_a_bare_forward_yields_the_forwarded_text() -> None:
    body = (
        "---------- Forwarded message ---------\nFrom: Tom <tom@example.net>\n"
        "Date: Mon, 9 Mar 2026 at 21:14\nSubject: Discharge letter\nTo: Sarah <s@example.net>\n\n"
        "Sarah, the discharge letter they sent Dad is wrong about his mobility.\n"
    )
    assert "discharge letter they sent Dad is wrong" in sender_text(body)


def test_disclaimer_paragraph_is_dropped_but_a_plea_for_confidentiality_is_kept() -> None:
    body = (
        "Please keep this confidential, I am frightened of what my manager will do.\n\n"
        "This email and any attachments are confidential and intended solely for the "
        "addressee. If you have received it in error please notify the sender and delete it."
    )
    text = remove_disclaimers(body)
    assert "keep this confidential" in text
    assert "intended solely for the addressee" not in text


def test_model_text_starts_with_the_subject() -> None:
    assert model_text("Missed bin collection", "Third week running.").startswith(
        "Missed bin collection"
    )


@pytest.mark.parametrize(
    "body",
    ["", "   \n\t ", "\x00\ufeff\u200b", "Dzień dobry, chciałbym złożyć skargę.", "東京" * 50],
)
def test_odd_input_never_crashes(body: str) -> None:
    assert isinstance(sender_text(body), str)


def test_huge_input_is_capped_and_quick() -> None:
    started = time.perf_counter()
    text = sender_text("The ward was dirty and nobody came. " * 200_000)
    assert len(text) <= MAX_CHARS
    assert time.perf_counter() - started < 2.0


@settings(max_examples=150)
@given(st.text(max_size=3000))
def test_any_text_is_prepared_without_error(body: str) -> None:
    prepared = sender_text(body)
    assert isinstance(prepared, str)
    assert len(prepared) <= MAX_CHARS


def test_real_world_corpus_is_prepared_without_error(corpus: Path) -> None:
    files = [
        p
        for p in (corpus / "public").rglob("*")
        if p.is_file() and p.suffix in {".eml", ".txt", ""}
    ]
    prepared = 0
    for path in files:
        try:
            parsed = parse_message(path.read_bytes())
        except ParseError:
            continue
        assert isinstance(model_text(parsed.subject, parsed.text), str)
        prepared += 1
    assert prepared > 100


_DIGIT_RUN = re.compile(r"\d")


@st.composite
def uk_phone_numbers(draw: st.DrawFn) -> str:
    """UK numbers as people write them: +44 / 0044 / 0 prefixes, spaces, dashes, brackets."""
    area = draw(st.sampled_from(["7700", "20", "1632", "113", "800", "1234"]))
    rest = draw(st.text(alphabet="0123456789", min_size=10 - len(area), max_size=10 - len(area)))
    prefix = draw(st.sampled_from(["0", "+44 ", "+44 (0)", "0044 ", "(0"]))
    separator = draw(st.sampled_from(["", " ", "-", "."]))
    closing = ")" if prefix == "(0" else ""
    middle = len(rest) // 2
    return f"{prefix}{area}{closing}{separator}{rest[:middle]}{separator}{rest[middle:]}"


@settings(max_examples=200)
@given(st.emails(), uk_phone_numbers(), st.sampled_from(["", "Tel: ", "call me on ", "("]))
def test_scrubbing_removes_every_address_and_phone_number(
    address: str, phone: str, lead: str
) -> None:
    text = f"Please write to {address} or {lead}{phone} about my complaint."
    scrubbed = scrub_contacts(text)
    assert "@" not in scrubbed
    digits = "".join(_DIGIT_RUN.findall(phone))
    assert digits[-6:] not in "".join(_DIGIT_RUN.findall(scrubbed))
    assert "about my complaint" in scrubbed


def test_scrubbing_keeps_case_references_and_dates() -> None:
    text = "Ref CMP-2026-00123, seen on 12/03/2026 at 10.30."
    assert scrub_contacts(text) == text


@pytest.mark.parametrize(
    "obfuscated", ["jo [at] example [dot] org", "jo.bloggs at example dot co dot uk"]
)
def test_scrubbing_removes_obfuscated_addresses(obfuscated: str) -> None:
    assert "example" not in scrub_contacts(f"Email {obfuscated} please")
