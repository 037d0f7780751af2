"""Does a message's processing time grow faster than the message? Shapes that grow, timed.

Each shape makes one part of a message `n` bytes long. `growth` times the whole harness
on the shape at n and at 10n (CPU seconds, the least of three runs: other work shares the
machine) and returns the ratio: about 10 when linear, about 100 when quadratic.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

from fuzz import mutations as m
from fuzz.harness import Harness

SHAPES: dict[str, Callable[[int], m.Mutation]] = {
    "huge body line": lambda n: m.huge_line(b"word ", n),
    "huge line without spaces": lambda n: m.huge_line(b"a", n),
    "huge Subject": lambda n: m.over_long("Subject", b"word ", n),
    "huge From": lambda n: m.over_long("From", b"a@b.example, ", n),
    "huge To": lambda n: m.over_long(
        "To", b"complaints+cmp-2026-00001.abcdefghij@example.org, ", n
    ),
    "huge Delivered-To": lambda n: m.over_long("Delivered-To", b"x@example.org, ", n),
    "huge References": lambda n: m.over_long("References", b"<id@x.example> ", n),
    "huge X-Auto-Response-Suppress": lambda n: m.over_long("X-Auto-Response-Suppress", b"dr, ", n),
    "many headers": lambda n: m.many_headers(n // 40),
    "broken base64": lambda n: m.broken_transfer(True, 2, n // 25),
    "broken quoted-printable": lambda n: m.broken_transfer(False, 0, n // 6),
    "UTF-16 without a BOM": lambda n: m.recharset(6, n // 100),
    "ISO-2022-JP": lambda n: m.recharset(4, n // 100),
    # Quadratic in the stdlib's decode_header until parse.cap_headers (16 KB a field).
    "Subject of encoded words": lambda n: m.over_long("Subject", b"=?utf-8?q?=C3=A9?= ", n),
}
# Known to grow faster than linearly; reported, not yet fixed (see tests/mail/fuzz/README.md).
KNOWN: dict[str, Callable[[int], m.Mutation]] = {}


def cpu_seconds(harness: Harness, raw: bytes, repeats: int = 3) -> float:
    """The least CPU time of `repeats` runs of `raw` through the harness, each after a full
    collection (so that one run does not pay for the garbage of the one before)."""
    times = []
    for _ in range(repeats):
        gc.collect()
        started = time.process_time()
        harness.process(raw)
        times.append(time.process_time() - started)
    return min(times)


def growth(harness: Harness, seed: bytes, shape: Callable[[int], m.Mutation], n: int) -> float:
    """How many times longer `shape` at 10n takes than at n, on the message `seed`."""
    small, large = (shape(size)(m.Message.read(seed)).joined() for size in (n, 10 * n))
    return cpu_seconds(harness, large) / max(cpu_seconds(harness, small), 1e-3)
