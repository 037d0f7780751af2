"""Composing mail: the fast header path writes exactly what compat32 would."""

from __future__ import annotations

from email.policy import compat32

from hypothesis import given, settings
from hypothesis import strategies as st

from replies.compose import _WIRE

REFERENCE = compat32.clone(linesep="\r\n", max_line_length=78)
NAMES = st.sampled_from(["Subject", "To", "From", "References", "X-Loop", "Content-Type"])
# Printable ASCII with spaces and tabs, some long enough to need folding; and some not ASCII.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines breaks at
VALUES = st.one_of(
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=200),
    st.text(st.sampled_from('ab c\t=?<>@.;"'), max_size=120),
    # Any characters but line breaks (CR, LF, FF, VT, U+2028...): compose._header collapses
    # those before anything folds, and compat32 itself refuses "\r0:" as an embedded header.
    st.text(st.characters(codec="utf-8", exclude_characters=LINE_BREAKS), max_size=60),
)


@settings(max_examples=500)
@given(NAMES, VALUES)
def test_headers_fold_exactly_as_compat32_does(name: str, value: str) -> None:
    assert _WIRE.fold(name, value) == REFERENCE.fold(name, value)
