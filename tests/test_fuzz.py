"""Fuzzing, short form: real messages damaged (fuzz.mutations) and run through the daemon's
stages (fuzz.harness): parse, automatic mail, classify with the shipped model, thread keys,
acknowledgement. Nothing escapes the per-message boundary, every acknowledgement is valid
mail to the sender alone, and time grows linearly with size. `make fuzz` is the long form.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classifiers.config import ClassifierConfig
from classifiers.loader import load_classifier
from daemon.mail.automatic import automatic_reason
from daemon.mail.parse import parse_message
from fuzz import mutations as m
from fuzz.checks import problems_in
from fuzz.growth import SHAPES, growth
from fuzz.harness import MAILBOX, SECRET, Harness
from fuzz.strategies import mutants
from replies.addresses import case_address

# What an outcome may say: fixed words and header keywords, no addresses, nothing long.
REASON = re.compile(r"[a-z]+(:[a-z0-9_-]{1,40}(:[a-z0-9_-]{1,40})?)?")
COMMITTED = [(name, raw) for name, raw in m.seeds() if name.startswith("seeds/")]
SHORT = settings(
    max_examples=120,
    derandomize=True,  # the same examples every run: CI stays stable
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Harness:
    state = tmp_path_factory.mktemp("fuzz-state")
    ready = Harness(load_classifier(state, ClassifierConfig()))  # the shipped model
    ready.warm([raw for _, raw in COMMITTED])
    return ready


def test_there_are_committed_seeds_so_the_fuzz_never_skips() -> None:
    assert len(COMMITTED) >= 5


@pytest.mark.parametrize(("name", "raw"), COMMITTED, ids=[n for n, _ in COMMITTED])
def test_each_seed_is_acknowledged_and_the_reply_is_valid(
    harness: Harness, name: str, raw: bytes
) -> None:
    run = harness.process(raw)
    assert run.outcome == "acknowledged"
    assert run.reply is not None
    assert run.problems == ()


FOUND = sorted(Path(__file__).parent.joinpath("mail", "fuzz").glob("*.eml"))


@pytest.mark.parametrize("path", FOUND, ids=[p.name for p in FOUND])
def test_what_the_fuzz_found_is_answered_validly(harness: Harness, path: Path) -> None:
    """Each message the long run found a fault with (tests/mail/fuzz/README.md), fixed."""
    run = harness.process(path.read_bytes())
    assert run.outcome == "acknowledged"
    assert run.problems == ()


@SHORT
@given(mutants(m.seeds(), scale=20_000))
def test_damaged_messages_stay_inside_the_boundary_and_replies_are_valid(
    harness: Harness, mutant: m.Mutant
) -> None:
    run = harness.process(mutant.raw)  # raises Escaped if an exception leaves the boundary
    assert run.problems == ()
    assert (run.reply is not None) == (run.outcome == "acknowledged")
    assert REASON.fullmatch(run.outcome), "outcomes are stored and logged: no stranger's text"


@settings(max_examples=200, derandomize=True, database=None)
@given(st.text(max_size=300))
def test_the_auto_submitted_reason_is_a_keyword_never_the_header_text(value: str) -> None:
    raw = b"From: a@example.net\r\nAuto-Submitted: " + value.encode("utf-8", "replace")
    message = parse_message(raw + b"\r\nSubject: x\r\n\r\nHello\r\n")
    reason = automatic_reason(message, frozenset({"complaints@example.org"}))
    assert reason is None or REASON.fullmatch(f"automatic:{reason}")


@pytest.mark.parametrize("header", ["Subject", "From", "Reply-To", "To", "Message-ID"])
@pytest.mark.parametrize("charset", ["utf-8", "iso-8859-1", "utf-16"])
@pytest.mark.parametrize("shape", range(4))
def test_line_breaks_in_encoded_words_never_reach_the_reply(
    harness: Harness, header: str, charset: str, shape: int
) -> None:
    [(_, raw)] = [s for s in COMMITTED if s[0] == "seeds/plain.eml"]
    for b_encoding in (False, True):
        mutated = m.injected(header, shape, charset, b_encoding)(m.Message.read(raw))
        run = harness.process(mutated.joined())
        assert run.problems == ()
        if run.reply is not None:
            assert m.INJECTED.encode() not in run.reply.raw.split(b"\r\n\r\n")[0]


@pytest.mark.parametrize("which", range(len(m.ODD_SENDERS)))
def test_odd_senders_are_answered_at_their_own_address_or_not_at_all(
    harness: Harness, which: int
) -> None:
    [(_, raw)] = [s for s in COMMITTED if s[0] == "seeds/plain.eml"]
    run = harness.process(m.odd_sender("From", which)(m.Message.read(raw)).joined())
    assert run.problems == ()


def test_nesting_1000_deep_is_quarantined_or_answered(harness: Harness) -> None:
    # Outside hypothesis, which raises the recursion limit: this is the daemon's limit.
    for raw in (s for n, s in COMMITTED if n in {"seeds/plain.eml", "seeds/attachment.eml"}):
        run = harness.process(m.nested(1000)(m.Message.read(raw)).joined())
        assert run.outcome in {"quarantined:parse", "acknowledged"}
        assert run.problems == ()


def test_the_checks_see_an_injected_header_and_a_wrong_recipient(harness: Harness) -> None:
    """The validity checks are not vacuous: damaged replies fail them."""

    [(_, raw)] = [s for s in COMMITTED if s[0] == "seeds/plain.eml"]
    run = harness.process(raw)
    assert run.reply is not None
    original = parse_message(raw)
    head, _, body = run.reply.raw.partition(b"\r\n\r\n")
    injected = replace(run.reply, raw=head + b"\r\nBcc: x@evil.example\r\n\r\n" + body)
    assert "unexpected-header:bcc" in problems_in(injected, original)
    broken = head.replace(b"Subject: ", b"Subject: a\nb ") + b"\r\n\r\n" + body
    assert "bare-line-break-in-header" in problems_in(replace(run.reply, raw=broken), original)
    elsewhere = replace(run.reply, recipient="someone@else.example")
    assert "to-is-not-the-recipient" in problems_in(elsewhere, original)
    ours = frozenset({run.reply.recipient})
    assert "reply-to-own-address" in problems_in(run.reply, original, ours)
    assert problems_in(run.reply, original) == ()


def test_the_checks_see_a_signed_case_address_so_a_forged_one_would_show(
    harness: Harness,
) -> None:
    [(_, raw)] = [s for s in COMMITTED if s[0] == "seeds/plain.eml"]
    signed = case_address(MAILBOX.address, "CMP-2026-00007", SECRET).encode()
    run = harness.process(m.Message.read(raw).setting("To", signed).joined())
    assert "signed-reference-without-the-secret" in run.problems
    forged = signed.replace(b".", b".x", 1)  # our shape, another token
    assert harness.process(m.Message.read(raw).setting("To", forged).joined()).problems == ()


@pytest.mark.parametrize("shape", SHAPES)
def test_time_grows_linearly_with_size(harness: Harness, shape: str) -> None:
    [(_, raw)] = [s for s in COMMITTED if s[0] == "seeds/plain.eml"]
    ratio = growth(harness, raw, SHAPES[shape], 20_000)
    if ratio >= 15:  # measured again: a machine busy with other work can spoil one sample,
        ratio = min(ratio, growth(harness, raw, SHAPES[shape], 20_000))  # not a quadratic
    assert ratio < 15, f"{shape}: 10x the size took {ratio:.1f}x the time"
