"""The hypothesis strategy `mutants`: a seed message, then one to three drawn mutations."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from fuzz import mutations as m

Step = tuple[str, m.Mutation]  # (what it did, for reports; the mutation)

NAMES = st.sampled_from(m.HEADERS)
SENDER_HEADERS = st.sampled_from(("From", "Reply-To", "Sender", "To"))
INJECTABLE = st.sampled_from(("Subject", "From", "Reply-To", "To", "Message-ID", "References"))
INJECTABLE |= st.sampled_from(("In-Reply-To", "Content-Type"))
JUNK = st.sampled_from((b"\x00", b"\x00\x00\x00", b"\x01\x1b\x7f", b"\xff\xfe", b"\xc3\xa9"))
JUNK |= st.sampled_from((b"\xe2\x80\xa8", b"\x85", b"\xc3", b"\r", b"\n", b"\x0b\x0c"))
JUNK |= st.binary(min_size=1, max_size=24)
UNITS = st.sampled_from((b"a", b"word ", b"=?utf-8?q?=C3=A9?= ", b"<id@x> ", b"a@b.example, "))
UNITS |= st.sampled_from((b"\t", b"=", b"\xc3\xa9", b"<", b'"(\\', b">"))


def _sizes(scale: int) -> st.SearchStrategy[int]:
    return st.integers(min_value=0, max_value=scale) | st.sampled_from((998, 999, 1000, scale))


def _headers(scale: int) -> st.SearchStrategy[Step]:
    return st.one_of(
        st.builds(
            lambda n, v: (f"duplicated {n}", m.duplicated(n, v)),
            NAMES,
            st.sampled_from((b"other@example.net", b"", b"<dup@x>", b"text/html")),
        ),
        NAMES.map(lambda n: (f"missing {n}", m.missing(n))),
        st.builds(
            lambda n, u, s: (f"over-long {n} {s}B of {u!r}", m.over_long(n, u, s)),
            NAMES,
            UNITS,
            _sizes(scale),
        ),
        st.builds(
            lambda n, h: (f"badly folded {n} ({h})", m.badly_folded(n, h)),
            NAMES,
            st.integers(0, 4),
        ),
        st.builds(
            lambda n, j, w: (f"bytes {j!r} in {n}", m.with_bytes(n, j, w)),
            NAMES,
            JUNK,
            st.floats(0, 1),
        ),
        st.builds(
            lambda n, s, c, b: (
                f"encoded CR/LF in {n} ({c}, {'b' if b else 'q'})",
                m.injected(n, s, c, b),
            ),
            INJECTABLE,
            st.integers(0, 3),
            st.sampled_from(("utf-8", "iso-8859-1", "x-unknown", "utf-16")),
            st.booleans(),
        ),
        st.integers(0, len(m.BOGUS_DATES) - 1).map(
            lambda i: (f"date {m.BOGUS_DATES[i]!r}", m.bogus_date(i))
        ),
        st.builds(
            lambda n, i: (f"{n}: {m.ODD_SENDERS[i]!r}", m.odd_sender(n, i)),
            SENDER_HEADERS,
            st.integers(0, len(m.ODD_SENDERS) - 1),
        ),
    )


def _mime(scale: int) -> st.SearchStrategy[Step]:
    return st.one_of(
        st.just(("boundary removed", m.boundary_removed)),
        st.sampled_from((b"other", b"", b"x" * 200, b"--", b"b0")).map(
            lambda b: (f"boundary now {b[:20]!r}", m.boundary_mismatched(b))
        ),
        st.just(("unterminated", m.unterminated)),
        st.sampled_from((2, 10, 100, 1000)).map(lambda d: (f"nested {d} deep", m.nested(d))),
    )


def _encodings(scale: int) -> st.SearchStrategy[Step]:
    repeats = st.integers(1, max(1, scale // 200))
    return st.one_of(
        st.builds(
            lambda i, r: (
                f"charset {m.CHARSETS[i][0]!r} on {m.CHARSETS[i][1]} x{r}",
                m.recharset(i, r),
            ),
            st.integers(0, len(m.CHARSETS) - 1),
            repeats,
        ),
        st.builds(
            lambda b, i, r: (
                f"broken {'base64' if b else 'QP'} {i} x{r}",
                m.broken_transfer(b, i, r),
            ),
            st.booleans(),
            st.integers(0, 5),
            repeats,
        ),
    )


def _lengths(scale: int) -> st.SearchStrategy[Step]:
    return st.one_of(
        st.builds(
            lambda u, s: (f"huge line {s}B of {u!r}", m.huge_line(u, s)), UNITS, _sizes(scale)
        ),
        st.integers(1, max(1, scale // 40)).map(lambda n: (f"{n} headers", m.many_headers(n))),
        st.builds(
            lambda a, j, c: (f"{'cut' if c else 'spliced'} at {a:.2f}", m.spliced(a, j, c)),
            st.floats(0, 1),
            JUNK,
            st.booleans(),
        ),
    )


def steps(scale: int) -> st.SearchStrategy[Step]:
    """One mutation of any kind; `scale` bounds the bytes it may add."""
    return st.one_of(_headers(scale), _mime(scale), _encodings(scale), _lengths(scale))


@st.composite
def mutants(draw: st.DrawFn, seeds: Sequence[tuple[str, bytes]], scale: int = 20_000) -> m.Mutant:
    """A seed message from `seeds` after one to three mutations."""
    name, raw = draw(st.sampled_from(seeds))
    message = m.Message.read(raw)
    done = []
    for label, mutation in draw(st.lists(steps(scale), min_size=1, max_size=3)):
        message = mutation(message)
        done.append(label)
    return m.Mutant(name, tuple(done), message.joined())
