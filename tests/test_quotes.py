"""The linear reply patterns find what mail-parser-reply's own find, on real and generated mail."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mailparser_reply.parser import EmailMessage

from classifiers.quotes import ReplyReader
from classifiers.train import packaged_data, read_examples
from daemon.mail.parse import ParseError, parse_message
from tests.conftest import CORPUS, corpus_catalog, need_corpus


def _library(text: str, keep_hyphen_lists: bool) -> list[tuple[str, str, str]]:
    message = EmailMessage(text=text, languages=["en"], keep_hyphen_lists=keep_hyphen_lists)
    return [(r.content, r.headers or "", r.signatures or "") for r in message.read().replies]


def _ours(text: str, keep_hyphen_lists: bool) -> list[tuple[str, str, str]]:
    message = ReplyReader(["en"], keep_hyphen_lists=keep_hyphen_lists).read(text)
    return [(r.content, r.headers or "", r.signatures or "") for r in message.replies]


def _corpus_bodies() -> list[str]:
    """The text of every message in the shared corpus's catalogue that parses."""
    if not CORPUS.exists():
        return []
    bodies = []
    for path, _ in corpus_catalog():
        try:
            text = parse_message(path.read_bytes()).text
        except ParseError:
            continue
        if len(text) <= 20_000:  # the library's own patterns are slow beyond that
            bodies.append(text)
    return bodies


def _real_bodies() -> list[str]:
    return [e.body for e in read_examples(packaged_data("train"))] + _corpus_bodies()


def test_the_corpus_is_read() -> None:
    need_corpus()
    assert len(_corpus_bodies()) > 350  # of 389: a few do not parse or are over 20,000


@pytest.mark.parametrize("keep_hyphen_lists", [True, False])
def test_real_mail_splits_exactly_as_the_library_splits_it(keep_hyphen_lists: bool) -> None:
    bodies = _real_bodies()
    assert len(bodies) > 1_500
    differ = [
        text[:80]
        for text in bodies
        if _ours(text, keep_hyphen_lists) != _library(text, keep_hyphen_lists)
    ]
    assert differ == []


# Lines that start or end replies, signatures and quotes, and ordinary prose between them.
LINES = [
    "",
    " ",
    ">",
    "> ",
    "> > quoted words",
    "I waited three hours.",
    "- a list item",
    "-- ",
    "--",
    "__",
    "_" * 40,
    "-" * 34,
    "On Mon, 3 Feb 2025 at 10:00, Jo Bloggs <jo@example.net> wrote:",
    "On Mon, 3 Feb 2025 at 10:00, Jo Bloggs",
    "<jo@example.net> wrote:",
    "> On Tue, 4 Feb 2025, Complaints wrote:",
    "On On Monday wrote:",
    "From: Complaints <complaints@example.org>",
    "Sent: 03 February 2025 10:00",
    "To: Jo",
    "Subject: RE: my complaint",
    "-----Original Message-----",
    "Sent from my iPhone",
    "Get Outlook for Android",
    "Kind regards,",
    "Thanks,",
    "Best regards",
]


@settings(max_examples=400)
@given(
    lines=st.lists(st.sampled_from(LINES), max_size=14),
    keep_hyphen_lists=st.booleans(),
)
def test_generated_mail_splits_exactly_as_the_library_splits_it(
    lines: list[str], keep_hyphen_lists: bool
) -> None:
    text = "\n".join(lines)
    assert _ours(text, keep_hyphen_lists) == _library(text, keep_hyphen_lists)


def test_a_wrapped_wrote_header_is_still_a_header() -> None:
    text = (
        "Please escalate this.\n\nOn Mon, 3 Feb 2025 at 10:00, Complaints\n"
        "<complaints@example.org> wrote:\n> We are sorry to hear that.\n"
    )
    replies = ReplyReader(["en"], keep_hyphen_lists=True).read(text).replies
    assert replies[0].body == "Please escalate this."
    assert "We are sorry" in replies[1].content
