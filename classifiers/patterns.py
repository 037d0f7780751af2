"""Which of many named regular expressions match a text, found in about one pass.

Rule sets (the safeguarding rules in classifiers.safety, the explicit cues in
classifiers.cues) are dozens of patterns run on every message. Searching each in turn
walks the text once per pattern. A `PatternSet` instead finds, in one pass, where the
literal words that patterns start with occur, and tries each pattern only at those
positions; patterns that start with no such word are searched in full. The answer is
exactly what searching every pattern gives (tests/test_cues.py and
tests/test_classifier_safety.py check it on random texts), only faster.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from typing import Any

# The regex parser is private (re._parser); if it changes, every pattern simply runs on
# every message (slower, never wrong).
try:
    _sre: Any = importlib.import_module("re._parser")
    _sre_op: Any = importlib.import_module("re._constants")
except ImportError:  # pragma: no cover - other Python versions
    _sre = _sre_op = None
_MAX_PREFIXES = 256
_MIN_PREFIX = 2
# Longer prefixes hardly narrow the candidates further but make the trigger regex (and the
# time to compile it) much bigger.
_MAX_PREFIX = 8
_WORDY = re.compile(r"\w")


class PatternSet:
    """Named patterns; `hits(text)` gives the names with a pattern matching `text`. A name
    may have several patterns (any one matching names it)."""

    def __init__(self, named: Iterable[tuple[str, str]]) -> None:
        self._patterns: list[tuple[str, re.Pattern[str]]] = []
        self._order: dict[str, int] = {}
        self._everywhere: list[int] = []
        starts: dict[str, list[int]] = {}
        word_starts: dict[str, list[int]] = {}
        for name, pattern in named:
            self._order.setdefault(name, len(self._order))
            index = len(self._patterns)
            self._patterns.append((name, re.compile(pattern)))
            prefixes = literal_prefixes(pattern)
            if prefixes is None:
                self._everywhere.append(index)
                continue
            # A pattern that starts with \b and a word character can only match at the
            # start of a word: its prefixes are looked for there only ("he" not in "the").
            at_word = pattern.startswith("\\b") and all(_WORDY.match(p) for p in prefixes)
            for prefix in prefixes:
                (word_starts if at_word else starts).setdefault(prefix, []).append(index)
        self._scans = [
            (re.compile(f"{anchor}(?=({_trie_regex(table)}))"), _candidates(table))
            for anchor, table in ((r"\b", word_starts), ("", starts))
            if table
        ]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._order)

    def hits(self, text: str) -> tuple[str, ...]:
        """The names with a pattern that matches `text`, in the order they were given."""
        found: set[str] = set()
        for scan, candidates in self._scans:
            for where in scan.finditer(text):
                position = where.start()
                for index in candidates[where.group(1)]:
                    name, pattern = self._patterns[index]
                    if name not in found and pattern.match(text, position):
                        found.add(name)
        for index in self._everywhere:
            name, pattern = self._patterns[index]
            if name not in found and pattern.search(text):
                found.add(name)
        return tuple(sorted(found, key=self._order.__getitem__))


def _literal_run(items: list[Any]) -> tuple[set[str] | None, bool]:
    """Expand the leading literals of a parsed regex sequence into the strings a match
    starts with; returns (strings or None when unknown, whether the sequence was consumed
    entirely). Alternatives and non-capturing groups of literals are expanded."""
    found = {""}
    for op, av in items:
        if op is _sre_op.LITERAL:
            found = {prefix + chr(av) for prefix in found}
            continue
        if op is _sre_op.SUBPATTERN and not av[1] and not av[2]:
            inner, whole = _alternatives([av[3]])
        elif op is _sre_op.BRANCH:
            inner, whole = _alternatives(av[1])
        elif op is _sre_op.IN and len(av) <= 4 and all(o is _sre_op.LITERAL for o, _ in av):
            inner, whole = {chr(v) for _, v in av}, True
        elif op in (_sre_op.MAX_REPEAT, _sre_op.MIN_REPEAT) and av[0] == 0 and av[1] == 1:
            inner, whole = _alternatives([av[2]])  # (?:x)? is "x" or nothing
            inner = None if inner is None else inner | {""}
        else:
            return found, False
        if inner is None:
            return found, False
        extended = {prefix + tail for prefix in found for tail in inner}
        if len(extended) > _MAX_PREFIXES:
            return found, False
        found = extended
        if not whole:
            return found, False
    return found, True


def _alternatives(branches: Iterable[Any]) -> tuple[set[str] | None, bool]:
    found: set[str] = set()
    whole = True
    for branch in branches:
        strings, consumed = _literal_run(list(branch))
        if strings is None:
            return None, False
        found |= strings
        whole = whole and consumed
        if len(found) > _MAX_PREFIXES:
            return None, False
    return found, whole


def literal_prefixes(pattern: str) -> frozenset[str] | None:
    """Return strings one of which starts every match of `pattern` (after leading `\\b`),
    or None when there is no such small set (the pattern is then tried everywhere)."""
    if _sre is None:
        return None
    try:
        items = list(_sre.parse(pattern))
        while items and items[0][0] is _sre_op.AT:
            items.pop(0)
        found, _ = _literal_run(items)
    except Exception:  # noqa: BLE001 - an unexpected parse shape only costs speed
        return None
    if not found or any(len(prefix) < _MIN_PREFIX for prefix in found):
        return None
    return frozenset(prefix[:_MAX_PREFIX] for prefix in found)


def _trie_regex(words: Iterable[str]) -> str:
    """A regex matching any of `words`, shaped as a trie so each position costs one path;
    greedy, so it reports the longest word that matches at a position."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        branches = [re.escape(c) + build(child) for c, child in sorted(node.items()) if c]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


def _candidates(table: dict[str, list[int]]) -> dict[str, tuple[int, ...]]:
    """For each prefix, the patterns to try where it is found. A trie scan reports the
    longest prefix at a position; every shorter prefix of it matched there too."""
    return {
        word: tuple(sorted({i for n in range(1, len(word) + 1) for i in table.get(word[:n], ())}))
        for word in table
    }
