"""Does a complainant's follow-up ask for the next stage? Tables of real-sounding replies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.casework.escalation import asks_for_escalation

ASKS = [
    "I want this escalated.",
    "Please take this to stage 2.",
    "I am not satisfied with your response and wish to take it further.",
    "I would like a review by the chief executive.",
    "I wish to appeal to the board.",
    "I'd like my complaint to be reviewed by a senior manager please.",
    "Can this be escalated please?",
    "I'm unhappy with the outcome so I'd like to go to the next stage.",
    "Because you did not reply to my points I want to escalate this.",
    "Please refer my complaint to the chief executive.",
    "This is not good enough. I am requesting a stage two review.",
    "I want a chief executive's review of this decision.",
    "Thank you for your reply, but I want to take my complaint further.",
    "I don’t accept your findings and I am appealing.",  # a curly apostrophe
    "I WANT THIS ESCALATED TO STAGE 2",
    "Dear Sir\n\nI have read your letter. I would like an independent\nreview.\n\nRegards",
]

DOES_NOT_ASK = [
    "I don't want this escalated.",
    "Please do not escalate this, I am happy with the response.",
    "Thank you, there is no need to take this further.",
    "I have decided not to pursue this further.",
    "I'm not asking for this to be escalated yet.",
    "I won't be appealing.",
    "I would rather not escalate this.",
    "Thank you for escalating my complaint.",
    "What happens if I escalate?",
    "Should I escalate this?",
    "Your stage 2 response was received, thank you.",
    "I am not happy with your response.",  # unhappy, but no request
    "My complaint was escalated last year and nothing changed.",
    "It has been reviewed by the director already.",
    "Thanks for your help, please close the case.",
    "I might take this further if nothing changes.",
    "",
    # The request is only in the text quoted from our own reply.
    "Thanks.\n\n> If you are not satisfied you can ask for a review by the chief executive.",
    "Noted.\n\nOn Mon, 2 Mar 2026 at 10:00, Complaints <complaints@example.org> wrote:\n"
    "If you wish to escalate, reply to this message.",
    "OK thanks\n-----Original Message-----\nFrom: Complaints\nPlease say if you want stage 2.",
    # Any refusal wins over a request elsewhere: staff can still escalate by command.
    "Please escalate this. Actually no, do not escalate it yet.",
]


@pytest.mark.parametrize("text", ASKS)
def test_explicit_requests_ask_for_the_next_stage(text: str) -> None:
    assert asks_for_escalation(text)


@pytest.mark.parametrize("text", DOES_NOT_ASK)
def test_refusals_questions_narrative_and_quotes_do_not(text: str) -> None:
    assert not asks_for_escalation(text)


quoted_lines = st.lists(st.text(st.characters(exclude_characters="\r\n")), max_size=8)


@settings(max_examples=300)
@given(lines=quoted_lines)
def test_nothing_in_quoted_lines_counts(lines: list[str]) -> None:
    quoted = "\n".join(f"> {line}" for line in [*lines, ASKS[0]])
    assert not asks_for_escalation("Noted, thank you.\n\n" + quoted)


@settings(max_examples=300)
@given(request=st.sampled_from(ASKS), quote=quoted_lines)
def test_a_request_above_any_quote_still_counts(request: str, quote: list[str]) -> None:
    quoted = "\n".join(f"> {line}" for line in quote)
    assert asks_for_escalation(f"{request}\n\n{quoted}")


@settings(max_examples=300)
@given(
    request=st.sampled_from(ASKS),
    refusal=st.sampled_from(DOES_NOT_ASK[:7]),
    refusal_first=st.booleans(),
)
def test_a_refusal_anywhere_outweighs_a_request(
    request: str, refusal: str, refusal_first: bool
) -> None:
    parts = [refusal, request] if refusal_first else [request, refusal]
    assert not asks_for_escalation("\n\n".join(parts))


@settings(max_examples=300)
@given(text=st.text(), quote=st.sampled_from(ASKS + DOES_NOT_ASK))
def test_appending_a_quote_never_changes_the_answer(text: str, quote: str) -> None:
    quoted = "\n".join(f"> {line}" for line in quote.splitlines())
    assert asks_for_escalation(f"{text}\n{quoted}") == asks_for_escalation(text)
